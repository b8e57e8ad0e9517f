"""Types of the lifecycle feature: frozen dataclasses and enums, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    ACQUISITION = "acquisition"
    GROWTH = "growth"
    MATURITY = "maturity"
    DECLINE = "decline"
    CHURNED = "churned"


class Band(StrEnum):
    """Where a score puts a lead: hot leads are routed first, nurture gets no agent time."""

    HOT = "hot"
    NORMAL = "normal"
    NURTURE = "nurture"


class TaskState(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


# --- rules (config/lifecycle.toml) -------------------------------------------------

@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[Stage]
    target: Stage
    triggers: frozenset[str]   # "manual", "tag:<t>", "purchase", "risk_signal"
    why: str


@dataclass(frozen=True)
class IntentRules:
    digits: Mapping[str, str]
    dispositions: Mapping[str, str]
    decided_tags: frozenset[str]
    risk_tags: frozenset[str]
    referral_min_satisfaction: int
    referral_tag: str


@dataclass(frozen=True)
class ScoringRules:
    points: Mapping[str, int]
    decay_per_day: float = 0.0
    min: int = 0
    max: int = 100


@dataclass(frozen=True)
class Touch:
    after_hours: float
    within_hours: float


@dataclass(frozen=True)
class Cadence:
    name: str
    on: str
    kind: str
    reason: str
    touches: tuple[Touch, ...] = ()
    before_renewal_days: int | None = None
    repeat: bool = False
    until: str | None = None
    release_claim: bool = False


@dataclass(frozen=True)
class Rules:
    """Everything config/lifecycle.toml declares, validated."""

    initial_stage: Stage
    transitions: tuple[Transition, ...]
    intent: IntentRules
    scoring: ScoringRules
    cadences: tuple[Cadence, ...]


# --- records ------------------------------------------------------------------------

@dataclass(frozen=True)
class Contact:
    id: int
    external_id: str | None
    name: str | None
    phones: tuple[str, ...]
    country: str | None
    time_zones: tuple[str, ...]
    attributes: Mapping[str, Any]
    stage: Stage
    score: int
    tags: tuple[str, ...]
    owner_agent: str | None
    claimed_at: datetime | None
    consent: bool
    do_not_call: bool
    renewal_date: date | None
    created_at: datetime
    updated_at: datetime

    @property
    def phone(self) -> str | None:
        return self.phones[0] if self.phones else None

    def ref(self) -> dict[str, Any]:
        """The ``contact`` object every outbox event carries."""
        return {"id": self.id, "external_id": self.external_id, "phone": self.phone, "stage": str(self.stage)}


@dataclass(frozen=True)
class Snapshot:
    """A contact as read at one moment, and what a commit that did not lock it needs: when
    its score last decayed, its row version (the commit checks it), and new ids of rows
    that refer to each other (a call record and its IVR session), by table."""

    contact: Contact
    score_at: datetime | None
    version: int
    reserved: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CallOutcome:
    """What the IVR or dialer reports when a call ends (see LifecycleService.record_call)."""

    contact_id: int
    direction: Direction
    disposition: str                 # "answered", "no_answer", "busy", "interested", ...
    started_at: datetime
    ended_at: datetime
    campaign_id: str | None = None
    attempt_id: str | None = None
    intent: str | None = None        # an intent tag decided by the IVR, e.g. "high_intent"
    digits: str | None = None        # keypresses, e.g. "1"
    ivr_path: tuple[str, ...] = ()
    satisfaction: int | None = None  # survey score 1-5
    talk_seconds: int = 0
    ring_seconds: int = 0
    agent: str | None = None
    extra_tags: tuple[str, ...] = ()  # need points etc. recorded by the agent
    task_id: int | None = None       # the follow-up task this call worked, completed with it


@dataclass(frozen=True)
class TaskPlan:
    """A follow-up task a cadence wants created (not yet stored)."""

    kind: str
    not_before: datetime
    due_at: datetime
    reason: str
    rule: str


@dataclass(frozen=True)
class Task:
    id: int
    contact_id: int
    kind: str
    not_before: datetime
    due_at: datetime
    reason: str
    rule: str
    state: TaskState
    created_at: datetime
    closed_at: datetime | None = None

    def to_event(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "due_at": self.due_at.isoformat(),
                "reason": self.reason, "rule": self.rule}


@dataclass(frozen=True)
class NewContact:
    """A contact to create: phones already E.164."""

    phones: tuple[str, ...]
    external_id: str | None = None
    name: str | None = None
    country: str | None = None
    time_zones: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    consent: bool = True
    tags: tuple[str, ...] = ()

    def as_contact(self, contact_id: int, stage: Stage, do_not_call: bool, now: datetime) -> Contact:
        """The contact's row as it is once inserted (the columns not set here at their
        DEFAULTs, as in the contacts table)."""
        return Contact(id=contact_id, external_id=self.external_id, name=self.name, phones=tuple(self.phones),
                       country=self.country, time_zones=tuple(self.time_zones), attributes=dict(self.attributes),
                       stage=stage, score=0, tags=tuple(self.tags), owner_agent=None, claimed_at=None,
                       consent=self.consent, do_not_call=do_not_call, renewal_date=None, created_at=now,
                       updated_at=now)
