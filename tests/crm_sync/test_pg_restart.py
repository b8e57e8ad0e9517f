"""PostgreSQL restarted in the middle of a run: delivery resumes by itself, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from callcycle import migrate
from callcycle.db import create_pool
from tests.crm_sync.conftest import Received, add_endpoint, contact, count, crm_settings, emit, running_workers, wait_for


class OwnPostgres:
    """A pgserver instance of this test's own, so it can be stopped and started."""

    def __init__(self, data: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(data, cleanup_mode="stop")
        self.url = self.server.get_uri()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user)

    async def stop(self) -> None:
        await asyncio.to_thread(self._pg_ctl, "-w", "-m", "fast", "stop")

    async def start(self) -> None:
        def start() -> None:
            with self.server._lock:
                self.server.ensure_postgres_running()

        await asyncio.to_thread(start)
        assert self.server.get_uri() == self.url


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    pg = OwnPostgres(tmp_path / "pg")
    try:
        yield pg
    finally:
        pg.server.cleanup()


@pytest.fixture
async def own_pool(own_postgres: OwnPostgres) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(own_postgres.url)
    try:
        await migrate.apply(conn)
    finally:
        await conn.close()
    pool = await create_pool(own_postgres.url, min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()


async def test_postgres_restarted_mid_run_delivery_resumes_by_itself_and_nothing_is_lost(
        own_postgres, own_pool, receiver, clock):
    async def unhurried(_r: Received, _n: int) -> web.StreamResponse:
        await asyncio.sleep(0.01)
        return web.Response()

    receiver.behaviour["/hook"] = unhurried
    await add_endpoint(own_pool, receiver.url())
    before = await emit(own_pool, [("contact.created", {"contact": contact(c), "source": "x"}, f"contact:{c % 20}")
                                   for c in range(300)])
    async with running_workers(own_pool, crm_settings(concurrency=4, batch_size=4), clock,
                               n=2, db_url=own_postgres.url):
        await wait_for(lambda: len(receiver.requests) >= 40, what="delivery under way")
        await own_postgres.stop()
        assert len(receiver.requests) < 300
        await own_postgres.start()
        after = await _emit_when_up(own_pool, 100)
        # A claim the server committed but whose answer the restart cut off is in doubt:
        # its rows come back when their lease runs out, as time passes.
        clock.advance(timedelta(seconds=31))
        await wait_for(lambda: _delivered(own_pool, 400), timeout=30, what="all 400 delivered")
    sent = {r.json["id"] for r in receiver.requests}
    assert sent == {str(i) for i in before + after}


async def _emit_when_up(pool: asyncpg.Pool, n: int) -> list:
    # The pool's first use after the restart may meet a dead connection: the application
    # would retry its transaction the same way.
    for _ in range(50):
        try:
            return await emit(pool, [("contact.created", {"contact": contact(1000 + c), "source": "x"}, None)
                                     for c in range(n)])
        except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
            await asyncio.sleep(0.1)
    raise AssertionError("PostgreSQL did not come back")


async def _delivered(pool: asyncpg.Pool, n: int) -> bool:
    try:
        return await count(pool, "state = 'delivered'") >= n
    except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
        return False

