"""IVR latency on the sandbox Asterisk: keypress -> tag committed, keypress -> next prompt.

    .venv/bin/python bench/ivr_latency.py [--levels 1,50,200] [--waves 5] [--pool 20] [--calls-at-1 10]

For each level, N simulated callers (``Local/s@sim-customer``) enter flows/screening.yaml
at once (a copy whose menu waits 12 s, so every caller sits in the menu when the keys come)
and press a key 4-6 s after answering: 80% press 2 (low intent, a goodbye prompt), 20% 1
(high intent, transferred to the sales queue). Measured from the ``DTMFEnd`` event's
arrival (the time the router stamped on the TCP read that brought it) to:

- commit: the session's one transaction committed (call record, tags, score, outbox rows);
- prompt: the AGI ``STREAM FILE`` of the next node sent (callers pressing 2).

The baseline, measured in the same run: the AMI round trip of a bare ``Ping`` (client.send),
idle and every 50 ms during each level. Target: commit p99 <= 20 ms at 200 callers.
Uses $DATABASE_URL, else an embedded PostgreSQL in a temporary directory; the AMI settings
of the sandbox (scripts/asterisk-sandbox env). Level 1 is 10 callers one after another;
every other level runs ``--waves`` waves of N callers (5), and its p99 is over all of them.
10 warm-up callers run first and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.probes import FullGcPasses  # noqa: E402
from callcycle import logs, migrate, settings as settings_mod  # noqa: E402
from callcycle.app import freeze_startup_heap  # noqa: E402
from callcycle.clock import SystemClock  # noqa: E402
from callcycle.db import database  # noqa: E402
from ivr.config import IvrSettings  # noqa: E402
from ivr.service import IvrService  # noqa: E402
from lifecycle.config import LifecycleSettings  # noqa: E402
from lifecycle.service import LifecycleService  # noqa: E402
from pbx import events as ev  # noqa: E402
from pbx.actions import OriginateRequest  # noqa: E402
from pbx.service import Pbx  # noqa: E402
from tests.conftest import _sandbox_env  # noqa: E402


NUMBERS = itertools.count(random.randrange(10000))   # a new caller (and contact) each call
KEYS = itertools.count()                             # every 5th caller presses 1, the others 2


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def fmt(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {pct(ms, 50):7.2f} ms  p99 {pct(ms, 99):7.2f} ms  max {max(ms, default=float('nan')):7.2f} ms  n={len(ms)}"


class Clocks:
    """Router listener + IVR observer: the moments each call's key arrived, its session
    committed and its next prompt was sent."""

    def __init__(self, owner: str, router) -> None:  # noqa: ANN001 - a pbx Router
        self.owner, self.router = owner, router
        self.dtmf: dict[str, float] = {}
        self.committed: dict[str, float] = {}
        self.commit_started: dict[str, float] = {}
        self.prompt: dict[str, float] = {}
        self.key: dict[str, str] = {}

    def listener(self, call, event) -> None:  # noqa: ANN001 - a pbx router listener
        if isinstance(event, ev.DTMFEnd) and event.direction == "Received" and call is not None \
                and call.variables.get("CALLCYCLE_IVR_OWNER") == self.owner:
            # the read's arrival, on this clock: the wait in the router's queue counts
            arrived = time.perf_counter() - (time.time() - self.router.arrived_at)
            self.dtmf.setdefault(event.linkedid, arrived)

    def observer(self, kind: str, session, now: float, data: dict) -> None:  # noqa: ANN001
        if kind == "committed":
            self.committed.setdefault(session.linkedid, now)
        elif kind == "commit_started":
            self.commit_started.setdefault(session.linkedid, now)
        elif kind == "prompt_sent" and session.linkedid in self.dtmf and session.linkedid not in self.prompt:
            self.prompt[session.linkedid] = now


async def pings(client, stop: asyncio.Event, out: list[float], every: float = 0.05) -> None:  # noqa: ANN001
    while not stop.is_set():
        t = time.perf_counter()
        await client.send({"Action": "Ping"}, timeout=5)
        out.append(time.perf_counter() - t)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


async def loop_lag(stop: asyncio.Event, out: list[float], every: float = 0.005) -> None:
    """How late this process's event loop wakes a task that sleeps ``every`` s: time the
    loop spent on other work (or waiting for a core) that every call's work waited behind."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(every)
        out.append(max(0.0, time.perf_counter() - t - every))


