"""Types of the dialer: campaign settings (validated from JSON), campaigns, leads, attempts.
No I/O."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from dialer.config import DialerSettings
from dialer.errors import InvalidCampaign

REGULATORY_MIN_RING_S = 15.0   # FCC 47 CFR 64.1200(a)(6): ring at least 15 s / 4 rings
MAX_ABANDON_TARGET = 0.03      # FCC 30 days, Ofcom 24 h: abandoned <= 3% of live answers
MAX_RETRY_DELAY_S = 90 * 86400.0
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")            # queue, flow
_SOUND = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\Z")  # sound file names
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}\Z")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z")


class Mode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"
    POWER = "power"
    AGENTLESS = "agentless"


class CampaignState(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"


class LeadState(StrEnum):
    READY = "ready"
    DIALING = "dialing"
    DONE = "done"


class AttemptState(StrEnum):
    """Live states of an attempt; it ends in ENDED with a :class:`Disposition`."""

    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"      # picked up; AMD may still be listening
    WAITING = "waiting"        # a person, in the queue, no agent yet (the 2 s run)
    CONNECTED = "connected"    # talking to an agent (or in the campaign's IVR flow)
    ABANDONED = "abandoned"    # no agent within 2 s: hearing the safe-harbour message
    MACHINE = "machine"        # AMD said answering machine
    ENDED = "ended"


class Disposition(StrEnum):
    ANSWERED = "answered"      # a person, connected to an agent or flow
    ABANDONED = "abandoned"    # a person no agent took within 2 s
    MACHINE = "machine"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    FAILED = "failed"
    UNKNOWN = "unknown"        # the outcome was lost (AMI outage, leader died unseen)
    REFUSED = "refused"        # never dialed: refused at the last instant (do-not-call)


@dataclass(frozen=True)
class CampaignSettings:
    """What a campaign may set. Built with :meth:`parse`, which refuses anything the
    server's ``[dialer]`` rules do not allow."""

    queue: str = "sales"
    flow: str | None = None                  # agentless: the IVR flow answered calls enter
    caller_id: str | None = None             # E.164 shown to the callee
    local_presence: dict[str, str] = field(default_factory=dict)  # callee prefix -> caller id
    window_start: str | None = None          # narrower than the server's window, if set
    window_end: str | None = None
    starts_at: str | None = None             # ISO 8601 schedule; leads not callable by
    ends_at: str | None = None               # ends_at are closed with their reason
    max_attempts: int = 3
    max_attempts_per_day: int = 2
    retry_delays: dict[str, float] = field(default_factory=lambda: {
        "busy": 600.0, "no_answer": 3600.0, "congestion": 300.0, "machine": 14400.0,
        "failed": 900.0, "unknown": 3600.0, "abandoned": 72 * 3600.0})
    amd: bool = False
    on_machine: str = "hangup"               # hangup | message
    machine_message: str | None = None
    safe_harbour_message: str | None = None
    abandon_target: float = MAX_ABANDON_TARGET
    max_lines: int = 10
    no_answer_timeout_s: float = 20.0
    pacing: dict[str, Any] = field(default_factory=dict)   # parameters of make_policy
    # The pacing model's starting estimates, until the campaign's own calls replace them.
    expected_answer_rate: float = 0.3
    expected_handle_s: float = 130.0

    @classmethod
    def parse(cls, data: dict[str, Any], server: DialerSettings, mode: Mode) -> CampaignSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidCampaign(sorted(unknown)[0], "unknown setting")
        merged = {**asdict(cls()), **data}
        if isinstance(data.get("retry_delays"), dict):   # named delays replace the defaults one by one
            merged["retry_delays"] = {**cls().retry_delays, **data["retry_delays"]}
        if "max_attempts_per_day" not in data and isinstance(merged["max_attempts"], int):
            merged["max_attempts_per_day"] = min(merged["max_attempts_per_day"], max(merged["max_attempts"], 1))
        s = cls(**merged)
        s._check(server, mode)
        return s

    def _check(self, server: DialerSettings, mode: Mode) -> None:  # noqa: C901 - one rule per line
        _need(isinstance(self.queue, str) and _NAME.match(self.queue), "queue", "letters, digits, _ or -")
        _need(mode != Mode.AGENTLESS or self.flow is not None, "flow", "an agentless campaign names its IVR flow")
        _need(self.flow is None or (isinstance(self.flow, str) and _NAME.match(self.flow)), "flow",
              "letters, digits, _ or -")
        _need(self.caller_id is None or _E164.match(str(self.caller_id)), "caller_id", "an E.164 number")
        _need(isinstance(self.local_presence, dict) and all(
            re.match(r"^\+[0-9]{1,8}\Z", str(k)) and _E164.match(str(v)) for k, v in self.local_presence.items()),
            "local_presence", "{E.164 prefix: E.164 caller id}")
        for name in ("window_start", "window_end"):
            value = getattr(self, name)
            _need(value is None or (isinstance(value, str) and _HHMM.match(value)), name, "HH:MM")
        start, end = self.window(server)
        inside = f"inside the server's calling window {server.window_start}-{server.window_end}"
        _need(start >= parse_hhmm(server.window_start), "window_start", inside)
        _need(end <= parse_hhmm(server.window_end), "window_end", inside)
        _need(start < end, "window_start", "before window_end")
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            if value is not None:
                _need(isinstance(value, str) and _aware(value), name, "an ISO 8601 time with offset")
        _need(_int(self.max_attempts) and 1 <= self.max_attempts <= 50, "max_attempts", "1-50")
        _need(_int(self.max_attempts_per_day) and 1 <= self.max_attempts_per_day <= self.max_attempts,
              "max_attempts_per_day", "1..max_attempts")
        _need(isinstance(self.retry_delays, dict) and all(
            k in Disposition.__members__.values() and _number(v) and 0 <= v <= MAX_RETRY_DELAY_S
            for k, v in self.retry_delays.items()), "retry_delays",
            f"{{disposition: seconds, 0 to {MAX_RETRY_DELAY_S:.0f} ({MAX_RETRY_DELAY_S / 86400:.0f} days)}}")
        _need(isinstance(self.amd, bool), "amd", "true or false")
        _need(self.on_machine in ("hangup", "message"), "on_machine", "hangup or message")
        _need(self.on_machine != "message" or self.machine_message, "machine_message",
              "a sound name (needed with on_machine=message)")
        for name in ("machine_message", "safe_harbour_message"):
            value = getattr(self, name)
            _need(value is None or (isinstance(value, str) and _SOUND.match(value)), name, "a sound name")
        _need(isinstance(self.abandon_target, (int, float)) and 0 < self.abandon_target <= MAX_ABANDON_TARGET,
              "abandon_target", f"above 0, at most {MAX_ABANDON_TARGET}")
        _need(_int(self.max_lines) and 1 <= self.max_lines <= server.max_lines, "max_lines",
              f"1-{server.max_lines}")
        _need(isinstance(self.no_answer_timeout_s, (int, float)) and
              REGULATORY_MIN_RING_S <= self.no_answer_timeout_s <= 120, "no_answer_timeout_s",
              f"{REGULATORY_MIN_RING_S:g}-120 s (ring at least 15 s)")
        _need(isinstance(self.pacing, dict), "pacing", "an object of pacing parameters")
        _need(isinstance(self.expected_answer_rate, (int, float)) and 0.01 <= self.expected_answer_rate <= 1,
              "expected_answer_rate", "0.01-1")
        _need(isinstance(self.expected_handle_s, (int, float)) and 1 <= self.expected_handle_s <= 7200,
              "expected_handle_s", "1-7200 s")

    def window(self, server: DialerSettings) -> tuple[time, time]:
        return (parse_hhmm(self.window_start or server.window_start),
                parse_hhmm(self.window_end or server.window_end))

    def ring_timeout(self, server: DialerSettings) -> float:
        return server.ring_timeout_override_s or self.no_answer_timeout_s

    def ends(self) -> datetime | None:
        return datetime.fromisoformat(self.ends_at) if self.ends_at else None

    def begins(self) -> datetime | None:
        return datetime.fromisoformat(self.starts_at) if self.starts_at else None

    def caller_id_for(self, phone: str) -> str | None:
        """Local presence: the caller id of the longest matching prefix, else the default."""
        best = max((p for p in self.local_presence if phone.startswith(p)), key=len, default=None)
        return self.local_presence[best] if best else self.caller_id

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    mode: Mode
    state: CampaignState
    settings: CampaignSettings
    lease_token: int
    lease_holder: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    def ref(self) -> dict[str, Any]:
        """The ``campaign`` object of campaign.* events."""
        return {"id": self.id, "name": self.name, "mode": str(self.mode)}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mode": str(self.mode), "state": str(self.state),
                "settings": self.settings.to_json(), "lease_holder": self.lease_holder,
                "created_at": self.created_at, "updated_at": self.updated_at,
                "started_at": self.started_at, "ended_at": self.ended_at}


@dataclass(frozen=True)
class Lead:
    id: int
    campaign_id: int
    contact_id: int
    phone: str
    source: str
    task_id: int | None
    priority: int
    state: LeadState
    next_at: datetime
    attempts: int
    last_disposition: str | None
    final_disposition: str | None
    final_reason: str | None
    approved_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "contact_id": self.contact_id, "source": self.source, "task_id": self.task_id,
                "priority": self.priority, "state": str(self.state), "next_at": self.next_at,
                "attempts": self.attempts, "last_disposition": self.last_disposition,
                "final_disposition": self.final_disposition, "final_reason": self.final_reason,
                "approved_by": self.approved_by}


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _aware(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _need(ok: Any, field_name: str, problem: str) -> None:
    if not ok:
        raise InvalidCampaign(field_name, problem)
