"""Many workers, one killed worker: no row claimed twice, per-contact order kept, nothing lost."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import defaultdict
from datetime import timedelta

from standardwebhooks.webhooks import Webhook

from tests.conftest import ROOT
from tests.crm_sync.conftest import (add_endpoint, contact, count, crm_settings, emit, running_workers,
                                     wait_for)

CONTACTS, PER_CONTACT = 1000, 10


async def _bulk_outcomes(pool) -> None:
    # 10,000 events in one statement (the fan-out trigger fires per row, as with enqueue).
    await pool.execute("""
        INSERT INTO outbox_events (id, event_type, ordering_key, payload, occurred_at)
        SELECT gen_random_uuid(), 'contact.stage_changed', 'contact:' || c,
               jsonb_build_object('contact', jsonb_build_object('id', c, 'external_id', NULL,
                                  'phone', NULL, 'stage', 'growth'),
                                  'from_stage', 'acquisition', 'to_stage', 'growth',
                                  'reason', 'step ' || s, 'cause', NULL),
               now()
          FROM generate_series(0, $2 - 1) AS s, generate_series(0, $1 - 1) AS c
         ORDER BY s, c""", CONTACTS, PER_CONTACT)


async def test_four_workers_deliver_10000_events_each_claimed_once_in_contact_order(db_pool, receiver, clock):
    _endpoint, secret = await add_endpoint(db_pool, receiver.url())
    await _bulk_outcomes(db_pool)
    started = time.perf_counter()
    async with running_workers(db_pool, crm_settings(concurrency=32), clock, n=4):
        await wait_for(lambda: _all_delivered(db_pool), timeout=80, what="10,000 delivered")
    elapsed = time.perf_counter() - started
    assert len(receiver.requests) == CONTACTS * PER_CONTACT
    assert len({r.msg_id for r in receiver.requests}) == CONTACTS * PER_CONTACT
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_attempts") == CONTACTS * PER_CONTACT
    assert await count(db_pool, "attempts <> 1") == 0
    steps: dict[int, list[str]] = defaultdict(list)
    for r in receiver.requests:
        data = r.json["data"]
        steps[data["contact"]["id"]].append(data["reason"])
    assert all(seen == [f"step {s}" for s in range(PER_CONTACT)] for seen in steps.values())
    Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    print(f"10,000 deliveries by 4 workers in {elapsed:.1f} s")


async def _all_delivered(pool) -> bool:
    return await count(pool, "state = 'delivered'") == CONTACTS * PER_CONTACT


async def test_worker_killed_between_the_2xx_and_marking_the_row_redelivers_with_the_same_id(
        db_pool, db_url, receiver, clock):
    await add_endpoint(db_pool, receiver.url())
    [event_id] = await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, "contact:1")])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.crm_sync._frozen_worker", db_url, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode().split() == ["answered", "200"]
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert await count(db_pool, "state = 'in_flight'") == 1  # the 2xx was never recorded
    # The dead worker's 30 s lease ran from its own clock's now: however long it took to start.
    lease_until = await db_pool.fetchval("SELECT due_at FROM webhook_deliveries")
    async with running_workers(db_pool, crm_settings(), clock):
        assert clock.now() < lease_until
        clock.set(lease_until + timedelta(seconds=1))  # past the dead worker's lease
        await wait_for(lambda: count(db_pool, "state = 'delivered'"), what="redelivered")
    first, second = receiver.requests
    assert first.msg_id == second.msg_id == f"msg_{event_id.hex}"
    assert first.body == second.body
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_attempts") == 1