async def wave(n: int, pbx: Pbx, ivr: IvrService, clocks: Clocks, pool) -> list[str]:  # noqa: ANN001
    """``n`` callers at once; returns their linkedids once every session is recorded."""
    srv = pbx.default
    keys = ["1" if next(KEYS) % 5 == 0 else "2" for _ in range(n)]

    async def one(i: int) -> str:
        res = await srv.actions.originate(OriginateRequest(
            attempt_id=f"bench-{uuid.uuid4().hex[:12]}", channel="Local/s@sim-customer", context="callcycle-ivr",
            exten="s", caller_id=f'"bench" <+1415556{next(NUMBERS) % 10000:04d}>', timeout_s=30, variables={
                "CALLCYCLE_FLOW": "screening", "CALLCYCLE_IVR_OWNER": clocks.owner, "SIM_DIGIT": keys[i],
                "SIM_DIGIT_DELAY": f"{4 + random.random() * 2:.2f}", "SIM_TALK": "3"}))
        return res.uniqueid if res.success else ""

    linkedids: list[str] = []
    for batch in range(0, n, 50):
        linkedids += await asyncio.gather(*[one(i) for i in range(batch, min(n, batch + 50))])
    ours = [x for x in linkedids if x]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = await pool.fetchval("SELECT count(*) FROM ivr_sessions WHERE linkedid = ANY($1)", ours)
        if done >= len(ours) and not ivr.sessions:
            break
        await asyncio.sleep(0.1)
    else:
        print(f"  !! not all recorded within 60 s: {done}/{len(ours)}, live sessions {ivr.live()}")
    for linkedid, key in zip(linkedids, keys, strict=True):
        clocks.key[linkedid] = key
    return ours


