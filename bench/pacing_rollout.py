"""Pacing diagnosis (issue 6): does a rollout, a different decision rule, beat the shipped one?

    .venv/bin/pip install -e ".[bench]"     # numba: the rollout is ~10^6 steps per decision
    .venv/bin/python bench/pacing_rollout.py --agents 10 --answer-p 0.1 --seeds 1,2 --hours 2

The shipped rule dials while a new line's abandon risk is under a threshold. A rollout
instead weighs what each choice gains against what it risks over the calls still to come:
for each candidate number of lines to dial now it plays ``--scenarios`` futures of
``--horizon`` seconds (the lines in flight answer or not, busy agents finish, from the same
model the shipped rule uses; later decisions follow a base rule), and picks the number with
the least ``idle agent-seconds + lam * abandons``. Common random numbers across candidates.

The base rule (``--base``) is the shipped rule at ``--base-z`` (ported to numba), or
``fluid``: ``(agents free within 12 s - answers expected within 12 s - margin) / (answers
per new line)``. The run prints the rollout, the fluid rule alone (when it is the base) and
the shipped rule at fixed margins (``--zs``), all on the same customers. Results and
figures: BENCHMARKS.md, issue 6. Nothing here is shipped.
"""

from __future__ import annotations

import argparse
import math
import sys
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.pacing import Decision, PacingInputs, clamp_lines  # noqa: E402
from dialer.pacing_model import phi  # noqa: E402
from dialer.pacing_predictive import PredictivePolicy  # noqa: E402
from dialer.sim_population import SimConfig  # noqa: E402
from dialer.simulator import Simulation  # noqa: E402

from pacing_rollout_kernel import BASE_H, PATIENCE, RING, TIMEOUT, answers_within, rollout  # noqa: E402


class FluidPolicy(PredictivePolicy):
    """The rollout's base rule on its own (see the module docstring)."""

    def __init__(self, *, margin: float = 3.0, lam: float = 1500.0, horizon: float = 30.0, scenarios: int = 256,
                 spread: int = 3, **kw: Any) -> None:
        super().__init__(**kw)
        self.margin, self.lam, self.horizon, self.scenarios, self.spread = margin, lam, horizon, scenarios, spread
        self._hz_key: tuple = ()
        self._hz = np.zeros(0)
        self._seed = 0

    def hazard(self, mu: float, sigma: float, wrap: float) -> np.ndarray:
        """Per second of talk so far: P(free within BASE_H + 2 s)."""
        if self._hz_key != (mu, sigma, wrap):
            e = np.arange(4000) + 0.5
            surv = 0.5 * np.vectorize(math.erfc)((np.log(np.maximum(e + BASE_H + PATIENCE - wrap, e)) - mu)
                                                / (sigma * math.sqrt(2)))
            s0 = 0.5 * np.vectorize(math.erfc)((np.log(e) - mu) / (sigma * math.sqrt(2)))
            self._hz, self._hz_key = 1.0 - surv / np.maximum(s0, 1e-300), (mu, sigma, wrap)
        return self._hz

    def decide(self, inputs: PacingInputs) -> Decision:
        st = inputs.stats
        p = st.answer_probability(inputs.now)
        hz = self.hazard(*st.handle_log_params(), st.wrap_time_mean())
        supply = inputs.agents_ready + sum(
            (r <= BASE_H + PATIENCE) if e < 0 else hz[min(int(e), len(hz) - 1)]
            for e, r in zip(inputs.agents_busy_elapsed, inputs.agents_free_soon, strict=True))
        demand = sum(answers_within(a, BASE_H, p) for a in inputs.lines_in_flight_ages)
        k = math.floor((supply - demand - inputs.answered_waiting - self.margin) / answers_within(0.0, BASE_H, p))
        return Decision(max(0, min(k, clamp_lines(inputs.max_lines, inputs))), {})


