"""Discrete-event simulation of one campaign shift, driven by the real pacing policies.

Events on a heap: a line answers or times out, an agent finishes talk + wrap-up, a pacer
tick.  After the events of each instant the pacer is asked (through ``PacingInputs`` and
``decide``, exactly as the runtime does) how many lines to start.  An answered human
goes to the longest-idle agent; with none free it waits, and if no agent frees within
``patience`` (2 s) the call is abandoned (it would hear the safe-harbour message).  The
campaign's ``CampaignStats`` is fed the outcomes the runtime would feed it.

Measured over the shift ``[0, hours)``: occupancy = (talk + wrap-up) / logged-in time,
talk minutes per agent-hour, abandon rate = abandoned / live answers (the whole shift; it
is also every 24-hour window that contains the shift), and the worst complete rolling
1-hour window (a stricter view).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from dialer.oracle import OraclePolicy
from dialer.pacing import CampaignStats, PacingInputs, PacingPolicy, make_policy
from dialer.sim_population import Population, SimConfig

_ANSWER, _NOANSWER, _FREE, _TICK, _ORACLE, _WAKE = 0, 1, 2, 3, 4, 5
TIMELINE_BIN_S = 900.0


@dataclass
class SimResult:
    policy: str
    seed: int
    agents: int
    answer_p: float
    step: float
    occupancy: float
    talk_min_per_agent_hour: float
    attempts: int
    live_answers: int
    abandoned: int
    abandon_rate: float          # whole shift = the 30-day and every covering 24 h window
    worst_1h_abandon_rate: float  # worst complete rolling 1 h window (minute steps)
    decisions: int
    wall_s: float = 0.0
    occupancy_timeline: tuple[float, ...] = ()   # per TIMELINE_BIN_S of the shift

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_policy(name: str, cfg: SimConfig) -> PacingPolicy:
    """The policy under test; the benchmark's named variants map onto ``make_policy``."""
    params = dict(cfg.policy_params)
    if name == "oracle":
        return OraclePolicy()
    if name.startswith("power"):
        return make_policy("power", **params)
    if name == "predictive":
        params.setdefault("ring_default", (cfg.ring_min, cfg.ring_max))
        params.setdefault("timeout", cfg.timeout)
    return make_policy(name, **params)


def worst_window(live: list[int], abandoned: list[int], width: int) -> float:
    """Worst abandon rate over complete windows of ``width`` buckets (whole run if shorter)."""
    if len(live) <= width:
        total = sum(live)
        return sum(abandoned) / total if total else 0.0
    lw, aw = sum(live[:width]), sum(abandoned[:width])
    worst = aw / lw if lw else 0.0
    for k in range(width, len(live)):
        lw += live[k] - live[k - width]
        aw += abandoned[k] - abandoned[k - width]
        if lw and aw / lw > worst:
            worst = aw / lw
    return worst