async def level(n: int, calls: int, pbx: Pbx, ivr: IvrService, clocks: Clocks, pool) -> None:  # noqa: ANN001
    """``calls`` callers, ``n`` at a time (a wave, then 3 s for its channels to go), with Pings
    every 50 ms meanwhile; prints the figures over all of them, and each wave's p99."""
    rtts: list[float] = []
    lags: list[float] = []
    stop = asyncio.Event()
    pinger = asyncio.create_task(pings(pbx.default.client, stop, rtts))
    lagger = asyncio.create_task(loop_lag(stop, lags))
    started = time.perf_counter()
    waves: list[list[str]] = []
    with FullGcPasses() as full_gc:
        for i in range(max(1, calls // n)):
            if i and n > 1:
                await asyncio.sleep(3)
            waves.append(await wave(n, pbx, ivr, clocks, pool))
        stop.set()
        await asyncio.gather(pinger, lagger)
    ours = [x for w in waves for x in w]
    have = [x for x in ours if x in clocks.dtmf]
    commit = [clocks.committed[x] - clocks.dtmf[x] for x in have if x in clocks.committed]
    start = [clocks.commit_started[x] - clocks.dtmf[x] for x in have if x in clocks.commit_started]
    tx = [clocks.committed[x] - clocks.commit_started[x] for x in have
          if x in clocks.committed and x in clocks.commit_started]
    prompt = [clocks.prompt[x] - clocks.dtmf[x] for x in have if clocks.key.get(x) == "2" and x in clocks.prompt]
    rows = await pool.fetch("SELECT outcome, count(*) FROM ivr_sessions WHERE linkedid = ANY($1) GROUP BY 1", ours)
    print(f"\n== {n} concurrent caller(s), {len(ours)} calls: {time.perf_counter() - started:.1f} s, "
          f"outcomes {dict((r[0], r[1]) for r in rows)}")
    print(f"  DTMFEnd -> tag + outbox committed : {fmt(commit)}")
    if n > 1 and len(waves) > 1:
        each = [pct([clocks.committed[x] - clocks.dtmf[x] for x in w if x in clocks.dtmf and x in clocks.committed], 99)
                for w in waves]
        print(f"    p99 of each wave of {n}          : {', '.join(f'{v * 1000:.1f}' for v in each)} ms")
    print(f"    of which DTMFEnd -> commit begins : {fmt(start)}")
    print(f"    of which the transaction        : {fmt(tx)}")
    print(f"  DTMFEnd -> next prompt sent       : {fmt(prompt)}")
    print(f"  AMI Ping round trip (same run)    : {fmt(rtts)}")
    print(f"  event-loop lag (5 ms probe)       : {fmt(lags)}")
    print(f"  full GC passes meanwhile          : {[round(x * 1000, 1) for x in full_gc]} ms")
    print(f"  AMI connection: {pbx.default.client.stats}")


async def main(args: argparse.Namespace) -> None:
    logs.configure("console", "warning")
    env = {**_sandbox_env(), "CALLCYCLE_DATABASE_POOL_MAX": str(args.pool)}
    s = settings_mod.load(ROOT / "config" / "callcycle.toml", env)
    flows = Path(tempfile.mkdtemp(prefix="ivr-bench-flows-"))
    shutil.copy(ROOT / "flows" / "screening.yaml", flows)
    text = (flows / "screening.yaml").read_text()
    (flows / "screening.yaml").write_text(text.replace("    timeout: 3\n", "    timeout: 12\n", 1))
    owner = str(uuid.uuid4().int % 10**9)
    ivr_settings = dataclasses.replace(s.feature("ivr", IvrSettings), flows_dir=str(flows), owner=owner)
    data = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    try:
        async with database(os.environ.get("DATABASE_URL", ""), data, min_size=args.pool, max_size=args.pool) as (pool, _):
            async with pool.acquire() as conn:
                await migrate.apply(conn)
            lifecycle = LifecycleService(pool, SystemClock(), s.feature("lifecycle", LifecycleSettings))
            ivr = IvrService(ivr_settings, lifecycle, SystemClock())
            pbx = Pbx(s.asterisk)
            clocks = Clocks(owner, pbx.default.router)
            pbx.default.router.add_listener(clocks.listener)
            ivr.observers.append(clocks.observer)
            ivr.register(pbx)
            await pbx.start()
            await pbx.default.client.wait_connected(15)
            idle: list[float] = []
            for _ in range(200):
                t = time.perf_counter()
                await pbx.default.client.send({"Action": "Ping"}, timeout=5)
                idle.append(time.perf_counter() - t)
            print(f"AMI Ping round trip, idle           : {fmt(idle)}")
            await wave(10, pbx, ivr, clocks, pool)   # warm-up (pool connections, statements): not measured
            await asyncio.sleep(3)
            freeze_startup_heap()   # as the server does once it has started
            for n in args.levels:
                await level(n, args.calls_at_1 if n == 1 else n * args.waves, pbx, ivr, clocks, pool)
                await asyncio.sleep(3)   # let the last callers' channels go
            await ivr.stop()
            await pbx.stop()
    finally:
        shutil.rmtree(flows, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=lambda v: [int(x) for x in v.split(",")], default=[1, 50, 200])
    parser.add_argument("--pool", type=int, default=20, help="database connections (max)")
    parser.add_argument("--calls-at-1", type=int, default=10, help="callers one after another at level 1")
    parser.add_argument("--waves", type=int, default=5,
                        help="waves of callers at each level above 1 (one wave of 200: its p99 is the 3rd worst)")
    asyncio.run(main(parser.parse_args()))