class RolloutPolicy(FluidPolicy):
    """The base rule's number, give or take ``spread``, chosen by the rollout.

    Variance: a candidate's extra line answers in a tenth of the futures, so comparing
    whole candidates leaves the choice to noise. Instead E[cost(n)] - E[cost(n - 1)] =
    p (cost | line n answers) + (1 - p) (cost | it does not) - cost(n - 1), each term
    played in every future (common random numbers)."""

    def __init__(self, *, base: str = "shipped", **kw: Any) -> None:
        super().__init__(**kw)
        self.base = base
        self._rows_key: tuple = ()
        self._rows = np.zeros((0, 0))

    def _talk_rows(self, lines: Any, agents: Any) -> np.ndarray:
        key = (agents.mu, agents.sigma, agents.wrap, lines.ts)
        if key != self._rows_key:
            k = len(lines.ts)
            self._rows = np.array([agents.talking(e)[:k] for e in range(2000)])
            self._rows_key = key
        return self._rows

    def decide(self, inputs: PacingInputs) -> Decision:
        shipped = self.base == "shipped"
        n0 = (PredictivePolicy.decide(self, inputs) if shipped else super().decide(inputs)).lines_to_dial
        cap = clamp_lines(inputs.max_lines, inputs)
        lo, hi = max(0, n0 - self.spread), min(cap, n0 + self.spread)
        if hi <= lo or inputs.agents_ready + inputs.agents_busy == 0:
            return Decision(n0, {})
        st, el = inputs.stats, inputs.agents_busy_elapsed
        p = st.answer_probability(inputs.now)
        lines, agents = self._tables(inputs)
        nat = list(range(lo, hi))
        specs = np.array(nat + list(range(lo + 1, hi + 1)) * 2, dtype=np.int64)
        forced = np.array([-1] * len(nat) + [1] * (hi - lo) + [0] * (hi - lo), dtype=np.int64)
        self._seed += 1
        cost = rollout(specs, forced, np.array(inputs.lines_in_flight_ages, dtype=float),
                       np.array([e for e in el if e >= 0], dtype=float),
                       np.array([r for e, r in zip(el, inputs.agents_free_soon, strict=True) if e < 0], dtype=float),
                       inputs.agents_ready, inputs.answered_waiting, p, agents.mu, agents.sigma, agents.wrap,
                       self.horizon, self.lam, shipped, lines.p, np.array(lines.ts),
                       self._talk_rows(lines, agents), phi(-self.governor.z_nominal), self.margin,
                       self.hazard(agents.mu, agents.sigma, agents.wrap), self.scenarios, self._seed,
                       inputs.max_lines - inputs.lines_in_flight)
        m = hi - lo
        est = [cost[0]]
        for i in range(m):   # cost(lo + i + 1) from cost(lo + i): the extra line answers or not
            est.append(est[-1] + p * (cost[m + i] - cost[i]) + (1 - p) * (cost[2 * m + i] - cost[i]))
        return Decision(lo + int(np.argmin(est)), {})


def run_one(job: tuple[str, float, dict[str, Any]]) -> dict[str, Any]:
    variant, z, args = job
    governor = {"z_nominal": z, "z_min": z, "z_max": z, "min_live_for_cut": 10**9, "warmup": 0.0}
    gap = 0.0 if variant == "shipped" else 1.0   # the rollout plans in 1 s steps: decide at most that often
    cfg = SimConfig(agents=args["agents"], answer_p=args["answer_p"], hours=args["hours"], decide_gap=gap)
    kw = {} if variant == "shipped" else {k: args[k] for k in ("margin", "lam", "horizon", "scenarios")}
    if variant == "rollout":
        kw["base"] = args["base"]
    cls = {"shipped": PredictivePolicy, "fluid": FluidPolicy, "rollout": RolloutPolicy}[variant]
    r = Simulation(cfg, cls(ring_default=RING, timeout=TIMEOUT, **governor, **kw), args["seed"]).run()
    return {"variant": variant, "z": z, "seed": args["seed"], "occupancy": r.occupancy, "abandon": r.abandon_rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--answer-p", type=float, default=0.1)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--zs", default="2.0,1.7,1.6", help="the shipped rule's fixed margins")
    ap.add_argument("--base", choices=("shipped", "fluid"), default="shipped", help="the rollout's base rule")
    ap.add_argument("--base-z", type=float, default=2.0, help="the shipped rule's margin as the base")
    ap.add_argument("--margin", type=float, default=3.0, help="the fluid rule's margin")
    ap.add_argument("--lam", type=float, default=1500.0, help="agent-seconds one abandon costs")
    ap.add_argument("--horizon", type=float, default=30.0)
    ap.add_argument("--scenarios", type=int, default=256)
    a = vars(ap.parse_args())
    variants = [("rollout", a["base_z"])] + [("fluid", 0.0)] * (a["base"] == "fluid")
    variants += [("shipped", float(z)) for z in a["zs"].split(",")]
    jobs = [(v, z, {**a, "seed": int(s)}) for s in a["seeds"].split(",") for v, z in variants]
    with Pool(2, maxtasksperchild=1) as pool:
        results = pool.map(run_one, jobs)
    print(f"{a['agents']} agents, answer probability {a['answer_p']}, {a['hours']} h, seeds {a['seeds']}")
    for v, z, _ in jobs[: len(jobs) // len(a["seeds"].split(","))]:
        mine = [r for r in results if r["variant"] == v and r["z"] == z]
        label = f"shipped z {z}" if v == "shipped" else v
        print(f"  {label:15s} occupancy " + ", ".join(f"{100 * r['occupancy']:.1f}" for r in mine)
              + " %   abandon " + ", ".join(f"{100 * r['abandon']:.2f}" for r in mine) + " %")


if __name__ == "__main__":
    sys.exit(main())
