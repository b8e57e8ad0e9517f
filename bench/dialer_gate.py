"""The dialer's compliance gate: checks per second, pure (no I/O), the cost paid at the
moment of every dial.

    .venv/bin/python bench/dialer_gate.py [--checks 50000]

Mixes allowed numbers, numbers outside the window in one of two candidate zones, and
refused numbers (do-not-call, premium, dial-string characters), and prints checks/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, time as dtime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.compliance import DialFacts, Rules, check  # noqa: E402

RULES = Rules(dtime(8), dtime(21), ("US", "CA"), (), ("+1900", "+1976"), 3, 2)
NOW = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)


def facts(i: int) -> DialFacts:
    kind = i % 5
    phone = {3: "+19005550123", 4: "+1415555&123"}.get(kind, f"+1415555{i % 10000:04d}")
    zones = ("America/Los_Angeles", "Asia/Tokyo") if kind == 1 else ("America/Los_Angeles",)
    return DialFacts(phone, NOW, zones, kind == 2, False, True, i % 3, None, 0, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=50_000)
    args = parser.parse_args()
    cases = [facts(i) for i in range(args.checks)]
    started = time.perf_counter()
    allowed = sum(check(f, RULES).allowed for f in cases)
    elapsed = time.perf_counter() - started
    print(f"{args.checks} checks in {elapsed:.2f} s: {args.checks / elapsed:,.0f} checks/s "
          f"({allowed} allowed, {args.checks - allowed} refused)")


if __name__ == "__main__":
    main()
