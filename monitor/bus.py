"""Redis pub/sub between instances, so every instance's changes reach every supervisor.

One channel (``[monitor] bus_channel``); every message is JSON with its origin ``o``:

    {"o": inst, "t": "d", "m": [[kind, id, data|null, at|null], ...]}   deltas, batched
    {"o": inst, "t": "full", "e": {kind: {id: data}}}    all that inst owns (heartbeat)
    {"o": inst, "t": "sync"}                             "announce your full state now"
    {"o": inst, "t": "bye"}                              inst stops: forget its entities
    {"o": inst, "t": "cmd", "to": inst2, "req": rid, "cmd": name, "args": {...}}
    {"o": inst, "t": "reply", "to": inst, "req": rid, "ok": bool, "error": str|null}

Pub/sub loses what is sent while a subscriber is disconnected; that is healed by the
``full`` announcements every ``full_interval`` s and a ``sync`` after every (re)subscribe.
Publishing never blocks the caller: messages wait in a bounded outbox drained by one task.

Ownership: the calls, agents and queues of one Asterisk server are published by one
instance only, the holder of the Redis lease ``<channel>:owner:<server>`` (SET NX PX,
renewed by its holder), so N instances on one Asterisk do not publish everything N times.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from callcycle.logs import get_logger

log = get_logger(__name__)

_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) else return 0 end"""
_OUTBOX_MAX = 20000


class Bus:
    def __init__(self, redis: aioredis.Redis, channel: str, instance: str,
                 on_message: Callable[[dict[str, Any]], None], on_subscribed: Callable[[], None]) -> None:
        self.redis = redis
        self.channel = channel
        self.instance = instance
        self._own_prefix = json.dumps({"o": instance})[:-1].encode()   # how _flush's messages start
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._outbox: deque[dict[str, Any]] = deque()
        self._deltas: list[list[Any]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()
        self.stats = {"published": 0, "received": 0, "outbox_overflows": 0, "errors": 0}

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._subscriber(), name="monitor-bus-sub"),
                       asyncio.create_task(self._publisher(), name="monitor-bus-pub")]
        await asyncio.wait_for(self.subscribed.wait(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.send({"t": "bye"})
        await asyncio.wait_for(self._flush(), 2.0)

    # -- publishing ---------------------------------------------------------------------------

    def delta(self, kind: str, eid: str, data: Any, at: float | None) -> None:
        """Queue one delta; deltas queued together go out as one message."""
        self._deltas.append([kind, eid, data, at])
        self._wake.set()

    def send(self, message: dict[str, Any]) -> None:
        if len(self._outbox) >= _OUTBOX_MAX:
            self._outbox.popleft()  # the next full announcement repairs what this loses
            self.stats["outbox_overflows"] += 1
        self._outbox.append(message)
        self._wake.set()

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except (aioredis.RedisError, OSError) as exc:
                self.stats["errors"] += 1
                log.warning("monitor_bus_publish_failed", error=str(exc))
                await asyncio.sleep(0.5 + random.random())
                self._wake.set()

    async def _flush(self) -> None:
        if self._deltas:
            if len(self._deltas) > _OUTBOX_MAX:
                del self._deltas[: len(self._deltas) - _OUTBOX_MAX]
                self.stats["outbox_overflows"] += 1
            self._outbox.append({"t": "d", "m": self._deltas})
            self._deltas = []
        if not self._outbox:
            return
        batch = list(self._outbox)
        self._outbox.clear()
        pipe = self.redis.pipeline(transaction=False)
        for message in batch:
            pipe.publish(self.channel, json.dumps({"o": self.instance, **message}, default=str))
        try:
            await pipe.execute()
        except BaseException:
            self._outbox.extendleft(reversed(batch))  # sent again once Redis answers
            raise
        self.stats["published"] += len(batch)

    # -- subscribing --------------------------------------------------------------------------

    async def _subscriber(self) -> None:
        delay = 0.25
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                self._on_subscribed()
                delay = 0.25
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None:
                        self._receive(msg["data"])
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                self.stats["errors"] += 1
                log.warning("monitor_bus_subscribe_failed", error=str(exc), retry_in=delay)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # the connection may already be gone
                    pass
            await asyncio.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 10.0)

    def _receive(self, raw: bytes) -> None:
        if raw.startswith(self._own_prefix):
            return   # our own message back from the channel: not worth decoding
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("monitor_bus_bad_message")
            return
        if message.get("o") == self.instance:
            return
        to = message.get("to")
        if to is not None and to != self.instance:
            return
        self.stats["received"] += 1
        try:
            self._on_message(message)
        except Exception:
            log.exception("monitor_bus_handler_failed", kind=message.get("t"))

    # -- ownership ----------------------------------------------------------------------------

    def _owner_key(self, name: str) -> str:
        return f"{self.channel}:owner:{name}"

    async def hold(self, name: str, lease_s: float) -> bool:
        """Take or renew the lease on ``name``; True while we hold it."""
        ms = int(lease_s * 1000)
        key = self._owner_key(name)
        if await self.redis.set(key, self.instance, nx=True, px=ms):
            return True
        return bool(await self.redis.eval(_RENEW, 1, key, self.instance, ms))

    async def release(self, name: str) -> None:
        await self.redis.eval(_RELEASE, 1, self._owner_key(name), self.instance)
