"""Rolling measurements of one campaign, fed with outcomes by the runtime or the simulator.

Answer probability: a Beta estimate over exponentially weighted attempts (the prior fades
with the data), with a fast twin that resets it when the answer rate clearly moves.
Ring and handle times: recent samples / log-moments.  Abandons: per-bucket counts with
prefix sums, so a rate over any window (24 h, 30 days) costs one bisect.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections import deque

WINDOW_24H = 24 * 3600.0
WINDOW_30D = 30 * 24 * 3600.0


class _DecayedBeta:
    """Beta(alpha, beta) whose evidence is weighted down by ``1 - 1/window`` per attempt."""

    __slots__ = ("hits", "n", "keep")

    def __init__(self, p0: float, weight: float, window: float) -> None:
        self.hits, self.n, self.keep = p0 * weight, weight, 1.0 - 1.0 / window

    def add_batch(self, hits: int, n: int) -> None:
        """``n`` outcomes resolved together, ``hits`` of them hits, whatever their order: each
        counts as the batch's mean (one by one, the last ones would weigh the most)."""
        kn = self.keep ** n
        weight = (1.0 - kn) / (1.0 - self.keep)   # the total weight of n successive adds
        self.hits = self.hits * kn + weight * hits / n
        self.n = self.n * kn + weight

    @property
    def mean(self) -> float:
        return self.hits / self.n


