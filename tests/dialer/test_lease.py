"""The Redis lease and its fencing token in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import redis.asyncio as aioredis

from dialer import repository as repo
from dialer.config import DialerSettings
from dialer.lease import Lease
from dialer.models import CampaignSettings, Mode


async def campaign(db_pool) -> int:
    async with db_pool.acquire() as conn:
        c = await repo.insert_campaign(conn, "lease", Mode.PROGRESSIVE, CampaignSettings.parse({}, DialerSettings(),
                                                                                            Mode.PROGRESSIVE),
                                       datetime.now(timezone.utc))
    return c.id


async def test_one_holder_at_a_time_and_each_new_holder_gets_a_higher_token(db_pool, redis_url):
    redis = aioredis.from_url(redis_url)
    cid = await campaign(db_pool)
    ns = f"test-{cid}-{uuid.uuid4().hex[:6]}"
    a, b = Lease(redis, db_pool, cid, "a", 0.4, ns), Lease(redis, db_pool, cid, "b", 0.4, ns)
    try:
        first = await a.acquire()
        assert first == 1 and a.held and await a.current_holder() == "a"
        assert await b.acquire() is None
        assert await a.renew()
        await asyncio.sleep(0.6)             # a stops renewing (paused, dead, partitioned)
        assert not a.held
        second = await b.acquire()
        assert second == 2 and b.held
        assert not await a.renew()           # the old holder learns it lost
        async with db_pool.acquire() as conn, conn.transaction():
            assert await repo.hold_fence(conn, cid, first) is None       # fenced out
            assert await repo.hold_fence(conn, cid, second) is not None
        await b.release()
        assert await a.acquire() == 3        # released: taken at once
    finally:
        await redis.aclose()


async def test_a_lease_whose_renewal_failed_but_whose_key_survived_is_taken_back(db_pool, redis_url):
    redis = aioredis.from_url(redis_url)
    cid = await campaign(db_pool)
    a = Lease(redis, db_pool, cid, "a", 5, f"test-{uuid.uuid4().hex[:6]}")
    try:
        assert await a.acquire() == 1
        a.token = None                       # as after a failed renewal
        assert await a.acquire() == 2        # ours still: the fence moves on, no one else got in
    finally:
        await a.release()
        await redis.aclose()


async def test_two_databases_sharing_one_redis_do_not_share_leases(db_pool, redis_url):
    redis = aioredis.from_url(redis_url)
    cid = await campaign(db_pool)
    async with db_pool.acquire() as conn:
        ns = await repo.namespace(conn)
    elsewhere = Lease(redis, db_pool, cid, "other-deployment", 5, "another-database:ns")
    ours = Lease(redis, db_pool, cid, "us", 5, ns)
    try:
        assert await elsewhere.acquire() is not None
        assert await ours.acquire() is not None      # the same campaign id, another deployment's key
        assert ns.startswith("cc_test_")              # the database's name and its own random id
    finally:
        await elsewhere.release()
        await ours.release()
        await redis.aclose()
