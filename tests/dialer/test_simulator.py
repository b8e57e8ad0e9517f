"""The discrete-event simulator: closed form, determinism, common random numbers, the 2 s rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dialer.pacing import Decision, PacingInputs
from dialer.sim_population import Population, SimConfig
from dialer.simulator import Simulation, build_policy, simulate, worst_window


def progressive_closed_form(cfg: SimConfig) -> tuple[float, float]:
    """(occupancy, talk minutes per agent-hour) of progressive 1:1 dialing.

    Each agent owns one line; an attempt fails with probability 1-p after the full timeout
    and is redialed at once, so a cycle is (1-p)/p timeouts, one ring until the answer,
    talk and wrap-up: C = (1-p)/p*T0 + E[R] + E[H] + W.  Renewal-reward: occupancy
    (E[H] + W)/C, talk E[H]/C.
    """
    p = cfg.answer_p
    ring = (cfg.ring_min + cfg.ring_max) / 2
    cycle = (1 - p) / p * cfg.timeout + ring + cfg.handle_mean + cfg.wrap
    return (cfg.handle_mean + cfg.wrap) / cycle, 60.0 * cfg.handle_mean / cycle


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_progressive_matches_its_closed_form(p: float) -> None:
    cfg = SimConfig(agents=60, answer_p=p, hours=8.0)
    occ, talk = progressive_closed_form(cfg)
    results = [simulate(cfg, "progressive", seed) for seed in (1, 2)]
    sim_occ = sum(r.occupancy for r in results) / 2
    sim_talk = sum(r.talk_min_per_agent_hour for r in results) / 2
    # sampling error of the mean cycle over ~2*60*8h/C cycles is under 1%; the shift's
    # start (all agents wait for a first answer) and end (truncated calls) cost a bit more
    assert sim_occ == pytest.approx(occ, rel=0.02)
    assert sim_talk == pytest.approx(talk, rel=0.025)
    assert all(r.abandoned == 0 for r in results)


@pytest.mark.parametrize("policy", ["progressive", "power", "vicidial", "predictive", "oracle"])
def test_a_seed_replays_exactly(policy: str) -> None:
    cfg = SimConfig(agents=10, answer_p=0.3, hours=0.5)
    a, b = simulate(cfg, policy, 7), simulate(cfg, policy, 7)
    a.wall_s = b.wall_s = 0.0
    assert a == b
    c = simulate(cfg, policy, 8)
    assert (c.attempts, c.occupancy) != (a.attempts, a.occupancy)


def test_every_policy_meets_the_same_customers() -> None:
    cfg = SimConfig(agents=10, answer_p=0.3, hours=0.5)
    seen = {}
    for policy in ("progressive", "power", "predictive"):
        sim = Simulation(cfg, build_policy(policy, cfg), 3)
        sim.run()
        n = min(sim.next_customer, 500)
        seen[policy] = (sim.pop.u[:n], sim.pop.ring[:n], sim.pop.talk[:n])
    first = seen["progressive"]
    n = min(len(v[0]) for v in seen.values())
    for draws in seen.values():
        assert draws[0][:n] == first[0][:n] and draws[1][:n] == first[1][:n] and draws[2][:n] == first[2][:n]


def test_population_draws_do_not_depend_on_how_far_it_was_read() -> None:
    cfg = SimConfig(handle_cv=0.8)
    a, b = Population(5, cfg), Population(5, cfg)
    a.ensure(10)
    b.ensure(10_000)
    assert a.talk[:10] == b.talk[:10] and a.u[:10] == b.u[:10]
    talks = b.talk[:10_000]
    m = sum(talks) / len(talks)
    sd = (sum((x - m) ** 2 for x in talks) / len(talks)) ** 0.5
    assert m == pytest.approx(120, rel=0.05) and sd / m == pytest.approx(0.8, rel=0.1)


def test_the_mid_shift_step_changes_who_answers_not_the_draws() -> None:
    cfg = SimConfig(answer_p=0.3, step=1.5, hours=2.0)
    assert cfg.answer_p_at(0.0) == 0.3 and cfg.answer_p_at(3600.0) == pytest.approx(0.45)
    assert replace(cfg, step=0.5).answer_p_at(3600.0) == pytest.approx(0.15)


class Burst:
    """Dials ``n`` lines at the first decision, then nothing (to stage the 2 s rule)."""

    name = "burst"

    def __init__(self, n: int) -> None:
        self.n, self.done = n, False

    def decide(self, inputs: PacingInputs) -> Decision:
        if self.done:
            return Decision(0, {})
        self.done = True
        return Decision(self.n, {})


def staged(handle: float) -> Simulation:
    # one agent, everyone answers after exactly 3 s, talks `handle` s, no wrap-up
    cfg = SimConfig(agents=1, answer_p=1.0, hours=0.1, ring_min=3.0, ring_max=3.0, handle_mean=handle,
                    handle_cv=0.0, wrap=0.0)
    sim = Simulation(cfg, Burst(2), seed=1)
    sim.run()
    return sim


def test_an_answered_call_with_no_agent_within_2_s_is_abandoned() -> None:
    sim = staged(handle=5.0)     # the second caller would wait 5 s
    r = sim._result(0.0)
    assert (r.live_answers, r.abandoned) == (2, 1)
    assert sim.stats.abandon_counts(100.0, 3600.0) == (2, 1)


def test_an_answered_call_connected_within_2_s_is_not_abandoned() -> None:
    for handle in (1.0, 2.0):   # waits 1 s, then exactly 2 s: both within the rule
        r = staged(handle)._result(0.0)
        assert (r.live_answers, r.abandoned) == (2, 0)


def test_the_oracle_never_abandons_and_keeps_agents_busy() -> None:
    r = simulate(SimConfig(agents=10, answer_p=0.1, hours=1.0), "oracle", 1)
    assert r.abandoned == 0 and r.occupancy > 0.98
    assert r.attempts == r.live_answers or r.attempts - r.live_answers <= 10   # only answering calls dialed


def test_worst_window_slides_over_complete_windows() -> None:
    live = [10] * 5
    ab = [0, 0, 3, 0, 0]
    assert worst_window(live, ab, 1) == pytest.approx(0.3)
    assert worst_window(live, ab, 2) == pytest.approx(0.15)
    assert worst_window(live, ab, 10) == pytest.approx(3 / 50)