class CampaignStats:
    """Mutable rolling statistics of one campaign; all times in seconds."""

    def __init__(self, *, prior_answer: float = 0.3, prior_weight: float = 20.0,
                 answer_window: float = 1500.0, fast_window: float = 200.0,
                 prior_handle: float = 130.0, prior_handle_cv: float = 0.8,
                 handle_window: float = 300.0, ring_samples: int = 500,
                 bucket_s: float = 10.0, timeout: float = 20.0) -> None:
        self._slow = _DecayedBeta(prior_answer, prior_weight, answer_window)
        self._fast = _DecayedBeta(prior_answer, prior_weight, fast_window)
        self.answer_window, self.fast_window = answer_window, fast_window
        self.attempts = self.live_answers_total = self.abandoned_total = 0
        self.answer_resets = 0
        self._ring: deque[float] = deque(maxlen=ring_samples)
        self._ring_sorted: list[float] | None = None
        self.timeout_seen = timeout
        # outcomes wait until their whole dial cohort is resolved (dial time + timeout):
        # answers come back within seconds, no-answers only at the timeout, so counting
        # outcomes as they arrive would overstate the answer rate whenever dialing speeds up.
        # A cohort is counted as one batch once its instant is past: fed one by one, a burst of
        # hundreds of lines would feed its answers first and then its no-answers, swinging the
        # fast estimate up then down and tripping the change-point reset both ways
        self._pending: list[tuple[float, int, bool]] = []
        self._pending_seq = 0
        # handle time = talk + wrap-up; EWMA of the value and of its log (for a lognormal fit)
        s2 = math.log(1.0 + prior_handle_cv ** 2)
        self._h_keep = 1.0 - 1.0 / handle_window
        self._h_w = 10.0
        self._h_sum, self._h_sq = prior_handle * 10.0, prior_handle ** 2 * (1 + prior_handle_cv ** 2) * 10.0
        mu = math.log(prior_handle) - s2 / 2     # the prior assumes no wrap-up
        self._wrap_sum = 0.0
        self._lh_sum, self._lh_sq = mu * 10.0, (mu * mu + s2) * 10.0
        self.connects = 0
        self.version = 0                      # bumps when distributions may have moved
        self._bucket_s = bucket_s
        self._b_start: list[float] = []        # bucket start times, increasing
        self._cum_live: list[int] = [0]        # prefix sums: _cum_x[k] = total before bucket k
        self._cum_ab: list[int] = [0]

    # ---- feeding -------------------------------------------------------------------------
    def record_attempt(self, now: float, answered: bool, ring_time: float, machine: bool = False) -> None:
        """One originate resolved: answered (after ``ring_time``) or given up / failed."""
        live = answered and not machine   # machines need no agent: not a "live" answer for pacing
        self.attempts += 1
        if live:
            self._ring.append(ring_time)
            self._ring_sorted = None
        elif ring_time > self.timeout_seen:
            self.timeout_seen = ring_time
        self._pending_seq += 1
        heapq.heappush(self._pending, (now - ring_time + self.timeout_seen, self._pending_seq, live))
        self._mature(now)

    def _mature(self, now: float) -> None:
        pending = self._pending
        hits = n = 0
        while pending and pending[0][0] < now - 1e-9:   # strictly past: the cohort is complete
            hits += heapq.heappop(pending)[2]
            n += 1
        if n:
            self._slow.add_batch(hits, n)
            self._fast.add_batch(hits, n)
            self._check_answer_shift()

    def record_connect(self, now: float, handle_time: float, wrap_time: float = 0.0) -> None:
        """An agent finished a call: talk plus wrap-up took ``handle_time`` seconds, of which
        ``wrap_time`` was wrap-up (give it when known: a talking agent cannot be free before
        the wrap-up is over, which the model of agents about to be free needs)."""
        h = max(handle_time, 0.5)
        talk = max(h - max(wrap_time, 0.0), 0.5)
        k = self._h_keep
        self._h_w = self._h_w * k + 1.0
        self._h_sum = self._h_sum * k + h
        self._h_sq = self._h_sq * k + h * h
        self._wrap_sum = self._wrap_sum * k + max(wrap_time, 0.0)
        lt = math.log(talk)
        self._lh_sum = self._lh_sum * k + lt
        self._lh_sq = self._lh_sq * k + lt * lt
        self.connects += 1
        if self.connects % 25 == 0:
            self.version += 1

    def record_live_answer(self, now: float, abandoned: bool) -> None:
        """A live human answered; ``abandoned`` if no agent was connected within 2 s."""
        self.live_answers_total += 1
        self.abandoned_total += abandoned
        start = now - now % self._bucket_s
        if not self._b_start or start > self._b_start[-1]:
            self._b_start.append(start)
            self._cum_live.append(self._cum_live[-1])
            self._cum_ab.append(self._cum_ab[-1])
        self._cum_live[-1] += 1
        self._cum_ab[-1] += abandoned
        if len(self._b_start) > 2 * WINDOW_30D / self._bucket_s:
            self._prune(now - WINDOW_30D)

    def _prune(self, before: float) -> None:
        k = bisect_left(self._b_start, before - self._bucket_s)
        del self._b_start[:k]
        del self._cum_live[:k]
        del self._cum_ab[:k]

    def _check_answer_shift(self) -> None:
        # A change point (the list moved to another region, a carrier failing): when the fast
        # estimate is 4 standard errors away from the slow one, restart the slow one from it.
        slow, fast = self._slow.mean, self._fast.mean
        sd = math.sqrt(max(slow * (1 - slow), 1e-4) / min(self._fast.n, self.fast_window))
        if self.attempts > self.fast_window and abs(fast - slow) > 4.0 * sd:
            # restart light, so that the slow estimate now learns at the fast pace
            self._slow = _DecayedBeta(fast, self.fast_window / 2, self.answer_window)
            self.answer_resets += 1
            self.version += 1

    # ---- reading -------------------------------------------------------------------------
    def answer_probability(self, now: float | None = None) -> float:
        """Probability that an originate reaches a live human (Beta posterior mean)."""
        if now is not None:
            self._mature(now)
        return self._slow.mean

    def answer_probability_sd(self) -> float:
        """Posterior standard deviation of answer_probability()."""
        p = self._slow.mean
        return math.sqrt(max(p * (1 - p), 1e-6) / (self._slow.n + 1.0))

    def answer_evidence(self) -> float:
        """Effective number of attempts behind answer_probability()."""
        return self._slow.n

    def ring_times(self) -> list[float]:
        """Recent ring times of live answers, sorted."""
        if self._ring_sorted is None:
            self._ring_sorted = sorted(self._ring)
        return self._ring_sorted

    def ring_time_mean(self) -> float:
        return sum(self._ring) / len(self._ring) if self._ring else 9.0

    def ring_time_quantiles(self, qs: tuple[float, ...] = (0.1, 0.5, 0.9)) -> tuple[float, ...]:
        r = self.ring_times()
        if not r:
            return tuple(9.0 for _ in qs)
        return tuple(r[min(len(r) - 1, int(q * len(r)))] for q in qs)

    def handle_time_mean(self) -> float:
        return self._h_sum / self._h_w

    def handle_time_cv(self) -> float:
        m = self.handle_time_mean()
        var = max(self._h_sq / self._h_w - m * m, 0.0)
        return math.sqrt(var) / m

    def wrap_time_mean(self) -> float:
        return self._wrap_sum / self._h_w

    def handle_log_params(self) -> tuple[float, float]:
        """(mu, sigma) of a lognormal fitted to recent talk times (handle time less wrap-up)."""
        mu = self._lh_sum / self._h_w
        var = max(self._lh_sq / self._h_w - mu * mu, 1e-4)
        return mu, math.sqrt(var)

    def expected_remaining(self, elapsed: float) -> float:
        """Expected seconds until an agent talking for ``elapsed`` s is free (lognormal fit + wrap-up)."""
        mu, s = self.handle_log_params()
        wrap = self.wrap_time_mean()
        if elapsed <= 0:
            return math.exp(mu + s * s / 2) + wrap
        z = (math.log(elapsed) - mu) / s
        surv = 0.5 * math.erfc(z / math.sqrt(2))
        if surv < 1e-9:
            return 1.0
        # E[H | H > a] for a lognormal
        tail_mean = math.exp(mu + s * s / 2) * 0.5 * math.erfc((z - s) / math.sqrt(2)) / surv
        return max(tail_mean - elapsed, 0.0) + wrap

    def abandon_counts(self, now: float, window_s: float) -> tuple[int, int]:
        """(live answers, abandoned) within ``(now - window_s, now]``."""
        k = bisect_left(self._b_start, now - window_s)
        return (self._cum_live[-1] - self._cum_live[k], self._cum_ab[-1] - self._cum_ab[k])

    def abandon_rate(self, now: float, window_s: float = WINDOW_30D) -> float:
        """Abandoned / live-answered over the window (0 with no live answer)."""
        live, ab = self.abandon_counts(now, window_s)
        return ab / live if live else 0.0

    def snapshot(self, now: float) -> dict:
        """JSON-able figures for the API."""
        l24, a24 = self.abandon_counts(now, WINDOW_24H)
        l30, a30 = self.abandon_counts(now, WINDOW_30D)
        return {
            "attempts": self.attempts, "answer_probability": round(self.answer_probability(now), 4),
            "ring_time_mean": round(self.ring_time_mean(), 2),
            "handle_time_mean": round(self.handle_time_mean(), 1), "handle_time_cv": round(self.handle_time_cv(), 3),
            "abandon_rate_24h": round(a24 / l24, 4) if l24 else 0.0, "live_answers_24h": l24,
            "abandon_rate_30d": round(a30 / l30, 4) if l30 else 0.0, "live_answers_30d": l30,
        }
