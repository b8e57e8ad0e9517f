"""PostgreSQL plumbing: an asyncpg pool on the configured server, or on an embedded
PostgreSQL 16 (pgserver) kept under the data directory when no URL is given."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from callcycle.logs import get_logger

log = get_logger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server of our own, started from the pgserver wheel."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    async def start(self) -> str:
        import pgserver  # imported lazily: only needed with no DATABASE_URL

        self.data_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._server = await loop.run_in_executor(
            None, lambda: pgserver.get_server(self.data_dir, cleanup_mode="stop"))
        uri = self._server.get_uri()
        log.info("embedded_postgres_started", data_dir=str(self.data_dir))
        return uri

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.get_running_loop().run_in_executor(None, server.cleanup)


# Array types our statements pass as parameters (outbox rows, IVR steps, imports). asyncpg
# learns a type the first time a statement uses it, with an introspection query that costs
# four round trips and tens of milliseconds: on a pooled connection's first call outcome,
# that would land in the middle of its commit. A new connection learns them at once.
_ARRAY_TYPES = ("uuid[]", "int[]", "bigint[]", "timestamptz[]", "jsonb[]")   # text[] it knows


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    params = ", ".join(f"${i}::{t}" for i, t in enumerate(_ARRAY_TYPES, start=1))
    await conn.prepare(f"SELECT {params}")


async def _release_as_is(conn: asyncpg.Connection) -> None:
    """Returning a connection to the pool costs no round trip.

    asyncpg's default reset sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: one more round trip after each transaction, on the path
    of every call outcome. Our pooled connections keep no session state to undo: settings
    are ``SET LOCAL``, LISTEN has a connection of its own (crm_sync.worker), the migration
    lock is released by the migration runner, and an open transaction is still rolled back
    by asyncpg before this is called."""


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections speak JSON for json/jsonb columns."""
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection,
                                     reset=_release_as_is, command_timeout=60)


@asynccontextmanager
async def database(url: str, data_dir: Path, *, min_size: int = 2, max_size: int = 10) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """Yield (pool, url). Starts and stops an embedded server when ``url`` is empty."""
    embedded = None
    if not url:
        embedded = EmbeddedPostgres(data_dir / "pgdata")
        url = await embedded.start()
    try:
        pool = await create_pool(url, min_size=min_size, max_size=max_size)
        try:
            yield pool, url
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await embedded.stop()
