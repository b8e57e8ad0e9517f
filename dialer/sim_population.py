"""The simulated customers and the simulation settings.

Common random numbers: customer ``i`` of seed ``s`` has the same answer draw, ring time
and talk time whichever policy dials it, so policies are compared on the same people.
A customer answers a call placed at ``t`` when its uniform draw is below the answer
probability in force at ``t`` (so the mid-shift step changes who answers, not the draws).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

_CHUNK = 4096


@dataclass(frozen=True)
class SimConfig:
    """One simulated shift: agents, customers, and the clock of the decisions."""

    agents: int = 10
    answer_p: float = 0.3
    hours: float = 8.0
    handle_mean: float = 120.0      # talk time (lognormal)
    handle_cv: float = 0.8
    wrap: float = 10.0              # wrap-up after each call
    ring_min: float = 3.0           # ring time before a live answer: uniform [min, max]
    ring_max: float = 15.0
    timeout: float = 20.0           # no answer: give up after this (>= 15 s, FCC)
    patience: float = 2.0           # an answered human waits this long for an agent, then is abandoned
    step: float = 1.0               # answer probability multiplier from step_at on (1.5 / 0.5: the ±50% step)
    step_at: float = 0.5            # fraction of the shift
    tick: float = 1.0               # the pacer also runs this often without any event
    decide_gap: float = 0.0         # event-driven decisions at most this often (0: on every event)
    abandon_target: float = 0.03
    max_lines: int = 0              # 0: 5 lines per agent + 10
    policy_params: tuple = field(default=())   # (key, value) pairs for make_policy

    @property
    def shift_s(self) -> float:
        return self.hours * 3600.0

    @property
    def line_cap(self) -> int:
        return self.max_lines or 5 * self.agents + 10

    def answer_p_at(self, t: float) -> float:
        if self.step != 1.0 and t >= self.step_at * self.shift_s:
            return min(self.answer_p * self.step, 1.0)
        return self.answer_p


class Population:
    """Customers of one seed, generated lazily in chunks (three independent streams)."""

    def __init__(self, seed: int, cfg: SimConfig) -> None:
        self._ru = random.Random(f"{seed}:answer")
        self._rr = random.Random(f"{seed}:ring")
        self._rh = random.Random(f"{seed}:talk")
        self.cfg = cfg
        s2 = math.log(1.0 + cfg.handle_cv ** 2)
        self._mu, self._sigma = math.log(cfg.handle_mean) - s2 / 2, math.sqrt(s2)
        self.u: list[float] = []
        self.ring: list[float] = []
        self.talk: list[float] = []

    def ensure(self, i: int) -> None:
        """Make sure customer ``i`` exists."""
        while i >= len(self.u):
            ru, rr, rh = self._ru.random, self._rr.uniform, self._rh.lognormvariate
            c = self.cfg
            self.u.extend(ru() for _ in range(_CHUNK))
            self.ring.extend(rr(c.ring_min, c.ring_max) for _ in range(_CHUNK))
            if self._sigma > 0:
                self.talk.extend(rh(self._mu, self._sigma) for _ in range(_CHUNK))
            else:
                self.talk.extend([c.handle_mean] * _CHUNK)

    def answers_at(self, i: int, t: float) -> bool:
        self.ensure(i)
        return self.u[i] < self.cfg.answer_p_at(t)

    def ring_of(self, i: int) -> float:
        self.ensure(i)
        return self.ring[i]
