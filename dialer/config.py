"""Settings of the ``[dialer]`` section (imports nothing of ours; see callcycle.settings).

These are server-side rules an operator sets; campaigns (through the API) may only narrow
them, never widen them: a campaign's calling window lies inside this one, its ring time
is at least 15 s, its lines at most ``max_lines``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DialerSettings:
    # Run campaign runners in this instance (an API-only instance sets false).
    enabled: bool = True
    # Dial string of a destination; {number} is replaced by the validated E.164 number
    # (the only part of a dial string that comes from data).
    trunk: str = "PJSIP/{number}@carrier"
    # Calling window in the callee's local time (FTC TSR / FCC: 08:00-21:00).
    window_start: str = "08:00"
    window_end: str = "21:00"
    # Destinations: a number must be in one of these countries (ISO 3166 codes) or start
    # with one of these E.164 prefixes; denied prefixes win over both. Premium-rate and
    # shared-cost numbers are always refused.
    allowed_countries: tuple[str, ...] = ("US", "CA")
    allowed_prefixes: tuple[str, ...] = ()
    denied_prefixes: tuple[str, ...] = ("+1900", "+1976")
    # AMD() arguments, "/"-separated: initialSilence/greeting/afterGreetingSilence/
    # totalAnalysisTime/minimumWordLength/betweenWordsSilence/maximumNumberOfWords/
    # silenceThreshold/maximumWordLength (ms). Asterisk's own defaults.
    amd_params: str = "2500/1500/800/5000/100/50/2/256/5000"
    # Recording played to an answered person no agent took within 2 s (names the caller
    # and a number to call back), unless the campaign names its own.
    safe_harbour_message: str = "demo-thanks"
    # The phone of the agent who chose a preview lead; {agent} is their token's subject, e.g.
    # "PJSIP/{agent}". Set, such a lead is dialed agent first: the agent's phone is rung,
    # then the customer, so an agent is guaranteed (a number resting after an abandoned
    # call or reached on a machine today may be called). Empty: the shared queue takes it.
    agent_endpoint: str = ""
    # How long the agent's phone rings before an agent-first dial gives up.
    agent_ring_s: float = 20.0
    # Extra originate channel variables ("NAME=value"), e.g. a carrier account code.
    originate_variables: tuple[str, ...] = ()
    # Sandbox only: replaces every campaign's no-answer timeout (0 = off). The 15 s floor
    # is a regulation for real destinations; simulated ones answer or not within 1-2 s.
    # Settable from the environment/config only, never through the API.
    ring_timeout_override_s: float = 0.0
    # Hard ceiling of any campaign's max_lines.
    max_lines: int = 200
    # Redis lease: time to live, and how often the leader renews it.
    lease_ttl_s: float = 6.0
    lease_renew_s: float = 2.0
    # Pacing loop period (it also wakes when a call is answered or ends).
    tick_s: float = 0.5
    # Hopper: leads kept in memory ahead of need, refilled below the low mark.
    hopper_size: int = 100
    hopper_low: int = 25
