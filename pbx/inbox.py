"""A per-call mailbox: the router hands events over without waiting, one task per call
consumes them in order and may await I/O. One slow call never stalls the others."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from callcycle.logs import bind_call, get_logger
from pbx.calls import Call
from pbx.events import CallEnded

log = get_logger(__name__)


class CallInbox:
    """Use as the call's handler: ``router.attach(linkedid, CallInbox(call, consume))``.

    ``consume(call, event)`` runs for each event in order, in a task that has the call's
    ``linkedid`` bound for logging. After :class:`CallEnded` the task finishes.
    """

    def __init__(self, call: Call, consume: Callable[[Call, Any], Awaitable[None]], maxsize: int = 1000) -> None:
        self.call = call
        self._consume = consume
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.task = asyncio.create_task(self._run(), name=f"call:{call.linkedid}")

    def __call__(self, call: Call, event: Any) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # A handler this far behind is broken; say so rather than grow without bound.
            self.overflowed = True
            log.error("call_inbox_overflow", linkedid=call.linkedid, dropped=type(event).__name__)

    async def _run(self) -> None:
        bind_call(linkedid=self.call.linkedid, server=self.call.server)
        while True:
            event = await self._queue.get()
            try:
                await self._consume(self.call, event)
            except Exception:
                log.exception("call_handler_failed", event=type(event).__name__)
            if isinstance(event, CallEnded):
                return
