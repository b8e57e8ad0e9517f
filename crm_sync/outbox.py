"""Writing to the transactional outbox. Call :func:`enqueue` on the connection of the
transaction that makes the change, so the event exists if and only if the change does."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg

NOTIFY_CHANNEL = "callcycle_outbox"  # notified by migration 0202's trigger


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
    await conn.execute(
        """INSERT INTO outbox_events (id, event_type, schema_version, ordering_key, payload, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        event_id, event_type, schema_version, ordering_key, payload, occurred_at or datetime.now(timezone.utc))
    return event_id
