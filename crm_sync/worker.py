"""Delivery workers: claim due deliveries, POST them signed, record every attempt.

Each worker claims batches with ``FOR UPDATE SKIP LOCKED`` (so any number of workers, in
any number of processes, never claim a row twice), keeps up to ``concurrency`` POSTs in
flight on its own ``ClientSession``, and records results in batches. A claim carries a
lease: a worker that dies leaves rows that another worker claims again when the lease
runs out, with the same webhook-id. Workers wake on NOTIFY from the outbox, and poll
anyway, so a dead LISTEN connection (or a restarted PostgreSQL) only slows them down.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import replace
from datetime import timedelta

import aiohttp
import asyncpg

from callcycle.clock import Clock
from callcycle.logs import get_logger
from crm_sync import machine, repository, service, signing, ssrf
from crm_sync.config import CrmSyncSettings
from crm_sync.models import AttemptResult, ClaimedDelivery
from crm_sync.outbox import NOTIFY_CHANNEL

log = get_logger(__name__)


# What a lost or restarting database raises varies by the moment it dies (OSError,
# asyncpg's own errors, RuntimeError from a closed transaction...). The worker loops
# treat any of them as "try again later": they must never die of one.
DB_ERRORS = (Exception,)


def _refused(exc: BaseException) -> bool:
    """The database (or the driver, encoding a value) refused what a result holds, rather
    than being away: the same batch would fail again, however long we waited."""
    if isinstance(exc, asyncpg.PostgresError):
        # 22 data exception, 23 integrity constraint, 54 program limit (a value too big);
        # anything else (a lock timeout, a read-only failover, a deploy) may pass
        return (exc.sqlstate or "")[:2] in ("22", "23", "54")
    return isinstance(exc, (ValueError, TypeError, OverflowError))


def _backoff(failures: int) -> float:
    return min(5.0, 0.05 * 2 ** min(failures, 10)) * random.uniform(0.5, 1.0)


class Worker:
    """One delivery loop. ``run()`` until ``stop()``; on stop, in-flight POSTs finish (or,
    past the grace period, their rows are handed back)."""

    def __init__(self, pool: asyncpg.Pool, settings: CrmSyncSettings, clock: Clock, *,
                 name: str = "worker", wake: asyncio.Event | None = None) -> None:
        self.pool, self.settings, self.clock, self.name = pool, settings, clock, name
        self.wake = wake or asyncio.Event()
        self._stopping = False
        self._inflight: dict[int, ClaimedDelivery] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[AttemptResult] = []
        self._results_ready = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._record_lock = asyncio.Lock()

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()
        self._slot_free.set()

    def _session(self) -> aiohttp.ClientSession:
        s = self.settings
        connector = aiohttp.TCPConnector(limit=s.concurrency, resolver=ssrf.resolver(s.allow_private_destinations))
        timeout = aiohttp.ClientTimeout(total=s.total_timeout, connect=s.connect_timeout)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

    async def run(self) -> None:
        async with self._session() as session:
            flusher = asyncio.create_task(self._flush_loop())
            try:
                await self._claim_loop(session)
                if self._tasks:
                    await asyncio.wait(set(self._tasks))
            finally:
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
                # Never cancel a batch mid-write: wait for the one being recorded, then stop.
                async with self._record_lock:
                    flusher.cancel()
                    await asyncio.gather(flusher, return_exceptions=True)
                await self._flush_remaining()

    async def _claim_loop(self, session: aiohttp.ClientSession) -> None:
        failures = 0
        while not self._stopping:
            free = self.settings.concurrency - len(self._inflight)
            # Claim in batches, not one row per freed slot: each claim is a round trip.
            if free < max(1, min(self.settings.batch_size, self.settings.concurrency) // 4):
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            want = min(self.settings.batch_size, free)
            now = self.clock.now()
            try:
                claimed = await repository.claim(self.pool, now, want,
                                                 now + timedelta(seconds=self.settings.lease_seconds))
                failures = 0
            except DB_ERRORS as exc:
                failures += 1
                log.warning("webhook_claim_failed", worker=self.name, error=f"{type(exc).__name__}: {exc}")
                await self._idle(_backoff(failures))
                continue
            for delivery in claimed:
                self._inflight[delivery.id] = delivery
                task = asyncio.create_task(self._deliver(session, delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(claimed) < want:
                await self._idle(self.settings.poll_interval)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()
        self.wake.clear()

    async def _deliver(self, session: aiohttp.ClientSession, d: ClaimedDelivery) -> None:
        started, t0 = self.clock.now(), time.perf_counter()
        status = retry_after = error = text = None
        try:
            ssrf.check_literal(d.url, self.settings.allow_private_destinations)
            body = d.body()
            # Real time, not self.clock: receivers check the timestamp against their clock.
            headers = signing.headers(d.secrets, d.msg_id, body, int(time.time()))
            headers["content-type"] = "application/json"
            headers["accept-encoding"] = "identity"   # the log keeps the body as sent, not compressed
            async with session.post(d.url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                retry_after = machine.parse_retry_after(resp.headers.get("Retry-After"))
                raw = await resp.content.read(self.settings.response_body_limit)
                text = _loggable(raw.decode("utf-8", "replace"))
        except TimeoutError:
            error = "timeout"
        except Exception as exc:  # any failure of one POST is an attempt to record, not a crash
            error = _loggable(f"{type(exc).__name__}: {exc}"[:500])
        latency = int((time.perf_counter() - t0) * 1000)
        self._results.append(AttemptResult(d, started, latency, status, error, text, retry_after))
        self._results_ready.set()

    async def _flush_loop(self) -> None:
        failures = 0
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            async with self._record_lock:
                batch, self._results = self._results, []
                try:
                    await self._record(batch)
                    failures = 0
                    continue
                except DB_ERRORS as exc:
                    if _refused(exc):
                        batch = await self._record_apart(batch, exc)
                        if not batch:
                            continue
                    # Keep the results: they are recorded once the database is back (unless the
                    # lease ran out meanwhile and another worker already sent the row again).
                    failures += 1
                    log.warning("webhook_record_failed", worker=self.name, error=f"{type(exc).__name__}: {exc}")
                    self._results[:0] = batch
            await asyncio.sleep(_backoff(failures))
            self._results_ready.set()

    async def _record(self, batch: list[AttemptResult]) -> None:
        await service.record_results(self.pool, self.settings, self.clock.now(), batch)
        for result in batch:
            self._inflight.pop(result.delivery.id, None)
        self._slot_free.set()
        # A finished delivery may unblock the next one of its contact: look again now.
        self.wake.set()

    async def _record_apart(self, batch: list[AttemptResult], exc: BaseException) -> list[AttemptResult]:
        """One result in the batch holds what the database refuses: record them one by one,
        a refused one without the receiver's answer, so the others are not held up behind
        it. Returns the results to try again (the database went away meanwhile)."""
        log.error("webhook_record_refused", worker=self.name, results=len(batch), error=f"{type(exc).__name__}: {exc}")
        for i, result in enumerate(batch):
            for attempt in (result, replace(result, response_body=None,
                                             error=f"answer not recordable ({type(exc).__name__})")):
                try:
                    await self._record([attempt])
                    break
                except DB_ERRORS as one:
                    if not _refused(one):
                        return batch[i:]
                    exc = one
            else:   # not even without its answer: the lease lapses and the event is sent again
                log.error("webhook_result_dropped", worker=self.name, delivery_id=result.delivery.id,
                          error=f"{type(exc).__name__}: {exc}")
                self._inflight.pop(result.delivery.id, None)
        return []

    async def _flush_remaining(self) -> None:
        try:
            if self._results:
                await self._record(self._results)
                self._results = []
            if self._inflight:
                rows = list(self._inflight.values())
                await repository.release(self.pool, [d.id for d in rows], [d.lease for d in rows], self.clock.now())
                self._inflight.clear()
        except DB_ERRORS as exc:
            log.warning("webhook_shutdown_record_failed", worker=self.name, error=str(exc))


class Wakeup:
    """LISTEN on the outbox channel over a connection of its own and wake every worker on
    NOTIFY. Reconnects with back-off; while it is down the workers' polling carries on."""

    def __init__(self, url: str, events: list[asyncio.Event], ping_interval: float = 30.0) -> None:
        self.url, self.events, self.ping_interval = url, events, ping_interval
        self.connected = asyncio.Event()

    def _notify(self, *_args: object) -> None:
        for event in self.events:
            event.set()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
                failures = 0
            except DB_ERRORS as exc:
                failures += 1
                log.info("webhook_listen_down", error=f"{type(exc).__name__}: {exc}")
            self.connected.clear()
            self._notify()  # something may have been missed while the connection was down
            await asyncio.sleep(_backoff(failures + 3))

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=10)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, self._notify)
            self.connected.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ping_interval):
                        await lost.wait()
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=5)  # finds a half-open socket
        finally:
            conn.terminate()


class WorkerPool:
    """The workers of one server instance and their shared LISTEN connection."""

    def __init__(self, pool: asyncpg.Pool, db_url: str, settings: CrmSyncSettings, clock: Clock) -> None:
        self.workers = [Worker(pool, settings, clock, name=f"webhook-{i}") for i in range(settings.workers)]
        self.wakeup = Wakeup(db_url, [w.wake for w in self.workers])
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self.workers:
            return
        self._tasks = [asyncio.create_task(w.run(), name=w.name) for w in self.workers]
        self._tasks.append(asyncio.create_task(self.wakeup.run(), name="webhook-listen"))

    async def stop(self, grace: float) -> None:
        """Stop claiming; give in-flight POSTs ``grace`` seconds, then hand rows back."""
        for worker in self.workers:
            worker.stop()
        if not self._tasks:
            return
        runs, listen = self._tasks[:-1], self._tasks[-1]
        listen.cancel()
        _done, late = await asyncio.wait(runs, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _loggable(text: str) -> str:
    """PostgreSQL text cannot hold NUL: one binary answer would fail the whole batch's
    write, again and again, and stall the worker."""
    return text.replace("\x00", "\ufffd")
