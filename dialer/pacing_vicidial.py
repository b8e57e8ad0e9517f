"""An emulation of VICIdial's adaptive predictive mode (ADAPT_HARD_LIMIT), the benchmark's yardstick.

What VICIdial does (AST_VDadapt.pl + AST_VDauto_dial.pl, default settings, intensity 0):
every 15 s the dial level becomes ``level * (1 + differential / agents)``, where the
differential is the last minute's average of (ready agents - calls waiting for an agent)
and agents the last minute's average of non-paused agents; clamped to 1.0..max (3.0);
halved when over 50% of the last minute's answers were dropped; forced to 1.0 once the
day's drop rate passes the limit.  The dialer keeps ``round(level * agents)`` calls up:
lines ringing, answered calls waiting and calls with agents all count.
"""

from __future__ import annotations

import math
from typing import Any

from dialer.pacing import Decision, PacingInputs, clamp_lines, inputs_summary
from dialer.pacing_stats import WINDOW_24H


class VicidialAdaptPolicy:
    name = "vicidial"
    needs_detail = False

    def __init__(self, *, level: float = 1.0, max_level: float = 3.0, drop_limit: float | None = None,
                 adapt_every: float = 15.0, average_over: float = 60.0, min_answers_today: int = 50) -> None:
        self.level = float(level)
        self.max_level = float(max_level)
        self.drop_limit = drop_limit
        self.adapt_every, self.average_over = adapt_every, average_over
        self.min_answers_today = min_answers_today
        self._last_t: float | None = None
        self._last_diff = self._last_agents = 0.0
        self._chunk_diff = self._chunk_agents = self._chunk_dt = 0.0
        self._chunks: list[tuple[float, float, float]] = []   # (∫diff dt, ∫agents dt, dt) per 15 s
        self._next_adapt: float | None = None
        self.last_adapt: dict[str, Any] = {}

    def _integrate(self, inputs: PacingInputs) -> None:
        now = inputs.now
        if self._last_t is not None and now > self._last_t:
            dt = now - self._last_t
            self._chunk_diff += self._last_diff * dt
            self._chunk_agents += self._last_agents * dt
            self._chunk_dt += dt
        self._last_t = now
        self._last_diff = float(inputs.agents_ready - inputs.answered_waiting)
        self._last_agents = float(inputs.agents_ready + inputs.agents_busy)

    def _adapt(self, inputs: PacingInputs) -> None:
        self._chunks.append((self._chunk_diff, self._chunk_agents, self._chunk_dt))
        self._chunk_diff = self._chunk_agents = self._chunk_dt = 0.0
        keep = max(1, int(round(self.average_over / self.adapt_every)))
        del self._chunks[:-keep]
        span = sum(c[2] for c in self._chunks)
        if span <= 0:
            return
        diff = sum(c[0] for c in self._chunks) / span
        agents = sum(c[1] for c in self._chunks) / span
        level = self.level * (1.0 + diff / agents) if agents > 0 else self.level
        level = min(max(level, 1.0), self.max_level)
        st, now = inputs.stats, inputs.now
        limit = self.drop_limit if self.drop_limit is not None else inputs.abandon_target
        l1, a1 = st.abandon_counts(now, 60.0)
        if l1 > 20 and a1 > 0.5 * l1:
            level /= 2.0
        # "today" for a shift-long run is the last 24 h
        lday, aday = st.abandon_counts(now, WINDOW_24H)
        hard = lday > self.min_answers_today and aday > limit * lday
        if hard:
            level = 1.0
        self.level = max(level, 1.0)
        self.last_adapt = {"at": round(now, 1), "differential": round(diff, 3), "agents_avg": round(agents, 2),
                           "drop_rate_today": round(aday / lday, 4) if lday else 0.0, "hard_limit": hard}

    def decide(self, inputs: PacingInputs) -> Decision:
        self._integrate(inputs)
        if self._next_adapt is None:
            self._next_adapt = inputs.now + self.adapt_every
        elif inputs.now >= self._next_adapt:
            self._adapt(inputs)
            self._next_adapt += self.adapt_every * max(1, math.floor((inputs.now - self._next_adapt)
                                                                      / self.adapt_every) + 1)
        agents = inputs.agents_ready + inputs.agents_busy
        goal = int(math.floor(self.level * agents + 0.5))
        active = inputs.lines_in_flight + inputs.answered_waiting + inputs.agents_busy
        n = clamp_lines(goal - active, inputs)
        return Decision(n, {"mode": self.name, "dial_level": round(self.level, 3), "line_goal": goal,
                            "calls_active": active, "last_adapt": self.last_adapt,
                            "inputs": inputs_summary(inputs), "lines_to_dial": n})
