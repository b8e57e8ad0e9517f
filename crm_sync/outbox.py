"""Writing to the transactional outbox. Call :func:`enqueue` on the connection of the
transaction that makes the change, so the event exists if and only if the change does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg

NOTIFY_CHANNEL = "callcycle_outbox"  # notified by migration 0202's trigger
_INSERT = """INSERT INTO outbox_events (id, event_type, schema_version, ordering_key, payload, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6)"""


@dataclass(frozen=True)
class Event:
    """One outbox row not written yet (see :func:`enqueue_many`)."""

    event_type: str
    payload: dict[str, Any]
    ordering_key: str | None = None
    occurred_at: datetime | None = None
    schema_version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


async def enqueue(
    conn: asyncpg.Connection,
    event_type: str,
    payload: dict[str, Any],
    *,
    ordering_key: str | None = None,
    occurred_at: datetime | None = None,
    schema_version: int = 1,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Insert one event; the outbox's trigger NOTIFYs the delivery workers at commit."""
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.enqueue must run inside the transaction that makes the change")
    event_id = event_id or uuid.uuid4()
    await conn.execute(_INSERT, event_id, event_type, schema_version, ordering_key, payload,
                       occurred_at or datetime.now(timezone.utc))
    return event_id


async def enqueue_many(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Insert several events in one round trip (asyncpg pipelines ``executemany``), in order:
    their sequence numbers, and so their delivery order per ordering key, follow the list."""
    if not events:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.enqueue_many must run inside the transaction that makes the change")
    now = datetime.now(timezone.utc)
    await conn.executemany(_INSERT, [(e.event_id, e.event_type, e.schema_version, e.ordering_key, e.payload,
                                      e.occurred_at or now) for e in events])
