"""``callcycle simulate``: the pacing benchmark (table on stdout, results.json and chart.png in --out)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from dialer.sim_grid import FULL, POLICIES, QUICK, Grid, check_targets, format_checks, format_table, run_grid, summarize


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    p = sub.add_parser("simulate", help="pacing benchmark: simulate policies over a grid of agents x answer rates")
    p.add_argument("--quick", action="store_true", help="small grid (10 agents, p=0.3, 2 seeds, 1 h)")
    p.add_argument("--out", default="sim-out", help="directory for results.json and chart.png (default: sim-out)")
    p.add_argument("--agents", type=_ints, help="comma-separated agent counts (default 10,50,100)")
    p.add_argument("--answer-p", type=_floats, help="comma-separated answer probabilities (default 0.1,0.3,0.5)")
    p.add_argument("--seeds", type=int, help="seeds per cell (default 10)")
    p.add_argument("--hours", type=float, help="shift length (default 8)")
    p.add_argument("--policies", help=f"comma-separated, of {','.join(POLICIES)}")
    p.add_argument("--no-steps", action="store_true", help="skip the ±50%% answer-rate step runs")
    p.add_argument("--processes", type=int, help="worker processes (default: all cores)")
    p.add_argument("--no-chart", action="store_true", help="do not draw chart.png")
    p.set_defaults(func=run)


def grid_from(args: argparse.Namespace) -> Grid:
    g = QUICK if args.quick else FULL
    if args.agents:
        g = replace(g, agents=args.agents)
    if args.answer_p:
        g = replace(g, answer_p=args.answer_p)
    if args.seeds:
        g = replace(g, seeds=args.seeds)
    if args.hours:
        g = replace(g, hours=args.hours)
    if args.policies:
        g = replace(g, policies=tuple(args.policies.split(",")))
    if args.no_steps:
        g = replace(g, steps=())
    return g


def run(args: argparse.Namespace) -> int:
    grid = grid_from(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            print(f"  {done}/{total} runs", file=sys.stderr, flush=True)

    results, wall = run_grid(grid, args.processes, progress)
    rows = summarize(results)
    checks = check_targets(rows)
    print(f"callcycle simulate: {len(results)} runs ({grid.hours:g} h each) in {wall:.1f} s")
    print(format_table(rows))
    print()
    print(format_checks(checks))
    (out / "results.json").write_text(json.dumps({
        "grid": grid.__dict__, "wall_s": wall, "summary": rows, "targets": checks,
        "runs": [r.as_dict() for r in results]}, indent=1))
    if not args.no_chart:
        try:
            from dialer.sim_chart import write_chart
        except ImportError:  # pragma: no cover - depends on the optional extra
            print("chart skipped: install the 'sim' extra (matplotlib)", file=sys.stderr)
        else:
            try:
                print(f"chart: {write_chart(rows, out / 'chart.png', grid.hours)}")
            except ImportError:
                print("chart skipped: install the 'sim' extra (matplotlib)", file=sys.stderr)
    return 0
