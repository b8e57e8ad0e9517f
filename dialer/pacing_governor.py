"""The abandon governor: turns the rolling abandon rates into the predictive safety margin.

Regulators bound abandoned / live-answered calls per campaign: 3% over 30 days (FCC) and
over any 24 h (Ofcom).  The governor aims below the target (``setpoint``, 92% of it: at 85% the
benchmark left a sixth of the budget unspent, and the worst seed ends near 2.8%) and reads
three rates:

* the long rate, the worse of the 30-day and 24-hour windows — what is judged.  It acts
  as the integral term: it is a running sum of past errors, so a deficit early in the day
  is paid back by more caution later;
* the short rate over the last minutes — the proportional term, reacting to a burst (an
  answer-rate jump the estimator has not caught yet) long before the long rate moves.
  Its gain is small (``k_short`` 0.3): ten minutes of a small team hold a few dozen live
  answers, so each abandon swung z by about 0.4 at gain 1, and a wobbling z costs
  occupancy for nothing — the abandon rate is convex in z, so the mean z must rise to
  keep the same rate (benchmark: +0.5 to +0.8 point at 10 agents, same abandon rates);
* both are shrunk towards the setpoint by a few pseudo-calls, so that the first abandon
  of the day does not swing the margin.

``z = z_nominal + k_long * (long - setpoint)/target + k_short * (short - setpoint)/target``
(errors below the setpoint count ``below`` times as much: spending a saved budget fast
would bunch abandons), plus a warm-up margin over the campaign's first few hundred live
answers, clamped; and when the long rate over at least ``min_live_for_cut`` live answers
reaches ``cut_at * target`` the campaign dials progressively (never abandons) until it is
back under ``resume_at * target``.
The predictive policy accepts a new line while the chance that its answered call finds no
agent within 2 s is under ``Phi(-z)`` (z = 2: 2.3%).
"""

from __future__ import annotations

from typing import Any

from dialer.pacing_stats import WINDOW_24H, WINDOW_30D


class AbandonGovernor:
    """Stateless except for the progressive cut's hysteresis."""

    def __init__(self, *, setpoint: float = 0.92, z_nominal: float = 2.0, k_long: float = 8.0,
                 k_short: float = 0.3, below: float = 0.5, short_window: float = 600.0,
                 shrink_long: float = 200.0, shrink_short: float = 30.0, z_min: float = 1.0,
                 z_max: float = 4.0, cut_at: float = 1.0, resume_at: float = 0.95,
                 min_live_for_cut: int = 1500, warmup: float = 1.0, warmup_live: float = 300.0) -> None:
        self.setpoint, self.z_nominal = setpoint, z_nominal
        self.k_long, self.k_short, self.short_window, self.below = k_long, k_short, short_window, below
        self.shrink_long, self.shrink_short = shrink_long, shrink_short
        self.z_min, self.z_max = z_min, z_max
        self.cut_at, self.resume_at, self.min_live_for_cut = cut_at, resume_at, min_live_for_cut
        self.warmup, self.warmup_live = warmup, warmup_live
        self.cut = False

    def assess(self, inputs: Any) -> dict[str, Any]:
        """``{"mode": "predictive"|"progressive", "z": ..., rates...}`` for this instant."""
        st, now, target = inputs.stats, inputs.now, inputs.abandon_target
        sp = self.setpoint * target
        l30, a30 = st.abandon_counts(now, WINDOW_30D)
        l24, a24 = st.abandon_counts(now, WINDOW_24H)
        ls, as_ = st.abandon_counts(now, self.short_window)
        raw30 = a30 / l30 if l30 else 0.0
        raw24 = a24 / l24 if l24 else 0.0
        worst_raw, worst_live = (raw24, l24) if raw24 >= raw30 else (raw30, l30)
        long_rate = max((a30 + sp * self.shrink_long) / (l30 + self.shrink_long),
                        (a24 + sp * self.shrink_long) / (l24 + self.shrink_long))
        short_rate = (as_ + sp * self.shrink_short) / (ls + self.shrink_short)
        e_long, e_short = (long_rate - sp) / target, (short_rate - sp) / target
        if e_long < 0:
            e_long *= self.below
        if e_short < 0:
            e_short *= self.below
        z = self.z_nominal + self.k_long * e_long + self.k_short * e_short
        # a campaign's first calls: thin estimates and agents starting in step
        z += self.warmup * max(0.0, 1.0 - l30 / self.warmup_live)
        z = min(max(z, self.z_min), self.z_max)
        # the last resort: progressive dialing never abandons, but it costs big teams half
        # their occupancy (a 10-agent team at 10% answers falls to 40%), so it waits for the
        # target itself over a window with enough calls to mean something: cutting at 97%
        # over 500 calls fired on early-shift noise and cost such teams a fifth of the shift,
        # while the integral term alone holds every seed of the benchmark grid under 3%
        if worst_live >= self.min_live_for_cut and worst_raw >= self.cut_at * target:
            self.cut = True
        elif self.cut and worst_raw < self.resume_at * target:
            self.cut = False
        return {
            "mode": "progressive" if self.cut else "predictive", "z": round(z, 3),
            "setpoint": round(sp, 4), "abandon_rate_30d": round(raw30, 4), "live_30d": l30,
            "abandon_rate_24h": round(raw24, 4), "live_24h": l24,
            "abandon_rate_short": round(as_ / ls, 4) if ls else 0.0, "live_short": ls,
            "long_rate_shrunk": round(long_rate, 4), "short_rate_shrunk": round(short_rate, 4),
        }
