"""AMI pipeline throughput: panoramisk's bare parse + dispatch versus our whole path.

Replays a transcript recorded from the sandbox Asterisk (tests/fixtures/ami/large.ami.gz,
see its README) in one process, cut into the same 8 KiB reads for both sides:

  (a) panoramisk 1.4 ``AMIProtocol.data_received`` -> ``Message`` -> ``Manager.dispatch``
      to one catch-all callback (the baseline);
  (b) ours: ``FastAMIProtocol`` -> router queue -> typed events -> call table ->
      per-call handler and listener.

Prints events/s of each (median of several rounds, alternating) and the ratio b/a.

    .venv/bin/python bench/ami_pipeline.py [--rounds 7] [--transcript PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import time
from collections import deque
from pathlib import Path

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from pbx.parsing import KNOWN_EVENTS
from pbx.protocol import FastAMIProtocol
from pbx.router import Router

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ami" / "large.ami.gz"
READ_SIZE = 8192


class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def load(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def chunks(data: bytes) -> list[bytes]:
    return [data[i:i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]


def run_panoramisk(reads: list[bytes]) -> int:
    manager = Manager(loop=asyncio.get_running_loop())
    seen = 0

    def catch_all(_manager, _message) -> None:
        nonlocal seen
        seen += 1

    manager.register_event("*", catch_all)
    proto = AMIProtocol()
    proto.connection_made(_NullTransport())
    proto.factory = manager
    proto.encoding = "utf8"
    proto.queue = deque()
    for data in reads:
        proto.data_received(data)
    return seen


def run_ours(reads: list[bytes]) -> int:
    router = Router("bench", high_water=10**9)
    delivered = 0

    def handler(call, event) -> None:
        nonlocal delivered
        delivered += 1

    router.add_call_factory(lambda call, event: handler)
    router.add_listener(lambda call, event: None)
    proto = FastAMIProtocol()
    proto.connection_made(_NullTransport())
    proto.sink = router.feed
    proto.wanted = KNOWN_EVENTS
    for data in reads:
        proto.data_received(data)
        router.drain()  # the router task's work, run inline so both sides are pure CPU
    return router.stats["typed"]


def only_known(data: bytes) -> bytes:
    """The same transcript without the event kinds we skip: our worst case, every event typed."""
    keep = [m for m in data.split(b"\r\n\r\n")
            if not m.startswith(b"Event: ") or m[7:].split(b"\r\n", 1)[0].decode() in KNOWN_EVENTS]
    return b"\r\n\r\n".join(keep)


async def main(rounds: int, transcript: Path) -> None:
    full = load(transcript)
    for label, data in (("recorded transcript", full), ("known events only", only_known(full))):
        print(f"--- {label}")
        await measure(data, rounds, transcript)


async def measure(data: bytes, rounds: int, transcript: Path) -> None:
    reads = chunks(data)
    events = data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")
    print(f"transcript: {transcript.name}, {len(data) / 1e6:.1f} MB, {events} events, {len(reads)} reads of {READ_SIZE} B")
    times: dict[str, list[float]] = {"panoramisk": [], "callcycle": []}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        for name, fn in (("panoramisk", run_panoramisk), ("callcycle", run_ours)):
            t0 = time.perf_counter()
            counts[name] = fn(reads)
            times[name].append(time.perf_counter() - t0)
    print(f"panoramisk dispatched {counts['panoramisk']} events; callcycle typed and routed {counts['callcycle']} "
          "(the rest are event kinds nothing uses, skipped after their first line)")
    rate = {name: events / statistics.median(ts) for name, ts in times.items()}
    print(f"(a) panoramisk AMIProtocol parse + dispatch : {rate['panoramisk']:>10,.0f} events/s")
    print(f"(b) callcycle parse+type+route+call state  : {rate['callcycle']:>10,.0f} events/s")
    print(f"ratio b/a = {rate['callcycle'] / rate['panoramisk']:.2f}  (target >= 1.0, stretch 1.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--transcript", type=Path, default=DEFAULT)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.transcript))
