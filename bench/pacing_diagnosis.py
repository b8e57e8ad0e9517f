"""Pacing diagnosis (issue 6): the shipped predictive rule against variants of it, on the
same simulated customers (common random numbers), to see what limits its occupancy.

    .venv/bin/python bench/pacing_diagnosis.py --agents 10 --answer-p 0.1 --seeds 1,2,3,4 \
        --variants base,exact,floor,inflight [--fixed-z 2.0]

Variants (none of them is shipped; ``base`` is the baseline of the same run):
- ``base``: the predictive policy as shipped (``dialer.pacing_predictive``);
- ``exact``: the shortage risk from exact Poisson-binomial counts instead of the normal
  approximation (the approximation gives the ready agents a lower tail they do not have);
- ``floor``: never fewer lines than progressive would dial (ready agents minus lines in
  flight, which cannot abandon);
- ``inflight``: an oracle told which lines in flight will answer, and when; new lines are
  still dialed blind. No real call gives that signal before the answer.
``--fixed-z`` holds the governor's margin (no progressive cut, no warm-up), to compare the
variants' occupancy-abandon trade-off rather than the governor's reaction.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.pacing import Decision, PacingInputs, clamp_lines, inputs_summary  # noqa: E402
from dialer.pacing_model import AgentTable, LineTable, phi  # noqa: E402
from dialer.pacing_predictive import _QUARTER, PredictivePolicy  # noqa: E402
from dialer.sim_population import SimConfig  # noqa: E402
from dialer.simulator import Simulation  # noqa: E402


# -- exact counts -------------------------------------------------------------------------

def _binomial(n: int, p: float) -> list[float]:
    if p <= 0.0 or n == 0:
        return [1.0]
    if p >= 1.0:
        return [0.0] * n + [1.0]
    out, ratio = [(1.0 - p) ** n], p / (1.0 - p)
    for k in range(1, n + 1):
        out.append(out[-1] * ratio * (n - k + 1) / k)
    return out


def _convolve(a: list[float], b: list[float]) -> list[float]:
    out = [0.0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x > 1e-13:
            for j, y in enumerate(b):
                out[i + j] += x * y
    while len(out) > 1 and out[-1] < 1e-12:
        out.pop()
    return out


def _count_pmf(groups: list[tuple[tuple[float, ...], int]], j: int) -> list[float]:
    """pmf of a sum of Binomial(weight, row[j]) over (row, weight) groups."""
    pmf = [1.0]
    for row, weight in groups:
        if row[j] > 0.0:
            pmf = _convolve(pmf, _binomial(weight, row[j]))
    return pmf


class ExactPolicy(PredictivePolicy):
    """The marginal-risk rule with P(demand + extra >= supply) from exact counts."""

    def decide(self, inputs: PacingInputs) -> Decision:
        gov = self.governor.assess(inputs)
        if gov["mode"] == "progressive" or inputs.agents_ready + inputs.agents_busy == 0:
            return super().decide(inputs)
        lines, agents = self._tables(inputs)
        k = len(lines.ts)
        supply, demand = self._supply_groups(inputs, agents), self._demand_groups(inputs, lines)
        cdfs = []   # per horizon point: (offset, cdf of supply - demand)
        for j in range(k):
            d = _count_pmf(demand, j)
            x = _convolve(_count_pmf(supply, j), d[::-1])
            acc, cdf = 0.0, []
            for v in x:
                acc += v
                cdf.append(acc)
            cdfs.append((inputs.agents_ready - inputs.answered_waiting - (len(d) - 1), cdf))
        first = next((j for j in range(k) if lines.new_f[j] > 0), k - 1)

        def risk(n: int) -> float:
            run = total = 0.0
            for j in range(k - 1, first - 1, -1):
                off, cdf = cdfs[j]
                shortage = sum(pb * (cdf[b - off] if b - off < len(cdf) else 1.0)
                               for b, pb in enumerate(_binomial(n - 1, lines.new_q[j])) if b >= off)
                run = max(run, shortage) if self.suffix else shortage
                total += lines.new_f[j] * run
            return total

        theta, cap, n = phi(-gov["z"]), clamp_lines(inputs.max_lines, inputs), 0
        while n < cap and risk(n + 1) <= theta:   # risk grows with n: the first n over theta stops
            n += 1
        return Decision(n, {"mode": "predictive", "governor": gov, "lines_to_dial": n,
                            "inputs": inputs_summary(inputs)})

    @staticmethod
    def _supply_groups(inputs: PacingInputs, agents: AgentTable) -> list[tuple[tuple[float, ...], int]]:
        talking = Counter(math.floor(_QUARTER(e)) for e in inputs.agents_busy_elapsed if e >= 0)
        wrapping = Counter(math.ceil(r) for e, r in zip(inputs.agents_busy_elapsed, inputs.agents_free_soon)
                           if e < 0)
        return ([(agents.talking(4 * b + 2), w) for b, w in talking.items()]
                + [(agents.exact(r), w) for r, w in wrapping.items()])

    @staticmethod
    def _demand_groups(inputs: PacingInputs, lines: LineTable) -> list[tuple[tuple[float, ...], int]]:
        return [(lines.row(a), w) for a, w in Counter(map(int, inputs.lines_in_flight_ages)).items()]


# -- the other variants -------------------------------------------------------------------

class FloorPolicy(PredictivePolicy):
    """Never fewer lines than progressive would dial."""

    def decide(self, inputs: PacingInputs) -> Decision:
        d = super().decide(inputs)
        floor = clamp_lines(inputs.agents_ready - inputs.lines_in_flight - inputs.answered_waiting, inputs)
        return Decision(floor, {**d.explanation, "progressive_floor": floor}) if floor > d.lines_to_dial else d


class InFlightOracle(PredictivePolicy):
    """Told which lines in flight will answer, and when (``sim`` is the simulation)."""

    sim: Simulation | None = None

    def _demand(self, inputs: PacingInputs, lines: LineTable, k: int) -> list[float]:
        sim, sums = self.sim, [0.0] * (2 * k)   # the variances stay 0: nothing is uncertain
        assert sim is not None
        for i, dialed in sim.lines.items():
            if sim.pop.u[i] < sim.cfg.answer_p_at(dialed):
                at = dialed + sim.pop.ring[i] - inputs.now
                for j, t in enumerate(lines.ts):
                    sums[j] += at <= t
        for j in range(k):
            sums[j] += inputs.answered_waiting
        return sums


VARIANTS = {"base": PredictivePolicy, "exact": ExactPolicy, "floor": FloorPolicy, "inflight": InFlightOracle}


def run_one(job: tuple[str, int, float, int, float | None]) -> dict[str, Any]:
    variant, agents, answer_p, seed, fixed_z = job
    cfg = SimConfig(agents=agents, answer_p=answer_p)
    governor = {} if fixed_z is None else {"z_nominal": fixed_z, "z_min": fixed_z, "z_max": fixed_z,
                                           "min_live_for_cut": 10**9, "warmup": 0.0}
    policy = VARIANTS[variant](ring_default=(cfg.ring_min, cfg.ring_max), timeout=cfg.timeout, **governor)
    sim = Simulation(cfg, policy, seed)
    if isinstance(policy, InFlightOracle):
        policy.sim = sim
    started = time.perf_counter()
    r = sim.run()
    return {"variant": variant, "seed": seed, "occupancy": r.occupancy, "abandon_rate": r.abandon_rate,
            "wall_s": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--answer-p", type=float, default=0.1)
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--variants", default="base,exact,floor,inflight")
    ap.add_argument("--fixed-z", type=float, default=None)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    variants = args.variants.split(",")
    if "base" not in variants:
        variants.insert(0, "base")   # the baseline of every run
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(v, args.agents, args.answer_p, s, args.fixed_z) for s in seeds for v in variants]
    # a fresh process per job: no state of one policy class leaks into the next
    with Pool(args.processes, maxtasksperchild=1) as pool:
        results = pool.map(run_one, jobs)
    print(f"{args.agents} agents, answer probability {args.answer_p}, seeds {args.seeds}, "
          f"z {'governed' if args.fixed_z is None else args.fixed_z}")
    base = {r["seed"]: r for r in results if r["variant"] == "base"}
    for v in variants:
        mine = [r for r in results if r["variant"] == v]
        occ = ", ".join(f"{100 * r['occupancy']:.1f}" for r in mine)
        ab = ", ".join(f"{100 * r['abandon_rate']:.2f}" for r in mine)
        gain = sum(r["occupancy"] - base[r["seed"]]["occupancy"] for r in mine) / len(mine)
        wall = sum(r["wall_s"] for r in mine) / sum(base[r["seed"]]["wall_s"] for r in mine)
        print(f"  {v:9s} occupancy {occ} %   abandon {ab} %   vs base {100 * gain:+.1f} points, "
              f"{wall:.1f}x the time")


if __name__ == "__main__":
    sys.exit(main())
