"""Who paces a campaign: a Redis lease, with a fencing token kept in PostgreSQL.

Redis decides *liveness*: ``SET NX PX`` gives the lease to one instance at a time, and
the holder renews it; an instance that dies stops renewing and the key expires. Redis
alone cannot make this safe (a paused process may still believe it leads after its key
expired), so the winner also raises the campaign's ``lease_token`` in PostgreSQL and
every write of the dialing loop is fenced by it (see ``repository.hold_fence``): once a
newer token exists, the old leader can neither reserve an attempt nor send an originate
nor record an outcome. The token comes from the database, so it keeps growing even if
Redis loses its data.
"""

from __future__ import annotations

import time

import asyncpg
import redis.asyncio as aioredis

from callcycle.logs import get_logger
from dialer import repository as repo

log = get_logger(__name__)

_RENEW = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"""
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1]) else return 0 end"""


def lease_key(namespace: str, campaign_id: int) -> str:
    """Keys carry the database's namespace (repository.namespace): deployments may share a Redis."""
    return f"callcycle:dialer:{namespace}:lease:{campaign_id}"


class Lease:
    """The lease of one campaign as seen by one instance (``holder``)."""

    def __init__(self, redis: aioredis.Redis, pool: asyncpg.Pool, campaign_id: int, holder: str,
                 ttl_s: float, namespace: str) -> None:
        self.redis, self.pool, self.campaign_id, self.holder = redis, pool, campaign_id, holder
        self.key = lease_key(namespace, campaign_id)
        self.ttl_ms = int(ttl_s * 1000)
        self.token: int | None = None
        self._valid_until = 0.0

    @property
    def held(self) -> bool:
        """Held, as far as this instance can tell (renewed within the TTL, with margin)."""
        return self.token is not None and time.monotonic() < self._valid_until

    async def acquire(self) -> int | None:
        """Take the lease if nobody holds it; then raise the fence. The new token, or None."""
        started = time.monotonic()
        key = self.key
        if not await self.redis.set(key, self.holder, nx=True, px=self.ttl_ms):
            # Still ours (a renewal failed on a blip and the key survived): take it back.
            if not await self.redis.eval(_RENEW, 1, key, self.holder, self.ttl_ms):
                return None
        async with self.pool.acquire() as conn:
            self.token = await repo.raise_fence(conn, self.campaign_id, self.holder)
        self._valid_until = started + self.ttl_ms / 1000 * 0.8
        log.info("dialer_lease_acquired", campaign_id=self.campaign_id, holder=self.holder, token=self.token)
        return self.token

    async def renew(self) -> bool:
        started = time.monotonic()
        try:
            ok = await self.redis.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms)
        except (aioredis.RedisError, OSError) as exc:
            log.warning("dialer_lease_renew_failed", campaign_id=self.campaign_id, error=str(exc))
            ok = 0
        if ok:
            self._valid_until = started + self.ttl_ms / 1000 * 0.8
            return True
        if self.token is not None:
            log.warning("dialer_lease_lost", campaign_id=self.campaign_id, holder=self.holder, token=self.token)
        self.token = None
        return False

    async def release(self) -> None:
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.holder)
        except (aioredis.RedisError, OSError):
            pass  # it expires anyway
        self.token = None

    async def current_holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value
