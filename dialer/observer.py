"""Every dialer attempt on the Asterisk, as seen from its events: one :class:`CallTrace`
per attempt id.

A router *listener* (not a call factory): it sees every call without owning any, so an
agentless campaign's answered call can still be taken by the IVR's factory. Calls are
matched to attempts by the ``CALLCYCLE_ATTEMPT_ID`` channel variable (its VarSet comes
with the channel's creation; for a call that began before we connected, the resync's
``Status`` brings it: :class:`pbx.events.CallFound`) and by the ``originate-<attempt id>`` ActionID of
OriginateResponse (a failed originate has no channel to carry the variable).

Every instance observes every attempt, leader or not: when a leader dies, the instance
that takes over already knows how its calls went.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dialer.machine import CallTrace, Signal
from pbx import events as ev
from pbx.calls import AGENT_FIRST_VARIABLE, ATTEMPT_VARIABLE, RINGING_STATES, UP, Call

_ORIGINATE_PREFIX = "originate-"
_REASONS = {0: "failed", 1: "hangup", 3: "no_answer", 4: "answered", 5: "busy", 8: "congestion"}
# Dial()'s DIALSTATUS of an agent-first call's customer, in the terms of _REASONS
_DIAL_STATUS = {"BUSY": "busy", "NOANSWER": "no_answer", "CONGESTION": "congestion", "CHANUNAVAIL": "failed",
                "CANCEL": "failed"}


class AttemptObserver:
    """Use as a listener: ``router.add_listener(observer)``."""

    def __init__(self, keep: int = 50_000, clock: Callable[[], float] = time.time) -> None:
        self.traces: OrderedDict[str, CallTrace] = OrderedDict()
        self._by_linkedid: dict[str, str] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._keep = keep
        self._clock = clock
        self.on_change: Callable[[CallTrace], None] | None = None
        self.agent_started: dict[str, float] = {}   # queue member name -> when its current call began

    # -- lookups ------------------------------------------------------------------------------

    def get(self, attempt_id: str) -> CallTrace | None:
        return self.traces.get(attempt_id)

    def trace(self, attempt_id: str) -> CallTrace:
        t = self.traces.get(attempt_id)
        if t is None:
            t = self.traces[attempt_id] = CallTrace(attempt_id, self._clock())
            if len(self.traces) > self._keep:
                old_id, old = self.traces.popitem(last=False)
                self._ended.pop(old_id, None)
                if old.linkedid:
                    self._by_linkedid.pop(old.linkedid, None)
        return t

    async def wait_ended(self, attempt_id: str, timeout: float | None = None) -> CallTrace:
        t = self.trace(attempt_id)
        if not t.ended:
            event = self._ended.setdefault(attempt_id, asyncio.Event())
            await asyncio.wait_for(event.wait(), timeout)
        return t

    def adopt(self, attempt_id: str, call: Call) -> CallTrace:
        """Tie a live call found after the fact (reconnect, takeover) to its attempt, and
        take in what it became while nobody listened."""
        t = self.trace(attempt_id)
        self._link(t, call.linkedid)
        t.channels.update(c.name for c in call.channels.values())
        t.resynced = True
        t.agent_first = t.agent_first or call.variables.get(AGENT_FIRST_VARIABLE) == "1"
        if call.answered_at is not None and t.answered_at is None and not t.agent_first:
            t.signal(Signal.ANSWER, call.answered_at)
        # The channel our originate made (the first of the call: its uniqueid is the
        # linkedid) is bridged only with an agent: the queue, AMD, the safe-harbour message
        # and an agentless flow bridge nothing. Not any channel of the call: a Local trunk's
        # other half may be bridged with the carrier's from the answer on.
        ours = call.channels.get(call.linkedid)
        if t.connected_at is None and ours is not None and ours.bridge_id:
            if t.answered_at is None:
                self._signal(t, Signal.ANSWER)
            self._signal(t, Signal.CONNECT)   # its runner looks again now: an agent is taken
        return t

    def end_unseen(self, attempt_id: str, reason: str) -> CallTrace:
        """The call is gone and we never saw it end (it ended while nobody listened)."""
        t = self.trace(attempt_id)
        if not t.ended:
            t.end_reason = reason
            self._signal(t, Signal.END)
        return t

    # -- the listener ---------------------------------------------------------------------------

    def __call__(self, call: Call | None, event: Any) -> None:
        if isinstance(event, ev.OriginateResponse):
            self._originate_response(event)
            return
        if call is None:
            if isinstance(event, ev.AgentCompleteDetached):
                self._agent_done(event.member_name or event.interface, event.talk_time)
            return
        if isinstance(event, ev.CallFound):   # live at a resync: began before we connected, or lived through it
            attempt_id = call.variables.get(ATTEMPT_VARIABLE)
            found = self.traces.get(attempt_id) if attempt_id else None
            if attempt_id and (found is None or not found.ended):
                self.adopt(attempt_id, call)
            return
        if isinstance(event, ev.VarSet) and event.variable == ATTEMPT_VARIABLE and event.value:
            t = self.trace(event.value)
            self._link(t, call.linkedid)
            t.channels.add(event.channel)
            return
        attempt_id = self._by_linkedid.get(call.linkedid)
        if attempt_id is None:
            return
        t = self.traces.get(attempt_id)
        if t is not None and not t.ended:
            self._apply(t, call, event)

    def _agent_done(self, agent: str, talk_time: int) -> None:
        """The agent's call ended without its channels: forget its start, unless the start
        is of a newer call (begun since, so less than that call's talk time ago)."""
        started = self.agent_started.get(agent)
        if started is not None and self._clock() - started >= talk_time - 1:
            del self.agent_started[agent]

    def _link(self, t: CallTrace, linkedid: str) -> None:
        t.linkedid = linkedid
        self._by_linkedid[linkedid] = t.attempt_id

    def _originate_response(self, e: ev.OriginateResponse) -> None:
        if not e.action_id.startswith(_ORIGINATE_PREFIX):
            return
        t = self.trace(e.action_id[len(_ORIGINATE_PREFIX):])
        # An agent-first originate is answered at the agent's phone: the customer's answer
        # and dial status come later, as variables, and win over it.
        reason = _REASONS.get(e.reason, str(e.reason))
        t.originate_reason = (t.originate_reason or reason) if t.agent_first else reason
        if e.reason == 4:
            if not t.agent_first:
                self._signal(t, Signal.ANSWER)
        elif t.linkedid is None and not t.ended:
            # A failed originate may create no channel at all: nothing else will end it.
            t.end_reason = "hangup"
            self._signal(t, Signal.END)

    def _apply(self, t: CallTrace, call: Call, e: Any) -> None:  # noqa: C901 - one branch per event type
        if isinstance(e, ev.Newstate):
            # our channels' states; an agent-first call's are the agent's phone, not the customer's
            if t.agent_first or e.channel not in t.channels:
                return
            if e.state == UP:
                self._signal(t, Signal.ANSWER)
            elif e.state in RINGING_STATES:
                self._signal(t, Signal.RING)
        elif isinstance(e, ev.VarSet):
            self._varset(t, e)
        elif isinstance(e, ev.QueueCallerJoin):
            self._signal(t, Signal.QUEUE)
        elif isinstance(e, ev.AgentConnect):
            t.agent = e.member_name or e.interface
            self.agent_started[t.agent] = self._clock()
            self._signal(t, Signal.CONNECT)
        elif isinstance(e, ev.AgentComplete):
            self.agent_started.pop(e.member_name or e.interface, None)
        elif isinstance(e, ev.AsyncAGIStart):
            self._signal(t, Signal.CONNECT)          # agentless: the IVR flow took the call
        elif isinstance(e, ev.DTMFEnd) and e.direction == "Received" and e.channel in t.channels:
            t.digits.append(e.digit)
        elif isinstance(e, ev.Hangup):
            t.causes.append(e.cause)
        elif isinstance(e, ev.CallEnded):
            t.end_reason = e.reason
            self._signal(t, Signal.END)

    def _varset(self, t: CallTrace, e: ev.VarSet) -> None:
        if e.variable == AGENT_FIRST_VARIABLE and e.value == "1":
            t.agent_first = True
        elif t.agent_first and e.variable == "CALLCYCLE_AGENT_NAME":
            t.agent = e.value
        elif t.agent_first and e.variable == "CALLCYCLE_ANSWERED_AT":   # the customer answered: bridged at once
            self._signal(t, Signal.ANSWER)
            self._signal(t, Signal.CONNECT)
        elif t.agent_first and e.variable == "CALLCYCLE_DIAL_RESULT":
            t.originate_reason = _DIAL_STATUS.get(e.value, e.value.lower())
        elif e.variable == "CALLCYCLE_AMD_RESULT":
            t.amd = e.value
            if e.value.startswith("MACHINE"):
                self._signal(t, Signal.MACHINE)
        elif e.variable == "CALLCYCLE_ABANDONED" and e.value == "1":
            self._signal(t, Signal.ABANDON)
        elif e.variable == "CALLCYCLE_SAFE_HARBOUR":
            t.safe_harbour = e.value
        elif e.variable == "CALLCYCLE_MACHINE_MESSAGE":
            t.machine_message = True

    def _signal(self, t: CallTrace, sig: Signal) -> None:
        if t.signal(sig, self._clock()) and self.on_change is not None:
            self.on_change(t)
        if t.ended:
            event = self._ended.pop(t.attempt_id, None)
            if event is not None:
                event.set()
