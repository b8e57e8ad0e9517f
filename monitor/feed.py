"""The live feed: a snapshot on connect, then deltas, over WebSocket or SSE.

Fan-out never waits for a client. Each message is encoded once per audience and put,
without awaiting, on every client's own bounded queue; each client has its own writer task
that sends from that queue. A client whose queue is full is too slow: it is dropped at
once (WebSocket close code 4008, reason "slow-consumer"; SSE: the stream ends) and may
reconnect for a fresh snapshot. So one slow browser never stalls the others.

Messages are JSON. A WebSocket text frame (an SSE ``data:`` line, with ``id:`` = the last
seq in it) carries one message object, or a JSON array of messages in order: the changes
of one event-loop turn are encoded once for all clients, and what queued up for a client
while its writer was busy goes out merged into one frame:

    {"type": "snapshot", "seq": 41, "instance": "...", "server_time": 1.7e9,
     "subject": "...", "role": "supervisor",
     "entities": {"call": {id: {...}}, "agent": {...}, "queue": {...}, "campaign": {...},
                  "kpis": {...}, "audit": {...}},
     "series": [{"t": 1.7e9, "abandon_rate": 0.02, "occupancy": 0.75}, ...]}
    {"type": "delta", "seq": 42, "kind": "call", "id": "main:1712.7", "data": {...} | null,
     "at": 1.7e9 | null}            # data null: the entity is gone
    {"type": "sample", "point": {"t": ..., "abandon_rate": ..., "occupancy": ...}}

``seq`` increases with every change on one instance; an entity changed several times
before a flush is sent once, in its latest state (so ``seq`` may skip). A client that connects to another
instance starts again from that instance's snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from callcycle.logs import get_logger
from monitor.models import Audience

log = get_logger(__name__)

CLOSE_SLOW = 4008
SLOW_REASON = "slow-consumer"
_SSE_KEEPALIVE = 15.0
# Bytes a WebSocket's transport may hold before its writer waits for the socket to drain.
_WRITE_LIMIT = 256 * 1024


class Dropped(Exception):
    pass


Payload = tuple[int | None, bytes]  # (last seq in it, UTF-8 JSON: one message or an array)


class Client:
    """One connected browser: its audience and bounded queue of encoded payloads."""

    def __init__(self, audience: Audience, maxsize: int, label: str) -> None:
        self.audience = audience
        self.maxsize = maxsize
        self.label = label
        self.queue: deque[Payload] = deque()
        self.dropped = False
        self.close_code, self.close_reason = CLOSE_SLOW, SLOW_REASON
        self.sent = 0
        self._ready = asyncio.Event()
        # WebSocket clients: their transport, written to directly (see offer), and whether
        # their writer holds taken-but-unwritten payloads (then order says: queue).
        self.transport: Any = None
        self.holding = False

    def offer(self, message: Payload, frame: bytes | None = None) -> bool:
        """Send or queue without waiting; False (and dropped) when the queue is full.

        A WebSocket client that keeps up (nothing queued, its socket taking what it is
        given) gets the ready-made frame written straight to its transport: no task
        switch per client per change, which is what fan-out to hundreds costs."""
        if self.dropped:
            return False
        t = self.transport
        if (frame is not None and t is not None and not self.queue and not self.holding
                and not t.is_closing() and t.get_write_buffer_size() < _WRITE_LIMIT):
            t.write(frame)
            self.sent += 1
            return True
        if len(self.queue) >= self.maxsize:
            self.dropped = True
            self.queue.clear()
            self._ready.set()
            return False
        self.queue.append(message)
        self._ready.set()
        return True

    async def next_batch(self, timeout: float | None = None) -> list[Payload]:
        """Everything queued now ([] after ``timeout`` s idle); raises Dropped."""
        if not self.queue and not self.dropped:
            self._ready.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        if self.dropped:
            raise Dropped(self.label)
        batch = list(self.queue)
        self.queue.clear()
        return batch


class Hub:
    """The connected clients of this instance."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self.stats = {"connected": 0, "dropped": 0, "messages": 0}
        self.writers: dict[Client, asyncio.Task[None]] = {}

    def join(self, audience: Audience, snapshot: Payload, label: str) -> Client:
        """Register a client with its snapshot as first message (synchronously, so no
        delta can fall between the snapshot and the client's queue)."""
        client = Client(audience, self.queue_size, label)
        client.offer(snapshot)
        self.clients.add(client)
        self.stats["connected"] += 1
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    def broadcast(self, encode: Callable[[Audience], Payload | None]) -> None:
        """Offer one payload to every client; ``encode(audience)`` is called once per
        audience, so the JSON and its WebSocket frame are built once for all clients."""
        cache: dict[Audience, tuple[Payload, bytes] | None] = {}
        for client in list(self.clients):
            aud = client.audience
            if aud not in cache:
                payload = encode(aud)
                cache[aud] = (payload, ws_frame(payload[1])) if payload is not None else None
            entry = cache[aud]
            if entry is None:
                continue
            if not client.offer(*entry):
                self._drop(client)
        self.stats["messages"] += 1

    def _drop(self, client: Client) -> None:
        self.clients.discard(client)
        self.stats["dropped"] += 1
        log.warning("monitor_client_dropped", client=client.label, queue_size=client.maxsize)
        writer = self.writers.get(client)
        if writer is not None:
            writer.cancel()  # it may be stuck in a send to the slow socket

    def close_all(self) -> None:
        """Shutting down: every client is told to go away (and may reconnect elsewhere)."""
        for client in list(self.clients):
            client.dropped = True
            client.close_code, client.close_reason = 1001, "server-shutdown"
            client._ready.set()
        self.clients.clear()


