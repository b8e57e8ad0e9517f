"""The benchmark grid: every policy on every cell and seed, in parallel, and its summary.

Definitions used in the table (the simulated shift is 8 h, not 30 days):
* ``abandon 30d`` = abandoned / live answers over the whole run (the run is the 30-day window);
* ``worst 24h``   = the worst rolling 24-hour window; every 24-hour window that holds any
  of an 8-hour shift and nothing else holds the whole shift or a part of it that starts or
  ends the shift — we take the whole shift, as a regulator would for a campaign running
  one shift a day, and show the stricter worst complete rolling 1-hour window beside it;
* ``compliant``   = share of seeds with both rates <= the 3% target.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from multiprocessing import get_context
from statistics import mean

from dialer.sim_population import SimConfig
from dialer.simulator import SimResult, simulate

POLICIES = ("progressive", "power", "vicidial", "predictive", "oracle")
TARGET = 0.03


@dataclass(frozen=True)
class Grid:
    agents: tuple[int, ...] = (10, 50, 100)
    answer_p: tuple[float, ...] = (0.1, 0.3, 0.5)
    seeds: int = 10
    hours: float = 8.0
    steps: tuple[float, ...] = (1.5, 0.5)       # the ±50% mid-shift step, run at step_p
    step_p: float = 0.3
    policies: tuple[str, ...] = POLICIES


FULL = Grid()
QUICK = Grid(agents=(10,), answer_p=(0.3,), seeds=2, hours=1.0, steps=(1.5,))


def jobs(grid: Grid) -> list[tuple[SimConfig, str, int]]:
    """(config, policy, seed) for every run; the costliest first, for even load."""
    base = SimConfig(hours=grid.hours)
    configs = [replace(base, agents=n, answer_p=p) for n in grid.agents for p in grid.answer_p]
    configs += [replace(base, agents=n, answer_p=grid.step_p, step=s) for s in grid.steps for n in grid.agents]
    out = [(c, pol, seed) for c in configs for pol in grid.policies for seed in range(1, grid.seeds + 1)]
    weight = {"predictive": 8.0, "vicidial": 2.0, "power": 1.5}
    out.sort(key=lambda j: -j[0].agents * weight.get(j[1], 1.0) / j[0].answer_p ** 0.5)
    return out


def _run(job: tuple[SimConfig, str, int]) -> SimResult:
    cfg, policy, seed = job
    return simulate(cfg, policy, seed)


def run_grid(grid: Grid, processes: int | None = None, progress=None) -> tuple[list[SimResult], float]:
    """All runs of the grid (multiprocessing across runs); returns (results, wall seconds)."""
    todo = jobs(grid)
    procs = processes or os.cpu_count() or 1
    t0 = time.perf_counter()
    results: list[SimResult] = []
    if procs == 1:
        for j in todo:
            results.append(_run(j))
            if progress:
                progress(len(results), len(todo))
    else:
        with get_context("fork" if hasattr(os, "fork") else "spawn").Pool(procs) as pool:
            for r in pool.imap_unordered(_run, todo, chunksize=1):
                results.append(r)
                if progress:
                    progress(len(results), len(todo))
    return results, time.perf_counter() - t0


def summarize(results: Iterable[SimResult]) -> list[dict]:
    """One row per (step, agents, answer_p, policy), means over seeds."""
    groups: dict[tuple, list[SimResult]] = defaultdict(list)
    for r in results:
        groups[(r.step, r.agents, r.answer_p, r.policy)].append(r)
    order = {p: i for i, p in enumerate(POLICIES)}
    rows = []
    for (step, agents, p, policy), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != 1.0, kv[0][0],
                                                                               kv[0][1], kv[0][2],
                                                                               order.get(kv[0][3], 99))):
        ok = [r for r in rs if r.abandon_rate <= TARGET + 1e-12]
        rows.append({
            "step": step, "agents": agents, "answer_p": p, "policy": policy, "seeds": len(rs),
            "occupancy": mean(r.occupancy for r in rs), "occupancy_min": min(r.occupancy for r in rs),
            "talk_min_per_agent_hour": mean(r.talk_min_per_agent_hour for r in rs),
            "abandon_30d": mean(r.abandon_rate for r in rs), "abandon_30d_max": max(r.abandon_rate for r in rs),
            "worst_24h_max": max(r.abandon_rate for r in rs),
            "worst_1h_max": max(r.worst_1h_abandon_rate for r in rs),
            "compliant": len(ok) / len(rs),
            "occupancy_timeline": [mean(h) for h in zip(*(r.occupancy_timeline for r in rs))],
        })
    return rows


def check_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets for our predictive policy, cell by cell (no step)."""
    by = {(r["step"], r["agents"], r["answer_p"], r["policy"]): r for r in rows}
    checks = []
    for (step, n, p, pol), r in sorted(by.items()):
        if pol != "predictive" or step != 1.0:
            continue
        need = 0.95 if n >= 50 else 0.85
        item = {"agents": n, "answer_p": p, "occupancy": r["occupancy"], "occupancy_needed": need,
                "compliant": r["compliant"], "met": r["occupancy"] >= need and r["compliant"] >= 0.99}
        vici = by.get((step, n, p, "vicidial"))
        if p <= 0.1 + 1e-9 and vici is not None:
            item["points_over_vicidial"] = 100 * (r["occupancy"] - vici["occupancy"])
            item["met"] = item["met"] and item["points_over_vicidial"] >= 30
        checks.append(item)
    return checks


def format_table(rows: list[dict]) -> str:
    head = (f"{'step':>5} {'agents':>6} {'p':>4} {'policy':<12} {'occ%':>6} {'min%':>6} {'talk/h':>6} "
            f"{'ab30d%':>6} {'max%':>6} {'w24h%':>6} {'w1h%':>6} {'ok':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        step = "" if r["step"] == 1.0 else f"x{r['step']:g}"
        lines.append(f"{step:>5} {r['agents']:>6} {r['answer_p']:>4.1f} {r['policy']:<12} "
                     f"{100 * r['occupancy']:6.1f} {100 * r['occupancy_min']:6.1f} "
                     f"{r['talk_min_per_agent_hour']:6.1f} {100 * r['abandon_30d']:6.2f} "
                     f"{100 * r['abandon_30d_max']:6.2f} {100 * r['worst_24h_max']:6.2f} "
                     f"{100 * r['worst_1h_max']:6.2f} {100 * r['compliant']:4.0f}%")
    return "\n".join(lines)


def format_checks(checks: list[dict]) -> str:
    out = []
    for c in checks:
        extra = f", {c['points_over_vicidial']:+.1f} pts vs vicidial (need +30)" if "points_over_vicidial" in c else ""
        out.append(f"{'MET ' if c['met'] else 'MISS'} agents={c['agents']:<3} p={c['answer_p']:.1f}: occupancy "
                   f"{100 * c['occupancy']:.1f}% (need {100 * c['occupancy_needed']:.0f}%), compliant seeds "
                   f"{100 * c['compliant']:.0f}%{extra}")
    return "\n".join(out)
