"""Pacing: how many new lines a campaign dials now.

The runtime (and the simulator, through the very same objects) builds a
:class:`PacingInputs` snapshot, calls ``policy.decide(inputs)`` and starts
``decision.lines_to_dial`` originates.  Outcomes flow back into the campaign's
:class:`CampaignStats` (``record_attempt`` / ``record_connect`` /
``record_live_answer``), which the predictive model and its abandon governor read.

The optional ``agents_busy_elapsed`` / ``lines_in_flight_ages`` inputs and the optional
``wrap_time`` of ``record_connect`` sharpen the predictive model (which agents can be free
within seconds, which lines can still answer); without them it assumes the worst
(fresh lines) or an exponential remaining time.

Modes (``make_policy``): ``preview`` (0 lines, agents dial), ``progressive`` (one line
per ready agent), ``power`` (a fixed ratio of lines per ready agent), ``vicidial``
(an emulation of VICIdial's adaptive dial level, the benchmark's reference) and
``predictive`` (our model, see :mod:`dialer.pacing_predictive`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialer.models import Campaign, Mode
from dialer.pacing_stats import WINDOW_24H, WINDOW_30D, CampaignStats

__all__ = [
    "WINDOW_24H", "WINDOW_30D", "CampaignStats", "Decision", "PacingInputs", "PacingPolicy",
    "PowerPolicy", "PreviewPolicy", "ProgressivePolicy", "make_policy", "policy_for", "MODES",
]


@dataclass(frozen=True)
class PacingInputs:
    """What the pacer sees at one instant (times in seconds, monotonic or simulated)."""

    now: float
    agents_ready: int                       # logged in, not paused, idle
    agents_busy: int                        # talking or wrapping up
    agents_free_soon: tuple[float, ...]     # per busy agent: expected seconds until free (0 if unknown)
    lines_in_flight: int                    # dialing/ringing now, not yet answered or failed
    answered_waiting: int                   # answered humans waiting for an agent right now
    stats: CampaignStats
    abandon_target: float = 0.03
    max_lines: int = 100
    # Optional detail that sharpens the predictive model (empty = unknown):
    # per busy agent, in the order of agents_free_soon: seconds since the call was connected
    # while the agent is still talking, or -1 in wrap-up (agents_free_soon is then exact).
    agents_busy_elapsed: tuple[float, ...] = ()
    # per line in flight: seconds since it was originated.
    lines_in_flight_ages: tuple[float, ...] = ()


@dataclass(frozen=True)
class Decision:
    """How many originates to start now, and why (JSON-able, shown by the API)."""

    lines_to_dial: int
    explanation: dict[str, Any] = field(default_factory=dict)


class PacingPolicy(Protocol):
    name: str

    def decide(self, inputs: PacingInputs) -> Decision: ...


def inputs_summary(i: PacingInputs) -> dict[str, Any]:
    """The raw inputs, for explanations."""
    return {
        "now": round(i.now, 3), "agents_ready": i.agents_ready, "agents_busy": i.agents_busy,
        "lines_in_flight": i.lines_in_flight, "answered_waiting": i.answered_waiting,
        "abandon_target": i.abandon_target, "max_lines": i.max_lines,
    }


def clamp_lines(n: int, i: PacingInputs) -> int:
    """Never negative, never past max_lines in flight."""
    return max(0, min(int(n), i.max_lines - i.lines_in_flight))


class PreviewPolicy:
    """Agents choose and dial leads themselves: the pacer starts nothing."""

    name = "preview"
    needs_detail = False   # reads no per-agent / per-line tuples (the simulator skips them)

    def decide(self, inputs: PacingInputs) -> Decision:
        return Decision(0, {"mode": self.name, "inputs": inputs_summary(inputs), "lines_to_dial": 0})


class ProgressivePolicy:
    """One line per ready agent who has no line or answered call on the way: never abandons."""

    name = "progressive"
    needs_detail = False   # reads no per-agent / per-line tuples (the simulator skips them)

    def decide(self, inputs: PacingInputs) -> Decision:
        want = inputs.agents_ready - inputs.lines_in_flight - inputs.answered_waiting
        n = clamp_lines(want, inputs)
        return Decision(n, {"mode": self.name, "inputs": inputs_summary(inputs),
                            "uncovered_ready_agents": want, "lines_to_dial": n})


class PowerPolicy:
    """A fixed number of lines per ready agent (``ratio``), whatever the answer rate."""

    name = "power"
    needs_detail = False   # reads no per-agent / per-line tuples (the simulator skips them)

    def __init__(self, ratio: float = 2.0) -> None:
        if ratio < 1.0:
            raise ValueError("power ratio must be >= 1.0")
        self.ratio = float(ratio)

    def decide(self, inputs: PacingInputs) -> Decision:
        uncovered = inputs.agents_ready - inputs.answered_waiting
        goal = math.ceil(self.ratio * uncovered - 1e-9) if uncovered > 0 else 0
        n = clamp_lines(goal - inputs.lines_in_flight, inputs)
        return Decision(n, {"mode": self.name, "ratio": self.ratio, "inputs": inputs_summary(inputs),
                            "line_goal": goal, "lines_to_dial": n})


MODES = ("preview", "progressive", "power", "predictive", "vicidial")


def make_policy(mode: str, **params: Any) -> PacingPolicy:
    """A fresh policy object for one campaign (policies may keep state between decisions)."""
    if mode == "preview":
        return PreviewPolicy()
    if mode == "progressive":
        return ProgressivePolicy()
    if mode == "power":
        return PowerPolicy(**params)
    if mode == "predictive":
        from dialer.pacing_predictive import PredictivePolicy

        return PredictivePolicy(**params)
    if mode == "vicidial":
        from dialer.pacing_vicidial import VicidialAdaptPolicy

        return VicidialAdaptPolicy(**params)
    raise ValueError(f"unknown pacing mode {mode!r} (known: {', '.join(MODES)})")


def policy_for(campaign: Campaign, ring_timeout: float) -> PacingPolicy | None:
    """The policy a campaign's mode and pacing settings ask for (None: agentless, which
    dials one line per free place in its flow, see dialer.runner)."""
    mode, params = campaign.mode, dict(campaign.settings.pacing)
    if mode is Mode.PREDICTIVE:
        params.setdefault("timeout", ring_timeout)
        return make_policy("predictive", **params)
    if mode is Mode.POWER:
        return make_policy("power", **params)
    if mode is Mode.AGENTLESS:
        return None
    return make_policy(str(mode))
