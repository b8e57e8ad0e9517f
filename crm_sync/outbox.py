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


@dataclass(frozen=True)
class Event:
    """One outbox row not written yet (see :func:`insert_many`)."""

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
    event = Event(event_type, payload, ordering_key, occurred_at, schema_version, event_id or uuid.uuid4())
    await conn.execute(insert_many(), *as_arrays([event]))
    return event.event_id


def insert_many(first_param: int = 1, after: str | None = None) -> str:
    """An INSERT of the events that :func:`as_arrays` turns into six array parameters,
    numbered from ``$first_param``: for one statement that also makes the change (a CTE).
    ``after``: the name of a CTE of that statement whose rows the events wait for (they are
    numbered once it has run) and which, if it returns no row, leaves them out; its
    columns must not be named like the events' (id, event_type, ...)."""
    p = [f"${first_param + i}" for i in range(6)]
    join = f" CROSS JOIN {after}" if after else ""
    return f"""INSERT INTO outbox_events (id, event_type, schema_version, ordering_key, payload, occurred_at)
        SELECT id, event_type, schema_version, ordering_key, payload, occurred_at
          FROM unnest({p[0]}::uuid[], {p[1]}::text[], {p[2]}::int[], {p[3]}::text[], {p[4]}::jsonb[],
                      {p[5]}::timestamptz[]) WITH ORDINALITY
               AS e(id, event_type, schema_version, ordering_key, payload, occurred_at, n){join}
         ORDER BY n"""


def as_arrays(events: Sequence[Event]) -> list[list[Any]]:
    """The parameters of :func:`insert_many`: one array per column."""
    now = datetime.now(timezone.utc)
    return [[e.event_id for e in events], [e.event_type for e in events], [e.schema_version for e in events],
            [e.ordering_key for e in events], [e.payload for e in events], [e.occurred_at or now for e in events]]