def ws_frame(payload: bytes) -> bytes:
    """A final, unmasked WebSocket text frame (RFC 6455 5.2) around ``payload``."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


def merge(batch: list[Payload]) -> Payload:
    """Payloads that queued up for one client, as one JSON array (messages in order)."""
    if len(batch) == 1:
        return batch[0]
    parts = [p[1:-1] if p[:1] == b"[" else p for _seq, p in batch]
    return batch[-1][0], b"[" + b",".join(parts) + b"]"


async def _pump(client: Client, send: Callable[[list[Payload]], Awaitable[None]], idle: float | None) -> None:
    while True:
        batch = await client.next_batch(idle)
        await send(batch)
        client.sent += len(batch)


async def serve_websocket(request: web.Request, hub: Hub, join: Callable[[], Client]) -> web.WebSocketResponse:
    """Upgrade, then join the hub (a failed handshake leaves nothing registered)."""
    # No permessage-deflate: compressing every frame once per browser costs more CPU than
    # the whole fan-out, and the feed's own batching already keeps frames few.
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=1 << 16, compress=False)
    await ws.prepare(request)
    client = join()
    transport = request.transport

    async def send(batch: list[Payload]) -> None:
        # What queued up while the socket was backed up goes out as one frame.
        client.holding = True
        try:
            while transport is not None and transport.get_write_buffer_size() > _WRITE_LIMIT:
                await asyncio.sleep(0.01)  # a slow reader: wait, or be dropped when the queue fills
            if transport is None or transport.is_closing():
                raise ConnectionResetError("the client went away")
            transport.write(ws_frame(merge(batch)[1]))
        finally:
            client.holding = False

    writer = asyncio.create_task(_pump(client, send, None))
    hub.writers[client] = writer
    client.transport = transport  # from now on, offer() may write to it directly
    reader = asyncio.create_task(_read_until_closed(ws))
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.leave(client)
        hub.writers.pop(client, None)
        for task in (writer, reader):
            task.cancel()
        await asyncio.gather(writer, reader, return_exceptions=True)
        if client.dropped:
            await _close(request, ws, client.close_code, client.close_reason)
        else:
            await _close(request, ws, 1000, "bye")
    return ws


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    async for msg in ws:  # the feed is one-way; incoming text is ignored
        if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
            return


async def _close(request: web.Request, ws: web.WebSocketResponse, code: int, reason: str) -> None:
    try:
        await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 2.0)
    except (asyncio.TimeoutError, ConnectionError, RuntimeError):
        if request.transport is not None:
            request.transport.abort()  # the close frame cannot get past a full socket


async def serve_sse(request: web.Request, hub: Hub, join: Callable[[], Client]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    client = join()

    async def send(batch: list[Payload]) -> None:
        if not batch:
            await resp.write(b": keep-alive\n\n")
            return
        seq, payload = merge(batch)
        await resp.write((f"id: {seq}\n" if seq is not None else "").encode() + b"data: " + payload + b"\n\n")

    writer = asyncio.create_task(_pump(client, send, _SSE_KEEPALIVE))
    hub.writers[client] = writer
    try:
        await asyncio.wait({writer})  # ends when the client goes, is dropped, or we stop
    finally:
        hub.leave(client)
        hub.writers.pop(client, None)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    if client.dropped:
        with contextlib.suppress(Exception):
            notice = json.dumps({"type": "dropped", "code": client.close_code, "reason": client.close_reason})
            await asyncio.wait_for(resp.write(f"event: dropped\ndata: {notice}\n\n".encode()), 1.0)
        if request.transport is not None:
            request.transport.close()
    return resp
