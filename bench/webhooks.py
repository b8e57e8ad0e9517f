"""Webhook delivery throughput: callcycle's workers versus a bare aiohttp POST loop.

    .venv/bin/python bench/webhooks.py [--events 20000] [--workers 2] [--concurrency 64]

Both send the same signed bodies to the same local receiver (a separate process, so it
does not share the event loop with the sender). The bare loop only POSTs; the workers
also claim from PostgreSQL, keep per-contact order, and record every attempt. Prints
deliveries/s for both, the ratio, the claim query's cost on the full backlog, and the
resident memory during the run (it should stay flat). Uses $DATABASE_URL, else an
embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from aiohttp import web  # noqa: E402

from callcycle import migrate  # noqa: E402
from callcycle.clock import SystemClock  # noqa: E402
from callcycle.db import create_pool  # noqa: E402
from crm_sync import repository, service, signing  # noqa: E402
from crm_sync.config import CrmSyncSettings  # noqa: E402
from crm_sync.models import ClaimedDelivery  # noqa: E402
from crm_sync.worker import Wakeup, Worker  # noqa: E402

CONTACTS = 2000


def _receiver(port: int, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sample_delivery(i: int, secret: str, url: str) -> ClaimedDelivery:
    data = {"contact": {"id": i % CONTACTS, "external_id": None, "phone": "+14155550123", "stage": "growth"},
            "from_stage": "acquisition", "to_stage": "growth", "reason": f"step {i // CONTACTS}", "cause": None}
    return ClaimedDelivery(id=i, lease=uuid.uuid4(), attempts=0, event_id=uuid.uuid4(),
                           event_type="contact.stage_changed", version=1,
                           occurred_at=datetime.now(timezone.utc), data=data, endpoint_id=1, url=url,
                           secrets=(secret,))


async def bare_loop(url: str, n: int, concurrency: int, secret: str) -> float:
    """The same signed bodies, POSTed with nothing else to do. Returns deliveries/s."""
    jobs = [_sample_delivery(i, secret, url) for i in range(n)]
    queue: asyncio.Queue[ClaimedDelivery] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=15, connect=5)
    ok = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while not queue.empty():
            d = queue.get_nowait()
            body = d.body()
            headers = signing.headers(d.secrets, d.msg_id, body, int(time.time()))
            headers["content-type"] = "application/json"
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                ok += resp.status == 200

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    assert ok == n, ok
    return n / elapsed


async def _seed(pool: asyncpg.Pool, n: int) -> None:
    await pool.execute("""
        INSERT INTO outbox_events (id, event_type, ordering_key, payload, occurred_at)
        SELECT gen_random_uuid(), 'contact.stage_changed', 'contact:' || (i % $2),
               jsonb_build_object('contact', jsonb_build_object('id', i % $2, 'external_id', NULL,
                                  'phone', '+14155550123', 'stage', 'growth'),
                                  'from_stage', 'acquisition', 'to_stage', 'growth',
                                  'reason', 'step ' || (i / $2), 'cause', NULL), now()
          FROM generate_series(0, $1 - 1) AS i ORDER BY i""", n, CONTACTS)


async def _claim_cost(pool: asyncpg.Pool, batch: int) -> float:
    """Milliseconds of one claim on the full backlog, rolled back so nothing changes."""
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn:
        best = float("inf")
        for _ in range(5):
            tr = conn.transaction()
            await tr.start()
            t0 = time.perf_counter()
            await conn.fetch(repository.CLAIM_SQL, now, batch, now + timedelta(seconds=60))
            best = min(best, (time.perf_counter() - t0) * 1000)
            await tr.rollback()
    return best


async def callcycle_workers(pool: asyncpg.Pool, db_url: str, url: str, n: int, workers: int,
                            concurrency: int) -> tuple[float, list[float]]:
    settings = CrmSyncSettings(workers=workers, concurrency=concurrency, batch_size=100,
                               allow_private_destinations=True, poll_interval=0.5)
    await service.create_endpoint(pool, settings, {"url": url})
    await _seed(pool, n)
    cold = await _claim_cost(pool, 100)
    await pool.execute("ANALYZE webhook_deliveries")  # what autovacuum does soon after a backlog forms
    print(f"claim query on a backlog of {n:,} rows, batch 100: {await _claim_cost(pool, 100):.2f} ms "
          f"({cold:.2f} ms before the table had statistics)")
    ws = [Worker(pool, settings, SystemClock(), name=f"bench-{i}") for i in range(workers)]
    rss: list[float] = [_rss_mb()]
    started = time.perf_counter()
    tasks = [asyncio.create_task(w.run()) for w in ws]
    listen = asyncio.create_task(Wakeup(db_url, [w.wake for w in ws]).run())
    while await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE state IN "
                              "('pending', 'in_flight', 'retry_wait')"):
        await asyncio.sleep(0.2)
        rss.append(_rss_mb())
    elapsed = time.perf_counter() - started
    for w in ws:
        w.stop()
    listen.cancel()
    await asyncio.gather(*tasks, listen, return_exceptions=True)
    delivered = await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")
    attempts = await pool.fetchval("SELECT count(*) FROM webhook_attempts")
    assert delivered == n and attempts == n, (delivered, attempts)
    return n / elapsed, rss


async def _database(url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(url)
    db_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    conn = await asyncpg.connect(db_url)
    try:
        await migrate.apply(conn)
    finally:
        await conn.close()
    return db_url


async def run(args: argparse.Namespace, admin_url: str, port: int) -> None:
    db_url = await _database(admin_url)
    url = f"http://127.0.0.1:{port}/hook"
    total = args.workers * args.concurrency
    bare = await bare_loop(url, args.events, total, signing.new_secret())
    print(f"bare aiohttp loop:  {bare:8,.0f} deliveries/s  ({args.events:,} POSTs, {total} in flight)")
    pool = await create_pool(db_url, min_size=2, max_size=4 * args.workers)
    try:
        ours, rss = await callcycle_workers(pool, db_url, url, args.events, args.workers, args.concurrency)
    finally:
        await pool.close()
    print(f"callcycle workers:  {ours:8,.0f} deliveries/s  ({args.workers} workers x {args.concurrency}, "
          f"{CONTACTS:,} contacts in order, every attempt recorded)")
    print(f"ratio callcycle / bare: {ours / bare:.2f}")
    print(f"memory (RSS) during delivery: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, end {rss[-1]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="POSTs in flight per worker")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = multiprocessing.get_context("spawn").Event()
    receiver = multiprocessing.get_context("spawn").Process(target=_receiver, args=(port, ready), daemon=True)
    receiver.start()
    ready.wait(30)
    server = None
    try:
        admin_url = os.environ.get("DATABASE_URL")
        if not admin_url:
            import pgserver

            tmp = tempfile.mkdtemp(prefix="callcycle-bench-")
            server = pgserver.get_server(Path(tmp), cleanup_mode="delete")
            admin_url = server.get_uri()
        asyncio.run(run(args, admin_url, port))
    finally:
        receiver.terminate()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
