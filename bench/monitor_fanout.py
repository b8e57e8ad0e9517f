"""Live-feed fan-out: latency from an AMI event's arrival to each console receiving its delta.

The server (the real app, embedded PostgreSQL and Redis, connected to the sandbox Asterisk)
runs in this process; the feed clients (bench/feed_clients.py) run in two more (WebSockets,
one asyncio loop each), so client-side work does not run on the server's loop. Every call delta carries ``at``: the
time the TCP read holding its AMI event arrived (stamped by the router, so the wait in its
queue counts); each client records ``received - at`` for the deltas of the benchmark's own
calls (the sandbox is shared), twice: ``received`` as the kernel stamped the bytes
arriving at the client's socket (the figure judged: a console's browser runs on a machine
of its own), and as the client process got to them (on this machine, after waiting for a
core shared with the server, Asterisk and the other consoles).

Two rounds, same load (``--calls`` concurrent sandbox calls: Local/s@sim-customer answering
after 1 s, talking ``--talk`` s, the other half in Wait()): first one client (the baseline),
then ``--clients`` clients. Prints p50/p90/p99/max of each (the process's p50/p99 beside).

    eval "$(scripts/asterisk-sandbox env)"
    .venv/bin/python bench/monitor_fanout.py [--clients 200] [--calls 100] [--talk 6] [--client-processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.feed_clients import TOKEN  # noqa: E402
from bench.probes import FullGcPasses  # noqa: E402

PREFIX = "benchfan-"


def _settings(data_dir: str):
    from callcycle import settings as settings_mod
    from callcycle.settings import ApiToken

    env = {k: v for k, v in os.environ.items() if k.startswith("CALLCYCLE_") or k in ("DATABASE_URL", "REDIS_URL")}
    env.update({"CALLCYCLE_SERVER_DATA_DIR": data_dir, "CALLCYCLE_SERVER_LOG_LEVEL": "warning",
                "CALLCYCLE_MONITOR_BUS_CHANNEL": f"bench:{uuid.uuid4().hex[:8]}"})
    s = settings_mod.load(ROOT / "config" / "callcycle.toml", env)
    return settings_mod.with_changes(s, api_tokens=(ApiToken("bench", "supervisor", TOKEN),))


async def _clients(port: int, n: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "feed_clients.py"), f"http://127.0.0.1:{port}/monitor/ws", str(n),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=256 * 1024 * 1024)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
    except asyncio.TimeoutError:
        proc.kill()
        raise
    assert line.strip() == b"ready", line
    return proc


async def _round(app, port: int, clients: int, calls: int, talk: int, procs: int) -> dict:
    from callcycle import keys
    from pbx.actions import OriginateRequest

    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(min(procs, clients))]
    workers = [await _clients(port, share) for share in shares]
    server = app[keys.PBX].default
    reqs = [OriginateRequest(attempt_id=f"{PREFIX}{uuid.uuid4().hex[:12]}", channel="Local/s@sim-customer",
                             application="Wait", data=str(talk + 2), timeout_s=30,
                             variables={"SIM_RING": "1", "SIM_TALK": str(talk)}) for _ in range(calls)]
    # Server-side diagnostics of the same round: how long events waited in the router's
    # queue, and the garbage collector's full passes.
    waits: list[float] = []

    def waited(_call, _event) -> None:  # noqa: ANN001 - a router listener
        waits.append(time.time() - server.router.arrived_at)

    server.router.add_listener(waited)
    started = time.monotonic()
    with FullGcPasses() as full_gc:
        results = await asyncio.gather(*(server.actions.originate(r) for r in reqs), return_exceptions=True)
        answered = sum(1 for r in results if not isinstance(r, BaseException) and r.success)
        mine = {r.attempt_id for r in reqs}
        while any(c.variables.get("CALLCYCLE_ATTEMPT_ID") in mine for c in server.router.calls.calls.values()):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
    server.router.remove_listener(waited)
    out: dict[str, list] = {"latencies": [], "kernel_latencies": [], "per_client": [], "frames": [], "unstamped": []}
    for proc in workers:
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
        part = json.loads((await asyncio.wait_for(proc.stdout.readline(), 60)).decode())
        await proc.wait()
        for key in out:
            out[key] += part[key]
    at_socket, in_process = _quantiles(out["kernel_latencies"]), _quantiles(out["latencies"])
    return {"clients": clients, "client_processes": len(workers), "calls": calls, "answered": answered,
            "seconds": round(time.monotonic() - started, 1),
            "deltas_per_client": round(statistics.mean(out["per_client"]), 1), "samples": len(out["latencies"]),
            "frames_per_client": round(statistics.mean(out["frames"]), 1), "frames_unstamped": sum(out["unstamped"]),
            **at_socket, **{f"process_{k}": v for k, v in in_process.items()},
            "dropped_clients": app[keys.MONITOR].hub.stats["dropped"],
            "router_queue_wait_p99_ms": round(sorted(waits)[int(len(waits) * 0.99)] * 1000, 2) if waits else None,
            "full_gc_passes_ms": [round(x * 1000, 1) for x in full_gc]}


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    v = sorted(values)
    q = statistics.quantiles(v, n=100, method="inclusive") if len(v) > 1 else [v[0]] * 99
    return {"p50_ms": round(q[49] * 1000, 2), "p90_ms": round(q[89] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
            "max_ms": round(v[-1] * 1000, 2)}


async def run_server(clients: int, calls: int, talk: int, procs: int) -> None:
    from aiohttp import web

    from callcycle import keys
    from callcycle.app import init_app
    from callcycle.logs import configure

    configure("console", "warning")
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as data_dir:
        app = init_app(_settings(data_dir), with_pbx=True)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            await app[keys.PBX].default.client.wait_connected(15)
            while "main" not in app[keys.MONITOR].owned:
                await asyncio.sleep(0.1)
            for n in (1, clients):
                result = await _round(app, port, n, calls, talk, procs)
                label = "baseline (1 client)" if n == 1 else f"{n} clients"
                print(f"{label:>20}: at the console's socket p50 {result['p50_ms']:.2f} ms  p90 {result['p90_ms']:.2f} ms  "
                      f"p99 {result['p99_ms']:.2f} ms  max {result['max_ms']:.2f} ms; read by its process "
                      f"p50 {result['process_p50_ms']:.2f} ms  p99 {result['process_p99_ms']:.2f} ms  "
                      f"({result['samples']} deltas, {result['deltas_per_client']}/client in "
                      f"{result['frames_per_client']} frames ({result['frames_unstamped']} without a kernel stamp), "
                      f"{result['answered']}/{calls} calls answered, {result['dropped_clients']} clients dropped; "
                      f"router queue wait p99 {result['router_queue_wait_p99_ms']} ms, "
                      f"full GC passes {result['full_gc_passes_ms']} ms)", flush=True)
                print(json.dumps(result), flush=True)
                await asyncio.sleep(2)
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--talk", type=int, default=6, help="seconds each simulated customer stays on")
    parser.add_argument("--client-processes", type=int, default=2,
                        help="processes the clients are spread over (browsers are not one process)")
    args = parser.parse_args()
    asyncio.run(run_server(args.clients, args.calls, args.talk, args.client_processes))


if __name__ == "__main__":
    main()