class Simulation:
    """One shift of one policy on one seed's population."""

    def __init__(self, cfg: SimConfig, policy: PacingPolicy, seed: int,
                 stats: CampaignStats | None = None) -> None:
        self.cfg, self.policy, self.seed = cfg, policy, seed
        self.pop = Population(seed, cfg)
        self.stats = stats or CampaignStats()
        self.now = 0.0
        self.heap: list[tuple] = []
        self._seq = itertools.count()
        n = cfg.agents
        self.idle: deque[int] = deque(range(n))       # longest idle first
        self.busy: set[int] = set()
        self.conn_t = [0.0] * n
        self.talk_end = [0.0] * n
        self.free_t = [0.0] * n
        self.cust_of = [0] * n
        self.lines: dict[int, float] = {}              # customer index -> dial time
        self.waiting: deque[tuple[float, int]] = deque()
        self.next_customer = 0
        self.busy_time = self.talk_time = 0.0
        minutes = int(cfg.shift_s // 60) + 1
        self.live_m, self.ab_m = [0] * minutes, [0] * minutes
        self.busy_by_bin = [0.0] * (int(cfg.shift_s // TIMELINE_BIN_S) + 1)
        self.attempts = self.decisions = 0
        self.needs_detail = getattr(policy, "needs_detail", True)
        self.oracle = policy if isinstance(policy, OraclePolicy) else None

    # ---- event helpers -------------------------------------------------------------------
    def _push(self, t: float, kind: int, a: int = 0) -> None:
        heapq.heappush(self.heap, (t, next(self._seq), kind, a))

    def _dial(self, i: int, t: float) -> None:
        pop = self.pop
        pop.ensure(i)
        self.lines[i] = t
        self.attempts += 1
        if pop.u[i] < self.cfg.answer_p_at(t):
            self._push(t + pop.ring[i], _ANSWER, i)
        else:
            self._push(t + self.cfg.timeout, _NOANSWER, i)

    def _count_live(self, answered_at: float, abandoned: bool) -> None:
        m = int(answered_at // 60)
        if m < len(self.live_m):
            self.live_m[m] += 1
            self.ab_m[m] += abandoned

    def _connect(self, j: int, i: int, t: float) -> None:
        cfg, end = self.cfg, self.cfg.shift_s
        talk = self.pop.talk[i]
        self.busy.add(j)
        self.conn_t[j], self.talk_end[j], self.free_t[j], self.cust_of[j] = t, t + talk, t + talk + cfg.wrap, i
        self.busy_time += min(t + talk + cfg.wrap, end) - t
        self.talk_time += min(t + talk, end) - t
        self._add_busy_by_bin(t, min(t + talk + cfg.wrap, end))
        self._push(t + talk + cfg.wrap, _FREE, j)
        if self.oracle is not None:
            dial_t, c = self.oracle.plan(t + talk + cfg.wrap, t, self.pop.answers_at, self.pop.ring_of)
            self._push(dial_t, _ORACLE, c)

    def _add_busy_by_bin(self, a: float, b: float) -> None:
        h = int(a // TIMELINE_BIN_S)
        while a < b:
            edge = min(b, (h + 1) * TIMELINE_BIN_S)
            self.busy_by_bin[h] += edge - a
            a, h = edge, h + 1

    def _purge(self, now: float) -> None:
        """Answered humans whose 2 s ran out without an agent are abandoned."""
        w, patience = self.waiting, self.cfg.patience
        while w and w[0][0] + patience < now:
            answered_at, _ = w.popleft()
            self.stats.record_live_answer(answered_at + patience, abandoned=True)
            self._count_live(answered_at, True)

    # ---- events ----------------------------------------------------------------------------
    def _on_answer(self, i: int, t: float) -> None:
        started = self.lines.pop(i)
        self.stats.record_attempt(t, True, t - started)
        if self.idle:
            j = self.idle.popleft()
            self.stats.record_live_answer(t, abandoned=False)
            self._count_live(t, False)
            self._connect(j, i, t)
        else:
            self.waiting.append((t, i))

    def _on_free(self, j: int, t: float) -> None:
        self.busy.discard(j)
        self.stats.record_connect(t, t - self.conn_t[j], self.cfg.wrap)
        self._purge(t)
        if self.waiting:
            answered_at, i = self.waiting.popleft()
            self.stats.record_live_answer(t, abandoned=False)
            self._count_live(answered_at, False)
            self._connect(j, i, t)
        else:
            self.idle.append(j)

    def _decide(self, now: float) -> None:
        self._purge(now)
        self.decisions += 1
        if self.needs_detail:
            ages = tuple([now - s for s in self.lines.values()])
            talk_end, conn_t, free_t = self.talk_end, self.conn_t, self.free_t
            elapsed, free_soon = [], []
            for j in self.busy:
                if now < talk_end[j]:
                    elapsed.append(now - conn_t[j])
                    free_soon.append(0.0)
                else:
                    elapsed.append(-1.0)
                    free_soon.append(free_t[j] - now)
            el, fs = tuple(elapsed), tuple(free_soon)
        else:
            ages, el, fs = (), (), ()
        inputs = PacingInputs(now, len(self.idle), len(self.busy), fs, len(self.lines), len(self.waiting),
                              self.stats, self.cfg.abandon_target, self.cfg.line_cap, el, ages)
        n = self.policy.decide(inputs).lines_to_dial
        for _ in range(n):
            self._dial(self.next_customer, now)
            self.next_customer += 1

    # ---- the loop --------------------------------------------------------------------------
    def run(self) -> SimResult:
        """Play the shift; the pacer decides after the events of each instant."""
        t0 = time.perf_counter()
        cfg, end, heap = self.cfg, self.cfg.shift_s, self.heap
        if self.oracle is not None:
            for _ in range(cfg.agents):
                dial_t, c = self.oracle.plan(0.0, 0.0, self.pop.answers_at, self.pop.ring_of)
                self._push(dial_t, _ORACLE, c)
        else:
            self._push(0.0, _TICK)
        gap, last_decision, dirty, wake_at = cfg.decide_gap, -1e9, False, -1.0
        pop = heapq.heappop
        while heap and heap[0][0] < end:
            t, _, kind, a = pop(heap)
            self.now = t
            if kind == _WAKE:        # a decision deferred by decide_gap
                wake_at = -1.0
            elif self._handle(kind, a, t):
                dirty = True
            if dirty and self.oracle is None and (not heap or heap[0][0] > t):
                if t - last_decision >= gap - 1e-9:
                    self._decide(t)
                    last_decision, dirty = t, False
                elif wake_at < 0:
                    wake_at = last_decision + gap
                    self._push(wake_at, _WAKE)
        self._purge(end)
        return self._result(time.perf_counter() - t0)

    def _handle(self, kind: int, a: int, t: float) -> bool:
        """Apply one event; True when the pacer should look again."""
        if kind == _ANSWER:
            self._on_answer(a, t)
        elif kind == _NOANSWER:
            del self.lines[a]
            self.stats.record_attempt(t, False, self.cfg.timeout)
        elif kind == _FREE:
            self._on_free(a, t)
        elif kind == _TICK:
            self._push(t + self.cfg.tick, _TICK)
        else:                        # the oracle's planned dial
            self._dial(a, t)
            return False
        return True

    def _result(self, wall: float) -> SimResult:
        cfg = self.cfg
        logged_in = cfg.agents * cfg.shift_s
        live, ab = sum(self.live_m), sum(self.ab_m)
        bins = [b / (cfg.agents * TIMELINE_BIN_S) for b in self.busy_by_bin[: int(cfg.shift_s // TIMELINE_BIN_S)]]
        return SimResult(
            policy=self.policy.name, seed=self.seed, agents=cfg.agents, answer_p=cfg.answer_p, step=cfg.step,
            occupancy=self.busy_time / logged_in,
            talk_min_per_agent_hour=self.talk_time / 60.0 / (cfg.agents * cfg.hours),
            attempts=self.attempts, live_answers=live, abandoned=ab,
            abandon_rate=ab / live if live else 0.0,
            worst_1h_abandon_rate=worst_window(self.live_m, self.ab_m, 60),
            decisions=self.decisions, wall_s=round(wall, 3), occupancy_timeline=tuple(round(b, 4) for b in bins),
        )


def simulate(cfg: SimConfig, policy: str, seed: int) -> SimResult:
    """Run one shift of the named policy (``progressive``, ``power``, ``vicidial``,
    ``predictive``, ``oracle``) on the population of ``seed``."""
    sim = Simulation(cfg, build_policy(policy, cfg), seed)
    result = sim.run()
    result.policy = policy
    return result
