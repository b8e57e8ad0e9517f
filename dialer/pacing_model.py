"""The predictive model's building blocks: answer-time and agent-free-time probabilities.

Everything is a lookup table over whole seconds, so a decision costs a few list lookups per
line and per agent instead of a distribution evaluation.  Rows are tuples
``(P(event by t_1), ..., P(event by t_K), var_1, ..., var_K)`` for the horizon points
``t_j = j`` seconds; a column sum over all lines (or agents) gives the mean and variance of
how many answer (or free up) by each ``t_j``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from operator import mul

PATIENCE_S = 2.0  # FCC/Ofcom: an agent must be connected within 2 s of the answer
_SQRT2 = math.sqrt(2.0)
_MAX_ELAPSED = 4 * 3600


def ring_cdf(ring_sorted: list[float], default: tuple[float, float]) -> tuple[Callable[[float], float], float]:
    """Empirical ring-time CDF of live answers (uniform over ``default`` with too few samples)
    and the longest ring time."""
    if len(ring_sorted) >= 20:
        n = len(ring_sorted)
        return (lambda t: bisect_right(ring_sorted, t) / n), ring_sorted[-1]
    lo, hi = default
    return (lambda t: min(max((t - lo) / max(hi - lo, 1e-9), 0.0), 1.0)), hi


class LineTable:
    """For a line of a given age still ringing: P(it has been answered by now + t)."""

    def __init__(self, p: float, cdf: Callable[[float], float], ts: tuple[float, ...]) -> None:
        self.p, self.cdf, self.ts = p, cdf, ts
        self.new_q = tuple(p * cdf(t) for t in ts)               # a line dialed now
        prev = [cdf(ts[0] - 1.0)] + [cdf(t) for t in ts[:-1]]
        self.new_f = tuple(cdf(t) - a for t, a in zip(ts, prev))  # its answer-time mass per second
        self._rows: list[tuple[float, ...] | None] = [None] * (int(ts[-1]) + 64)

    def row(self, age: int) -> tuple[float, ...]:
        if age >= len(self._rows):
            age = len(self._rows) - 1
        r = self._rows[age]
        if r is None:
            p, f0 = self.p, self.cdf(age)
            alive = 1.0 - p * f0      # P(not answered yet); given that, answers by age + t:
            qs = [p * (self.cdf(age + t) - f0) / alive if alive > 1e-9 else 0.0 for t in self.ts]
            r = self._rows[age] = tuple(qs) + tuple(q * (1 - q) for q in qs)
        return r


class AgentTable:
    """For a busy agent: P(free by now + t + 2 s).

    Talk time is lognormal(mu, sigma) fitted to recent calls, followed by a wrap-up of
    ``wrap`` seconds; a talking agent on the call for ``e`` s is free by ``e + x`` with
    probability ``P(T <= e + x - wrap | T > e)``.  An agent in wrap-up is free at a known time.
    """

    def __init__(self, mu: float, sigma: float, wrap: float, ts: tuple[float, ...]) -> None:
        self.mu, self.sigma, self.wrap, self.ts = mu, max(sigma, 0.05), wrap, ts
        self.mean_busy = math.exp(mu + sigma * sigma / 2) + wrap
        self._talk: list[tuple[float, ...] | None] = [None] * (_MAX_ELAPSED + 1)
        self._exact: dict[int, tuple[float, ...]] = {}
        self._expo: dict[int, tuple[float, ...]] = {}

    def _surv(self, x: float) -> float:
        if x <= 0:
            return 1.0
        return 0.5 * math.erfc((math.log(x) - self.mu) / (self.sigma * _SQRT2))

    def talking(self, elapsed: int) -> tuple[float, ...]:
        if elapsed > _MAX_ELAPSED:
            elapsed = _MAX_ELAPSED
        r = self._talk[elapsed]
        if r is None:
            e = elapsed + 0.5
            s0 = self._surv(e)
            ps = []
            for t in self.ts:
                x = e + t + PATIENCE_S - self.wrap
                if x <= e:
                    ps.append(0.0)
                elif s0 < 1e-12:
                    ps.append(1.0)
                else:
                    ps.append(1.0 - self._surv(x) / s0)
            r = self._talk[elapsed] = tuple(ps) + tuple(x * (1 - x) for x in ps)
        return r

    def exact(self, remaining: int) -> tuple[float, ...]:
        r = self._exact.get(remaining)
        if r is None:
            ps = [1.0 if remaining <= t + PATIENCE_S else 0.0 for t in self.ts]
            r = self._exact[remaining] = tuple(ps) + (0.0,) * len(ps)
        return r

    def expo(self, mean_remaining: int) -> tuple[float, ...]:
        """Only an expected remaining time is known: take it as exponential."""
        r = self._expo.get(mean_remaining)
        if r is None:
            m = float(mean_remaining) if mean_remaining > 0 else self.mean_busy
            ps = [1.0 - math.exp(-(t + PATIENCE_S) / m) for t in self.ts]
            r = self._expo[mean_remaining] = tuple(ps) + tuple(x * (1 - x) for x in ps)
        return r


def column_sums(rows: list[tuple[float, ...]], width: int, weights: list[int] | None = None) -> list[float]:
    """Column sums of the rows (each row counted ``weights[i]`` times when given)."""
    if not rows:
        return [0.0] * width
    if weights is None:
        return [sum(col) for col in zip(*rows)]
    return [sum(map(mul, col, weights)) for col in zip(*rows)]


def phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / _SQRT2)


def marginal_risk(k: int, gap: list[float], var: list[float], lines: LineTable, first: int,
                  suffix: bool = True) -> float:
    """P(the k-th new line, if it answers, finds no agent within 2 s).

    ``gap[j]`` = E[answers by t_j] - E[agents free by t_j + 2 s] before any new line,
    ``var[j]`` the variance of that difference.  The new caller answering at ``t_j`` takes
    an agent that every later answer also counts on, so its risk is the largest shortage
    probability from ``t_j`` to the horizon (normal approximation, continuity-corrected);
    averaged over its answer time.
    """
    q, f = lines.new_q, lines.new_f
    extra = k - 1
    run = total = 0.0
    for j in range(len(gap) - 1, first - 1, -1):
        qj = q[j]
        v = var[j] + extra * qj * (1.0 - qj)
        m = gap[j] + extra * qj + 0.5
        ph = 0.5 * math.erfc(-m / (_SQRT2 * math.sqrt(v if v > 0.25 else 0.25)))
        if ph > run or not suffix:
            run = ph
        total += f[j] * run
    return total
