"""Types of the webhook side: endpoints, claimed deliveries and attempt results."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callcycle.logs import mask_phone


def webhook_id(event_id: uuid.UUID) -> str:
    """The ``webhook-id`` of every attempt and replay of an event: receivers dedupe on it."""
    return f"msg_{event_id.hex}"


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    description: str
    event_types: tuple[str, ...]
    state: str
    disabled_reason: str | None
    allow_full_phone: bool
    rotating: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Endpoint:
        return cls(id=row["id"], url=row["url"], description=row["description"],
                   event_types=tuple(row["event_types"]), state=row["state"],
                   disabled_reason=row["disabled_reason"], allow_full_phone=row["allow_full_phone"],
                   rotating=row["previous_secret"] is not None,
                   created_at=row["created_at"], updated_at=row["updated_at"])

    def to_json(self) -> dict[str, Any]:
        """What the API shows: never the secret."""
        return {"id": self.id, "url": self.url, "description": self.description,
                "event_types": list(self.event_types), "state": self.state,
                "disabled_reason": self.disabled_reason, "allow_full_phone": self.allow_full_phone,
                "secret_rotating": self.rotating, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if isinstance(out.get("phone"), str):
        out["phone"] = mask_phone(out["phone"])
    contact = out.get("contact")
    if isinstance(contact, dict) and isinstance(contact.get("phone"), str):
        out["contact"] = {**contact, "phone": mask_phone(contact["phone"])}
    return out


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery row a worker holds under ``lease``, with what it needs to send it."""

    id: int
    lease: uuid.UUID
    attempts: int  # attempts made before this one
    event_id: uuid.UUID
    event_type: str
    version: int
    occurred_at: datetime
    data: dict[str, Any]
    endpoint_id: int
    url: str
    secrets: tuple[str, ...] = field(repr=False)
    allow_full_phone: bool = False

    @property
    def msg_id(self) -> str:
        return webhook_id(self.event_id)

    def body(self) -> bytes:
        """The envelope, phones masked unless the endpoint may see them in full."""
        data = self.data if self.allow_full_phone else _masked(self.data)
        envelope = {"id": str(self.event_id), "type": self.event_type, "version": self.version,
                    "timestamp": self.occurred_at.isoformat(), "data": data}
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class AttemptResult:
    """What happened to one POST; the worker records these in batches."""

    delivery: ClaimedDelivery
    started_at: datetime
    latency_ms: int
    status: int | None
    error: str | None
    response_body: str | None
    retry_after: float | None = None
