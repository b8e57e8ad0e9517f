"""Fixtures of the webhook tests: a real local HTTP receiver that records what it gets (the
CRM stand-in), workers on a ManualClock, and helpers that write events the way the rest of
callcycle does (crm_sync.outbox.enqueue inside a transaction)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from callcycle.clock import ManualClock
from crm_sync import outbox, service
from crm_sync.config import CrmSyncSettings
from crm_sync.worker import Wakeup, Worker
from tests.pbx.tools import eventually

Behaviour = Callable[["Received", int], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]


async def ok(_r: Received, _n: int) -> web.StreamResponse:
    return web.Response(text="ok")


class Receiver:
    """An aiohttp server on 127.0.0.1; ``behaviour[path]`` decides each answer (default 200).
    It can be stopped and started again on the same port (the CRM going down and back)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.behaviour: dict[str, Behaviour] = {}
        self.port = _free_port()
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        got = Received(request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read())
        self.requests.append(got)
        answer = self.behaviour.get(request.path, ok)
        return await answer(got, len(self.at(request.path)))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
def clock() -> ManualClock:
    # Starts at real time, so leases and retries compare sensibly with rows written by now().
    return ManualClock(datetime.now(timezone.utc))


def crm_settings(**changes: Any) -> CrmSyncSettings:
    """Test settings: loopback allowed, fast polling, no jitter, short timeouts."""
    base: dict[str, Any] = dict(allow_private_destinations=True, poll_interval=0.05, retry_jitter=0.0,
                                total_timeout=3.0, connect_timeout=1.0, lease_seconds=30.0)
    return CrmSyncSettings(**{**base, **changes})


async def add_endpoint(pool: asyncpg.Pool, url: str, settings: CrmSyncSettings | None = None,
                       **fields: Any) -> tuple[int, str]:
    endpoint, secret = await service.create_endpoint(pool, settings or crm_settings(), {"url": url, **fields})
    return endpoint.id, secret


def contact(cid: int, phone: str | None = "+14155550123", stage: str = "acquisition") -> dict[str, Any]:
    return {"id": cid, "external_id": f"crm-{cid}", "phone": phone, "stage": stage}


def stage_changed(cid: int, seq: int = 0) -> dict[str, Any]:
    return {"contact": contact(cid), "from_stage": "acquisition", "to_stage": "growth",
            "reason": f"step {seq}", "cause": None}


async def emit(pool: asyncpg.Pool, events: list[tuple[str, dict[str, Any], str | None]],
               per_transaction: int = 50) -> list[uuid.UUID]:
    """Write events with outbox.enqueue, ``per_transaction`` per transaction."""
    ids: list[uuid.UUID] = []
    async with pool.acquire() as conn:
        for start in range(0, len(events), per_transaction):
            async with conn.transaction():
                for event_type, data, key in events[start:start + per_transaction]:
                    ids.append(await outbox.enqueue(conn, event_type, data, ordering_key=key))
    return ids


async def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy."""
    return await eventually(predicate, timeout, 0.02, what)


async def count(pool: asyncpg.Pool, where: str = "true", *args: Any) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM webhook_deliveries WHERE {where}", *args)


@asynccontextmanager
async def running_workers(pool: asyncpg.Pool, settings: CrmSyncSettings, clock: ManualClock,
                          n: int = 1, db_url: str | None = None,
                          worker_cls: type[Worker] = Worker) -> AsyncIterator[list[Worker]]:
    """``n`` workers (and a LISTEN connection when ``db_url`` is given) until the block ends."""
    workers = [worker_cls(pool, settings, clock, name=f"test-{i}") for i in range(n)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    if db_url:
        tasks.append(asyncio.create_task(Wakeup(db_url, [w.wake for w in workers]).run()))
    try:
        yield workers
    finally:
        for w in workers:
            w.stop()
        if db_url:
            tasks[-1].cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
