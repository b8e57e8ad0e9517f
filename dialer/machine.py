"""State tables of campaigns, attempts and leads, and the pure decisions made from them.
No I/O: the runner and the service feed signals and persist what these return."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from dialer.models import AttemptState as A, CampaignSettings, CampaignState as C, Disposition as D

# -- campaigns ------------------------------------------------------------------------------

# action -> (states it is allowed from, resulting state, the CRM event it emits)
CAMPAIGN_ACTIONS: dict[str, tuple[frozenset[C], C, str]] = {
    "start": (frozenset({C.DRAFT}), C.RUNNING, "campaign.started"),
    "pause": (frozenset({C.RUNNING}), C.PAUSED, "campaign.paused"),
    "resume": (frozenset({C.PAUSED}), C.RUNNING, "campaign.resumed"),
    "stop": (frozenset({C.DRAFT, C.RUNNING, C.PAUSED}), C.STOPPED, "campaign.finished"),
    "finish": (frozenset({C.RUNNING}), C.FINISHED, "campaign.finished"),
}
DIALING_STATES = frozenset({C.RUNNING})              # new originates only here
LEADING_STATES = frozenset({C.RUNNING, C.PAUSED})    # a runner holds the lease (in-flight calls)


def campaign_action(state: C, action: str) -> tuple[C, str] | None:
    """(next state, event type), or None when ``action`` is not allowed from ``state``."""
    allowed, to, event = CAMPAIGN_ACTIONS[action]
    return (to, event) if state in allowed else None


# -- attempts -------------------------------------------------------------------------------

class Signal(StrEnum):
    RING = "ring"
    ANSWER = "answer"
    MACHINE = "machine"      # AMD verdict MACHINE
    QUEUE = "queue"          # a person joined the agent queue
    CONNECT = "connect"      # an agent (or the IVR flow) took the call
    ABANDON = "abandon"      # no agent within 2 s: safe-harbour message
    END = "end"


ATTEMPT_TRANSITIONS: dict[tuple[A, Signal], A] = {
    (A.DIALING, Signal.RING): A.RINGING,
    (A.DIALING, Signal.ANSWER): A.ANSWERED,
    (A.RINGING, Signal.ANSWER): A.ANSWERED,
    (A.ANSWERED, Signal.MACHINE): A.MACHINE,
    (A.ANSWERED, Signal.QUEUE): A.WAITING,
    (A.ANSWERED, Signal.CONNECT): A.CONNECTED,
    (A.ANSWERED, Signal.ABANDON): A.ABANDONED,
    (A.WAITING, Signal.CONNECT): A.CONNECTED,
    (A.WAITING, Signal.ABANDON): A.ABANDONED,
    **{(s, Signal.END): A.ENDED for s in (A.DIALING, A.RINGING, A.ANSWERED, A.WAITING, A.CONNECTED,
                                         A.ABANDONED, A.MACHINE)},
}
# For the pacer a call needs an agent from the moment it joins the queue: the 2 s run from
# the end of the greeting (FTC), i.e. after AMD. A call still under AMD may be a machine,
# so it counts as a line in flight, and its "ring time" for the model includes AMD.
IN_FLIGHT = frozenset({A.DIALING, A.RINGING, A.ANSWERED})
NEEDS_AGENT = frozenset({A.WAITING})

# Q.850 hangup causes of an unanswered call: they decide when no OriginateResponse told us
# the reason, or when it only said "hangup" (the far end ended it before an answer).
_CAUSES = {17: D.BUSY, 21: D.BUSY, 18: D.NO_ANSWER, 19: D.NO_ANSWER, 34: D.CONGESTION, 38: D.CONGESTION,
           41: D.CONGESTION, 42: D.CONGESTION, 1: D.FAILED, 3: D.FAILED, 28: D.FAILED}
LOST = frozenset({"vanished_during_ami_outage", "unseen"})   # ended while nobody listened
_ORIGINATE = {"busy": D.BUSY, "no_answer": D.NO_ANSWER, "congestion": D.CONGESTION, "failed": D.FAILED,
              "hangup": D.NO_ANSWER}
_DIALED = {k: _ORIGINATE[k] for k in ("busy", "no_answer", "congestion")}   # an agent-first customer's dial


@dataclass
class CallTrace:
    """What the PBX events said about one attempt (filled by dialer.observer)."""

    attempt_id: str
    first_seen: float
    state: A = A.DIALING
    before_end: A = A.DIALING            # the state the call ended from
    linkedid: str | None = None
    channels: set[str] = field(default_factory=set)
    originate_reason: str | None = None
    answered_at: float | None = None
    amd: str | None = None
    queued_at: float | None = None
    connected_at: float | None = None
    agent: str | None = None
    safe_harbour: str | None = None
    machine_message: bool = False
    digits: list[str] = field(default_factory=list)
    causes: list[int] = field(default_factory=list)
    resynced: bool = False               # live at a resync: some of its events may have been missed
    agent_first: bool = False            # the agent's phone was dialed first (a guaranteed agent)
    ended_at: float | None = None
    end_reason: str | None = None
    refused_signals: int = 0

    def signal(self, sig: Signal, at: float) -> bool:
        """Apply ``sig`` through the table; an unexpected one is counted and ignored."""
        nxt = ATTEMPT_TRANSITIONS.get((self.state, sig))
        if nxt is None:
            self.refused_signals += 1
            return False
        if nxt is A.ENDED:
            self.before_end, self.ended_at = self.state, at
        if sig is Signal.ANSWER:
            self.answered_at = at
        elif sig is Signal.CONNECT and self.connected_at is None:
            self.connected_at = at
        elif sig is Signal.QUEUE:
            self.queued_at = at
        self.state = nxt
        return True

    @property
    def ended(self) -> bool:
        return self.state is A.ENDED


def disposition(t: CallTrace, patience_s: float = 2.0) -> D:
    """The final disposition of an ended attempt."""
    last = t.before_end
    if last is A.MACHINE:
        return D.MACHINE
    if last is A.ABANDONED or t.safe_harbour:
        return D.ABANDONED
    if last is A.CONNECTED:
        return D.ANSWERED
    if last is A.WAITING:
        # The person hung up while the queue looked for an agent: an abandon only if the
        # 2 s had run out (the dialplan plays the message at exactly that moment).
        waited = (t.ended_at or 0) - (t.queued_at or 0)
        return D.ABANDONED if waited >= patience_s else D.ANSWERED
    if last is A.ANSWERED:
        return D.UNKNOWN if t.end_reason in LOST else D.ANSWERED
    if t.agent_first:   # the customer never answered: their dial's status says why, else it never went out
        return _DIALED.get(t.originate_reason or "", D.FAILED)
    if t.originate_reason in _ORIGINATE and t.originate_reason != "hangup":
        return _ORIGINATE[t.originate_reason]
    for cause in t.causes:   # "hangup" only says the far end ended it: the cause says why
        if cause in _CAUSES:
            return _CAUSES[cause]
    if t.originate_reason == "hangup":
        return D.NO_ANSWER
    return D.UNKNOWN if t.end_reason in LOST else D.FAILED


def attempt_fields(t: CallTrace, d: D, started: datetime, now: datetime) -> dict[str, Any]:
    """The columns an ended attempt's row gets (trace times are epoch seconds; ``started``:
    when it was dialed, or reserved if it never was)."""
    at = lambda ts: datetime.fromtimestamp(ts, timezone.utc) if ts else None  # noqa: E731
    ended = at(t.ended_at) or now
    answered, connected = at(t.answered_at), at(t.connected_at)
    ring = (answered or ended) - started
    talk = (ended - connected) if connected else timedelta(0)
    return {"disposition": str(d), "ended_at": ended, "answered_at": answered, "connected_at": connected,
            "linkedid": t.linkedid, "agent": t.agent, "amd_result": t.amd, "digits": "".join(t.digits) or None,
            "safe_harbour": t.safe_harbour, "ring_seconds": max(0, round(ring.total_seconds())),
            "talk_seconds": max(0, round(talk.total_seconds())),
            "detail": {"originate": t.originate_reason, "causes": t.causes[:8], "end": t.end_reason,
                       "channels": sorted(t.channels)}}


# -- leads ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeadNext:
    """Where a lead goes after an attempt or a refusal."""

    done: bool
    next_at: datetime | None = None
    final_disposition: str | None = None
    final_reason: str | None = None


ABANDON_REST = timedelta(hours=72)  # Ofcom: no re-call of an abandoned number for 72 h


def after_attempt(d: D, attempts: int, s: CampaignSettings, now: datetime) -> LeadNext:
    """A lead after an attempt ended with ``d`` (``attempts`` made so far, this one included)."""
    if d is D.ANSWERED:
        return LeadNext(True, final_disposition=str(d), final_reason="reached")
    if d is D.REFUSED:
        return LeadNext(True, final_disposition=str(d), final_reason="dnc")
    if attempts >= s.max_attempts:
        return LeadNext(True, final_disposition=str(d), final_reason="max_attempts")
    delay = timedelta(seconds=s.retry_delays.get(str(d), 900.0))
    if d is D.ABANDONED:
        delay = max(delay, ABANDON_REST)
    return _until_campaign_end(now + delay, str(d), s)


def after_refusal(rule: str, retry_at: datetime | None, s: CampaignSettings) -> LeadNext:
    """A lead the compliance gate refused: later (``retry_at``), or never."""
    if retry_at is None:
        return LeadNext(True, final_disposition="refused", final_reason=rule)
    return _until_campaign_end(retry_at, "refused", s, rule)


def _until_campaign_end(at: datetime, disposition_: str, s: CampaignSettings, reason: str | None = None) -> LeadNext:
    ends = s.ends()
    if ends is not None and at >= ends:
        return LeadNext(True, final_disposition=disposition_, final_reason=reason or "campaign_ends")
    return LeadNext(False, next_at=at)
