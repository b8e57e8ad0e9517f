"""The predictive policy: dial so that answered calls meet agents who are free.

Over a short horizon (1 s steps up to the longest ring time) the model compares two
random counts, each a sum of independent Bernoullis (tables in :mod:`dialer.pacing_model`):

* demand ``D(t)``: answered humans needing an agent by ``t`` — those already waiting, and
  each line in flight (answers by ``t`` with ``p (F(a+t) - F(a)) / (1 - p F(a))`` at age
  ``a``; ``p`` = answer probability, ``F`` = ring-time distribution of live answers);
* supply ``S(t + 2 s)``: the ready agents, and each busy agent free by ``t`` plus the 2 s
  a caller may wait (lognormal talk time conditioned on the time already talked, then the
  wrap-up; in wrap-up the end is known).

It then adds lines one by one while the new line's *marginal abandon risk* — the chance
that, if it answers (at ``t`` with probability ``F``), the agents free by then fall short
— stays under ``theta = Phi(-z)``.  ``z`` is the abandon governor's output
(:mod:`dialer.pacing_governor`): it grows as the rolling abandon rates approach the
target, and near the target the campaign dials progressively.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from dialer.pacing import Decision, PacingInputs, clamp_lines, inputs_summary
from dialer.pacing_governor import AbandonGovernor
from dialer.pacing_model import AgentTable, LineTable, column_sums, marginal_risk, phi, ring_cdf

_QUARTER = (0.25).__mul__


class PredictivePolicy:
    """Model-based predictive pacing with an abandon governor (see the module docstring)."""

    name = "predictive"

    def __init__(self, *, ring_default: tuple[float, float] = (3.0, 15.0), timeout: float = 20.0,
                 rebuild_every: float = 60.0, p_uncertainty: float = 1.0, step: int = 2, suffix: bool = True,
                 **governor: Any) -> None:
        self.ring_default, self.timeout, self.rebuild_every = ring_default, timeout, rebuild_every
        self.step, self.suffix = step, suffix
        # dial as if the answer rate were this many posterior sd higher: while evidence is
        # thin (campaign start, after a shift in the answer rate) this under-dials, safely
        self.p_uncertainty = p_uncertainty
        self.governor = AbandonGovernor(**governor)
        self._lines: LineTable | None = None
        self._agents: AgentTable | None = None
        self._cdf = None
        self._ts: tuple[float, ...] = ()
        self._built_at = -math.inf

    # ---- model upkeep --------------------------------------------------------------------
    def _cdf_floor(self, st: Any) -> float:
        r = st.ring_times()
        return r[0] if len(r) >= 20 else self.ring_default[0]

    def _tables(self, inputs: PacingInputs) -> tuple[LineTable, AgentTable]:
        st, now = inputs.stats, inputs.now
        p = min(st.answer_probability(now) + self.p_uncertainty * st.answer_probability_sd(), 1.0)
        stale = now - self._built_at >= self.rebuild_every
        if stale or self._cdf is None:
            self._cdf, longest = ring_cdf(list(st.ring_times()), self.ring_default)
            limit = max(self.timeout, st.timeout_seen)
            horizon = max(2, min(int(math.ceil(longest)) + 1, int(limit)))
            # points every ``step`` seconds from the shortest ring time seen to the longest
            start = max(1, min(int(self._cdf_floor(st)), horizon))
            ts = tuple(float(t) for t in range(start, horizon + 1, self.step)) + (
                (float(horizon),) if (horizon - start) % self.step else ())
            mu, sigma = st.handle_log_params()
            wrap = st.wrap_time_mean()
            a = self._agents
            if (a is None or ts != self._ts or abs(mu - a.mu) > 0.01 or abs(sigma - a.sigma) > 0.02 * a.sigma
                    or abs(wrap - a.wrap) > 0.5):
                self._agents = AgentTable(mu, sigma, wrap, ts)
            self._ts, self._built_at, self._lines = ts, now, None
        if self._lines is None or abs(p - self._lines.p) > 0.01 * self._lines.p:
            self._lines = LineTable(p, self._cdf, self._ts)
        return self._lines, self._agents

    # ---- the decision ----------------------------------------------------------------------
    def decide(self, inputs: PacingInputs) -> Decision:
        gov = self.governor.assess(inputs)
        if gov["mode"] == "progressive":
            want = inputs.agents_ready - inputs.lines_in_flight - inputs.answered_waiting
            n = clamp_lines(want, inputs)
            return Decision(n, {"mode": "predictive", "acting_as": "progressive", "governor": gov,
                                "inputs": inputs_summary(inputs), "lines_to_dial": n})
        if inputs.agents_ready + inputs.agents_busy == 0:
            return Decision(0, {"mode": "predictive", "reason": "no agents", "lines_to_dial": 0})
        lines, agents = self._tables(inputs)
        k = len(lines.ts)
        supply = self._supply(inputs, agents, k)
        demand = self._demand(inputs, lines, k)
        gap = [demand[j] - supply[j] for j in range(k)]
        var = [demand[k + j] + supply[k + j] for j in range(k)]
        theta = phi(-gov["z"])
        cap = clamp_lines(inputs.max_lines, inputs)
        first = next((j for j in range(k) if lines.new_f[j] > 0), k - 1)
        n, risk = self._largest(theta, cap, gap, var, lines, first)
        h = k - 1
        return Decision(n, {
            "mode": "predictive", "inputs": inputs_summary(inputs), "governor": gov,
            "model": {"answer_probability": round(lines.p, 4), "horizon_s": k,
                      "busy_mean_s": round(agents.mean_busy, 1), "talk_log_sigma": round(agents.sigma, 3),
                      "wrap_s": round(agents.wrap, 1)},
            "at_horizon": {"answers_expected": round(demand[h], 2), "agents_free_expected": round(supply[h], 2),
                           "sd": round(math.sqrt(var[h]), 2)},
            "marginal_abandon_threshold": round(theta, 4), "last_line_risk": round(risk, 4),
            "lines_to_dial": n,
        })

    def _largest(self, theta: float, cap: int, gap: list[float], var: list[float], lines: LineTable,
                 first: int) -> tuple[int, float]:
        """Largest n <= cap whose n-th line has marginal risk <= theta (risk is increasing in n)."""
        if cap <= 0:
            return 0, 0.0
        r1 = marginal_risk(1, gap, var, lines, first, self.suffix)
        if r1 > theta:
            return 0, r1
        lo, lo_risk, hi = 1, r1, 2
        while hi <= cap:
            r = marginal_risk(hi, gap, var, lines, first, self.suffix)
            if r > theta:
                break
            lo, lo_risk, hi = hi, r, hi * 2
        hi = min(hi, cap + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = marginal_risk(mid, gap, var, lines, first, self.suffix)
            if r <= theta:
                lo, lo_risk = mid, r
            else:
                hi = mid
        return lo, lo_risk

    @staticmethod
    def _supply(inputs: PacingInputs, agents: AgentTable, k: int) -> list[float]:
        free_soon, elapsed = inputs.agents_free_soon, inputs.agents_busy_elapsed
        if elapsed and len(elapsed) == len(free_soon):
            # one row per 4 s bin of elapsed talk time (the hazard moves slowly); -1 = wrap-up
            counts = Counter(map(math.floor, map(_QUARTER, elapsed)))
            counts.pop(-1, None)
            talking, exact = agents.talking, agents.exact
            rows = [talking(4 * b + 2) for b in counts]
            weights = list(counts.values())
            for e, r in zip(elapsed, free_soon):
                if e < 0:
                    rows.append(exact(math.ceil(r)))
                    weights.append(1)
            sums = column_sums(rows, 2 * k, weights)
        else:
            rows = [agents.expo(int(r)) for r in free_soon]
            missing = inputs.agents_busy - len(free_soon)
            if missing > 0:
                rows.extend([agents.expo(0)] * missing)
            sums = column_sums(rows, 2 * k)
        for j in range(k):
            sums[j] += inputs.agents_ready
        return sums

    @staticmethod
    def _demand(inputs: PacingInputs, lines: LineTable, k: int) -> list[float]:
        ages = inputs.lines_in_flight_ages
        row = lines.row
        if len(ages) == inputs.lines_in_flight:
            counts = Counter(map(int, ages))
        else:  # ages unknown: count every line as freshly dialed (the most answers to come)
            counts = Counter({0: inputs.lines_in_flight}) if inputs.lines_in_flight else Counter()
        sums = column_sums([row(a) for a in counts], 2 * k, list(counts.values()))
        for j in range(k):
            sums[j] += inputs.answered_waiting
        return sums
