"""The supervisor console's live view on one instance: ``app[keys.MONITOR]``.

    pbx router listener -> LiveState (per Asterisk server) --owner only--> Board -> Hub
                                                             \\-> Bus (Redis) -> other instances' Boards

Other features publish through it: ``monitor.campaigns`` (see monitor.campaigns),
``monitor.publish(kind, id, data)`` for any entity, ``monitor.annotate_call(server,
linkedid, flow_node=..., intent=..., contact_id=..., stage=...)`` for a live call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from callcycle.errors import Unavailable
from callcycle.logs import get_logger
from monitor.board import Board
from monitor.bus import Bus
from monitor.campaigns import CampaignRegistry
from monitor.config import MonitorSettings
from monitor.errors import ActionRefused
from monitor.feed import Hub
from monitor.history import History
from monitor.models import Audience, Delta, audience_of, latest_only
from monitor.state import LiveState
from monitor.views import for_audience, refresh

log = get_logger(__name__)
Command = Callable[..., Awaitable[None]]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, separators=(",", ":"))


class Monitor:
    def __init__(self, settings: MonitorSettings, redis: aioredis.Redis, *, instance: str | None = None,
                 kpi_source: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> None:
        self.settings = settings
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.board = Board(self._changed)
        self.hub = Hub(settings.feed_queue_size)
        self.bus = Bus(redis, settings.bus_channel, self.instance, self._on_bus, self._on_subscribed)
        self.campaigns = CampaignRegistry(lambda cid, data: self.publish("campaign", cid, data))
        self.history = History(settings.sample_interval, settings.abandon_window)
        self.lives: dict[str, LiveState] = {}
        self.owned: set[str] = set()
        self.commands: dict[str, Command] = {"campaign_pause": self._campaign_pause}
        self._kpi_source = kpi_source
        self._peers: dict[str, float] = {}
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._pending: list[tuple[int, Delta]] = []
        self._flush_scheduled = False
        self._next_flush = 0.0   # loop time before which a flush waits (see _changed)
        self._tasks: list[asyncio.Task[None]] = []

    # -- wiring --------------------------------------------------------------------------------

    def watch(self, server: str, router: Any) -> LiveState:
        """Build the live view of one Asterisk server from its router's events."""
        live = LiveState(server, router, lambda delta: self._local(server, delta))
        self.lives[server] = live
        return live

    async def start(self) -> None:
        await self.bus.start()
        await self._hold_leases()
        s = self.settings
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("monitor-leases", self._every(s.owner_lease / 3, self._hold_leases)),
            ("monitor-tick", self._every(s.tick_interval, self._tick)),
            ("monitor-announce", self._every(s.full_interval, self._announce_and_expire)),
            ("monitor-sample", self._every(s.sample_interval, self._sample)),
            ("monitor-kpis", self._every(s.kpi_interval, self._kpis, first=0.0)))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.hub.close_all()
        for name in list(self.owned):
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self.bus.release(name)
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self.bus.stop()

    async def _every(self, interval: float, job: Callable[[], Any], first: float | None = None) -> None:
        await asyncio.sleep(interval if first is None else first)
        while True:
            try:
                result = job()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("monitor_job_failed", job=getattr(job, "__name__", "?"))
            await asyncio.sleep(interval)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, kind: str, eid: str, data: dict[str, Any] | None) -> None:
        """Publish one entity (``data`` None removes it) to every supervisor of every
        instance. Never blocks; safe inside a router listener."""
        self.board.apply(Delta(kind, eid, data), self.instance)
        self.bus.delta(kind, eid, data, None)

    def annotate_call(self, server: str, linkedid: str, **fields: Any) -> bool:
        """Show a live call's flow node, intent tags, contact, stage (see monitor.views)."""
        live = self.lives.get(server)
        return live.annotate(linkedid, fields) if live is not None else False

    def _local(self, server: str, delta: Delta) -> None:
        if server in self.owned:
            self.board.apply(delta, self.instance)
            self.bus.delta(delta.kind, delta.id, delta.data, delta.at)

    def _changed(self, seq: int, delta: Delta) -> None:
        # Changes are sent once per event-loop turn (a router slice's changes become one
        # frame per client), but a flush costs a socket write per client: with hundreds of
        # consoles, a flush after every slice of a burst of AMI events would take the loop
        # from the router and make every later delta wait. So flushing may use at most half
        # of the loop: after a flush that took d seconds the next waits d (one console: at once).
        self._pending.append((seq, delta))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = asyncio.get_running_loop()
            wait = self._next_flush - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if not pending or not self.hub.clients:
            return
        started = time.perf_counter()
        self._broadcast(pending)
        took = time.perf_counter() - started
        self._next_flush = asyncio.get_running_loop().time() + took

    def _broadcast(self, pending: list[tuple[int, Delta]]) -> None:
        pending = latest_only(pending)

        def encode(audience: Audience) -> tuple[int, bytes] | None:
            messages = []
            for seq, delta in pending:
                visible, data = for_audience(delta.kind, delta.data, audience)
                if visible:
                    messages.append(_dumps({"type": "delta", "seq": seq, "kind": delta.kind, "id": delta.id,
                                            "data": data, "at": delta.at}))
            if not messages:
                return None
            body = messages[0] if len(messages) == 1 else "[" + ",".join(messages) + "]"
            return pending[-1][0], body.encode()

        self.hub.broadcast(encode)

    def snapshot(self, subject: str, role: str) -> dict[str, Any]:
        audience = audience_of(role)
        now = time.time()
        entities: dict[str, dict[str, Any]] = {}
        for kind, table in self.board.entities.items():
            shown = {}
            for eid, entity in table.items():
                visible, data = for_audience(kind, refresh(kind, entity, now), audience)
                if visible:
                    shown[eid] = data
            if kind not in ("campaign", "audit") or audience is Audience.FULL:
                entities[kind] = shown
        return {"type": "snapshot", "seq": self.board.seq, "instance": self.instance, "server_time": now,
                "subject": subject, "role": role, "entities": entities, "series": list(self.history.points)}

    def snapshot_message(self, subject: str, role: str) -> tuple[int, bytes]:
        """The snapshot, as the first payload of a new client (see monitor.feed)."""
        self._flush()  # changes not sent yet are in the snapshot: send them to the others first
        return self.board.seq, _dumps(self.snapshot(subject, role)).encode()

    # -- ownership, heartbeat, reconcile -------------------------------------------------------

    async def _hold_leases(self) -> None:
        changed = False
        for name, live in self.lives.items():
            try:
                held = await self.bus.hold(name, self.settings.owner_lease)
            except (aioredis.RedisError, OSError) as exc:
                log.warning("monitor_lease_failed", server=name, error=str(exc))
                continue
            if held != (name in self.owned):
                changed = True
                (self.owned.add if held else self.owned.discard)(name)
                log.info("monitor_ownership", server=name, owner=held, instance=self.instance)
                if held:
                    live.tick()
        if changed:
            self.board.replace_origin(self.instance, self._own_entities())
            self._announce()

    def _own_entities(self) -> dict[str, dict[str, Any]]:
        full: dict[str, dict[str, Any]] = {"call": {}, "agent": {}, "queue": {},
                                            "campaign": self.campaigns.full()}
        for name in self.owned:
            for kind, table in self.lives[name].full().items():
                full[kind].update(table)
        return full

    def _announce(self) -> None:
        self.bus.send({"t": "full", "e": self._own_entities()})

    def _announce_and_expire(self) -> None:
        self._announce()
        deadline = time.monotonic() - self.settings.peer_timeout
        for peer in [p for p, seen in self._peers.items() if seen < deadline]:
            del self._peers[peer]
            gone = self.board.forget_origin(peer)
            log.warning("monitor_peer_gone", peer=peer, entities=gone)

    def _on_subscribed(self) -> None:
        self.bus.send({"t": "sync"})
        self._announce()

    def _tick(self) -> None:
        for live in self.lives.values():
            live.tick()

    def _sample(self) -> None:
        point = self.history.sample(time.time(), self.board.entities)
        message = (None, _dumps({"type": "sample", "point": point}).encode())
        self.hub.broadcast(lambda _audience: message)

    async def _kpis(self) -> None:
        if self._kpi_source is None:
            return
        kpis = await self._kpi_source()
        self.board.apply(Delta("kpis", "stages", kpis), self.instance)

    # -- the bus -------------------------------------------------------------------------------

    def _on_bus(self, message: dict[str, Any]) -> None:
        origin, kind = message["o"], message.get("t")
        if kind != "bye":
            self._peers[origin] = time.monotonic()
        if kind == "d":
            for k, eid, data, at in message["m"]:
                self.board.apply(Delta(k, eid, data, at), origin)
        elif kind == "full":
            self.board.replace_origin(origin, message.get("e") or {})
        elif kind == "sync":
            self._announce()
        elif kind == "bye":
            self._peers.pop(origin, None)
            self.board.forget_origin(origin)
        elif kind == "cmd":
            asyncio.get_running_loop().create_task(self._run_command(message))
        elif kind == "reply":
            future = self._replies.pop(message.get("req", ""), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def remote(self, origin: str, command: str, **args: Any) -> None:
        """Run ``command`` on instance ``origin`` (which owns what it acts on)."""
        req = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._replies[req] = future
        self.bus.send({"t": "cmd", "to": origin, "req": req, "cmd": command, "args": args})
        try:
            reply = await asyncio.wait_for(future, self.settings.remote_action_timeout)
        except asyncio.TimeoutError as exc:
            raise Unavailable(f"instance {origin} did not answer", error_id="instance-unavailable") from exc
        finally:
            self._replies.pop(req, None)
        if not reply.get("ok"):
            raise ActionRefused(reply.get("error") or "refused")

    async def _run_command(self, message: dict[str, Any]) -> None:
        handler = self.commands.get(message.get("cmd", ""))
        ok, error = False, f"unknown command {message.get('cmd')!r}"
        if handler is not None:
            try:
                await handler(**message.get("args", {}))
                ok, error = True, None
            except Exception as exc:  # the error goes back to the instance that asked
                error = str(exc) or type(exc).__name__
        self.bus.send({"t": "reply", "to": message["o"], "req": message.get("req"), "ok": ok, "error": error})

    async def _campaign_pause(self, campaign_id: str, paused: bool) -> None:
        await self.campaigns.set_paused(campaign_id, paused)
