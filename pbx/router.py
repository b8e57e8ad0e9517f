"""One ordered path for AMI events.

The protocol hands each TCP read's events to :meth:`Router.feed` (it only enqueues);
one task, :meth:`Router.run`, turns them into typed events, updates the call and queue
tables, and delivers every call's events in order to that call's handler. Handlers and
listeners are plain functions that must not block: a handler with slow work puts the
event on its own queue (see :class:`pbx.inbox.CallInbox`), so one call never stalls
another. A handler that raises is logged with the call's ids and the router goes on.

Slices: the task processes at most ``slice_s`` (2 ms) of events before it lets the event
loop run, so what the first events of a long burst caused (a supervisor's delta, an IVR
command) goes out while the rest of the burst waits, instead of after all of it.

Back-pressure: past ``high_water`` queued events the router asks the protocol to pause
reading from the socket, and lets it resume below ``low_water``. (Asterisk then buffers,
and drops us only if we stay behind longer than its ``writetimeout``.)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from callcycle.logs import get_logger
from pbx import events as ev
from pbx.call_table import CallTable
from pbx.calls import Call
from pbx.parsing import MalformedEvent, parse
from pbx.queues import QueueTable

log = get_logger(__name__)


class CallHandler(Protocol):
    def __call__(self, call: Call, event: Any) -> None: ...


CallFactory = Callable[[Call, Any], CallHandler | None]
Listener = Callable[[Call | None, Any], None]


@dataclass(frozen=True)
class Resync:
    """Control item: the ``CoreShowChannels``/``QueueStatus`` snapshot taken after a reconnect."""

    channels: list[dict[str, str]]
    queues: list[dict[str, str]]
    variables: dict[str, dict[str, str]] = field(default_factory=dict)   # uniqueid -> name -> value


@dataclass(frozen=True)
class ResyncStart:
    """Control item: the resync snapshot is about to be requested. What the router
    processes from here on is newer than the snapshot may say, and the snapshot must not
    undo it (a hang-up while ``QueueStatus`` is still being listed)."""


@dataclass(frozen=True)
class Outage:
    """Control item: the connection dropped; calls known now may vanish at the next Resync."""

    reason: str


class Router:
    def __init__(self, server: str, *, high_water: int = 20000, slice_s: float = 0.002) -> None:
        self.server = server
        self.slice_s = slice_s
        self.calls = CallTable(server)
        self.queues = QueueTable()
        self._items: deque[Any] = deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self.high_water = high_water
        self.low_water = high_water // 2
        self.pause_reading: Callable[[bool], None] | None = None
        self._paused = False
        self.arrived_at = 0.0   # wall-clock time the TCP read holding the current event arrived
        self._factories: list[CallFactory] = []
        self._listeners: list[Listener] = []
        self._batch_ends: list[Callable[[], None]] = []
        self.stats = {"events": 0, "typed": 0, "malformed": 0, "handler_errors": 0}

    # -- wiring ------------------------------------------------------------------------------

    def add_call_factory(self, factory: CallFactory) -> None:
        """``factory(call, event)`` is asked, for a call without a handler, whether it wants
        the call; the first handler it returns gets every later event of that call."""
        self._factories.append(factory)

    def add_listener(self, listener: Listener) -> None:
        """``listener(call_or_None, event)`` sees every typed event (the live view, metrics)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def add_batch_end(self, hook: Callable[[], None]) -> None:
        """``hook()`` runs after each run of events processed together (a slice of the queue,
        or one ``process`` call): a listener may gather what the events changed and act once."""
        self._batch_ends.append(hook)

    def attach(self, linkedid: str, handler: CallHandler) -> bool:
        call = self.calls.get(linkedid)
        if call is None:
            return False
        call.handler = handler
        return True

    # -- the producer side (called from the protocol, never blocks) -----------------------

    def feed(self, batch: list[dict[str, Any]]) -> None:
        self._items.append((time.time(), batch))
        self._queued += len(batch)
        self._wakeup.set()
        if not self._paused and self._queued > self.high_water and self.pause_reading is not None:
            self._paused = True
            log.warning("ami_backpressure_pause", server=self.server, queued=self._queued)
            self.pause_reading(True)

    def control(self, item: Resync | ResyncStart | Outage) -> None:
        self._items.append(item)
        self._wakeup.set()

    @property
    def backlog(self) -> int:
        return self._queued

    # -- the consumer side ----------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while not self.drain(self.slice_s):
                await asyncio.sleep(0)  # a slice is up: let the loop send what it caused
            await asyncio.sleep(0)  # let the protocol and other tasks run between bursts

    def drain(self, budget: float | None = None) -> bool:
        """Process what is queued (synchronously; used by run() and by benchmarks): all of
        it, or, given a ``budget`` in seconds, until that is spent. True when nothing is left."""
        try:
            return self._drain(budget)
        finally:
            self._end_batch()

    def _drain(self, budget: float | None) -> bool:
        items = self._items
        deadline = time.perf_counter() + budget if budget is not None else None
        while items:
            item = items.popleft()
            if isinstance(item, tuple):
                self.arrived_at, batch = item
                done = self._process_batch(batch, deadline)
                if done < len(batch):
                    items.appendleft((self.arrived_at, batch[done:]))   # the rest of this read, first in line
                    return False
            elif isinstance(item, Resync):
                self._resync(item)
            elif isinstance(item, ResyncStart):
                self.calls.mark()
                self.queues.mark()
            else:
                self.calls.begin_outage()
            if self._paused and self._queued < self.low_water and self.pause_reading is not None:
                self._paused = False
                self.pause_reading(False)
            if deadline is not None and time.perf_counter() >= deadline:
                return not items
        return True

    def _process_batch(self, batch: list[dict[str, Any]], deadline: float | None) -> int:
        """Process the events of one read in order, checking the clock every 16 of them;
        returns how many were processed."""
        n = len(batch)
        if deadline is None:
            for headers in batch:
                self._process_one(headers)
            self._queued -= n
            return n
        for i in range(0, n, 16):
            for headers in batch[i:i + 16]:
                self._process_one(headers)
            done = min(i + 16, n)
            self._queued -= done - i
            if deadline is not None and done < n and time.perf_counter() >= deadline:
                return done
        return n

    def process(self, headers: dict[str, Any]) -> None:
        """One event, as a batch of its own."""
        self._process_one(headers)
        self._end_batch()

    def _end_batch(self) -> None:
        for hook in self._batch_ends:
            try:
                hook()
            except Exception:
                self.stats["handler_errors"] += 1
                log.exception("batch_end_hook_failed", server=self.server)

    def _process_one(self, headers: dict[str, Any]) -> None:
        self.stats["events"] += 1
        try:
            event = parse(headers)
        except MalformedEvent as exc:
            self.stats["malformed"] += 1
            log.warning("ami_event_malformed", server=self.server, ami_event=exc.event, header=exc.header)
            return
        if event is None:
            return
        self.stats["typed"] += 1
        if isinstance(event, ev.CallEvent):
            self._call_event(event)
        else:
            self._server_event(event)

    def _call_event(self, event: ev.CallEvent) -> None:
        call = self.calls.apply(event)
        if self.calls.merged:
            merged, self.calls.merged = self.calls.merged, []
            for gone in merged:
                self._end(gone, gone.hangup_cause)
        if call is None:
            return
        self.queues.apply_call_event(event)
        self._deliver(call, event)
        if call.ended_at is not None:
            self._end(call, call.hangup_cause)

    def _server_event(self, event: ev.ServerEvent) -> None:
        self.queues.apply(event)
        call = None
        if isinstance(event, ev.OriginateResponse) and event.uniqueid:
            call = self.calls.by_uniqueid(event.uniqueid)
        if call is not None:
            self._deliver(call, event)
        else:
            self._notify(None, event)

    def _end(self, call: Call, cause: int | None) -> None:
        """Deliver the call's CallEnded, the last thing its handler gets."""
        self._deliver(call, ev.CallEnded(call.linkedid, call.end_reason, cause))
        # Nothing reaches the handler after CallEnded. A handler refers back to its call, so
        # keeping it would leave the call and all its handler holds (an IVR session, its
        # tasks, the contact) as a reference cycle for the garbage collector, which frees
        # such garbage only in its passes: tens of milliseconds per thousand calls.
        call.handler = None

    def _deliver(self, call: Call, event: Any) -> None:
        if call.handler is None and self._factories:
            for factory in self._factories:
                try:
                    handler = factory(call, event)
                except Exception:
                    self._handler_failed(call, event, "call_factory_failed")
                    continue
                if handler is not None:
                    call.handler = handler
                    break
        if call.handler is not None:
            try:
                call.handler(call, event)
            except Exception:
                self._handler_failed(call, event, "call_handler_failed")
        self._notify(call, event)

    def _notify(self, call: Call | None, event: Any) -> None:
        for listener in self._listeners:
            try:
                listener(call, event)
            except Exception:
                self._handler_failed(call, event, "event_listener_failed")

    def _handler_failed(self, call: Call | None, event: Any, what: str) -> None:
        self.stats["handler_errors"] += 1
        log.exception(what, server=self.server, linkedid=call.linkedid if call else None,
                      ami_event=type(event).__name__)

    def _resync(self, snapshot: Resync) -> None:
        vanished, created = self.calls.resync(snapshot.channels, snapshot.variables)
        self.queues.resync(snapshot.queues)
        for call in vanished:
            log.warning("call_vanished_during_ami_outage", server=self.server, linkedid=call.linkedid)
            self._end(call, None)   # its last channels hung up unseen: no cause
        for call in created:
            self._notify(call, ev.CallFound(call.linkedid))
        log.info("ami_resynced", server=self.server, live_calls=len(self.calls), vanished=len(vanished),
                 found=len(created))
