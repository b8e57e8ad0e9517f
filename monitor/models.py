"""Types of the live view: plain JSON-able entities keyed by kind and id, no I/O.

Every entity the supervisor console shows is a dict of one of these kinds:

- ``call``     id ``<server>:<linkedid>``  (see :func:`monitor.state.call_view`)
- ``agent``    id ``<server>:<interface>`` (queue member, aggregated over its queues)
- ``queue``    id ``<server>:<queue>``
- ``campaign`` id the campaign id (published by the dialer through the registry)
- ``kpis``     id ``stages`` (lifecycle stage KPIs)
- ``audit``    id the audit row id (append-only; the last :data:`AUDIT_KEEP` are kept)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

KINDS = ("call", "agent", "queue", "campaign", "kpis", "audit")
# Kinds an instance announces as its own and that vanish with it (see monitor.board).
OWNED_KINDS = frozenset({"call", "agent", "queue", "campaign"})
# Fields that change every second by themselves: refreshed in every message, but a change
# of only these is not a change (no delta for a ticking clock).
VOLATILE = frozenset({"duration", "longest_wait"})
AUDIT_KEEP = 100

Entity = dict[str, Any]


class Audience(StrEnum):
    """What a client may see: supervisors and admins everything; agents the board with
    phone numbers masked and without campaigns controls or the audit trail."""

    FULL = "full"
    AGENT = "agent"


def audience_of(role: str) -> Audience:
    return Audience.FULL if role in ("admin", "supervisor") else Audience.AGENT


class AgentState(StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    IN_CALL = "in_call"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


@dataclass(frozen=True, slots=True)
class Delta:
    """One change of one entity. ``data`` None: the entity is gone. ``at``: when the AMI
    event that caused it reached our router listener (epoch s), for latency figures."""

    kind: str
    id: str
    data: Entity | None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: str
    subject: str
    role: str
    action: str
    target_kind: str
    target_id: str
    detail: dict[str, Any]
    outcome: str
    error: str | None
    instance: str

    def to_json(self) -> Entity:
        return {"id": self.id, "at": self.at, "subject": self.subject, "role": self.role,
                "action": self.action, "target_kind": self.target_kind, "target_id": self.target_id,
                "detail": self.detail, "outcome": self.outcome, "error": self.error,
                "instance": self.instance}


def same(a: Entity | None, b: Entity | None) -> bool:
    """Equal apart from the volatile fields."""
    if a is None or b is None:
        return a is b
    if a.keys() != b.keys():
        return False
    return all(a[k] == b[k] for k in a if k not in VOLATILE)


def latest_only(pending: list[tuple[int, Delta]]) -> list[tuple[int, Delta]]:
    """One delta per entity: its latest, in the order of the latest changes. A console needs
    an entity's current state, and during a burst of AMI events a call changes several
    times per flush (its early states would be bytes that every console parses for
    nothing). The kept delta's ``at`` is the earliest of those it replaces, so a latency
    measured from it counts the change that waited longest."""
    if len(pending) < 2:
        return pending
    latest: dict[tuple[str, str], tuple[int, Delta]] = {}
    first_at: dict[tuple[str, str], float | None] = {}
    for seq, d in pending:
        key = (d.kind, d.id)
        latest.pop(key, None)        # re-insert: dict order becomes the order of latest changes
        latest[key] = (seq, d)
        if first_at.get(key) is None:
            first_at[key] = d.at
    if len(latest) == len(pending):
        return pending
    return [(seq, d if d.at == first_at[k] else dataclasses.replace(d, at=first_at[k]))
            for k, (seq, d) in latest.items()]
