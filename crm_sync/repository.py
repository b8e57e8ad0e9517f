"""SQL of the webhook side. Functions take a connection (or pool) so callers choose the
transaction; nothing here decides a state, it only stores what the service decided."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from crm_sync.models import ClaimedDelivery

Conn = asyncpg.Connection | asyncpg.Pool
_UNFINISHED = "('pending', 'in_flight', 'retry_wait')"

# One statement claims a batch. A row is claimable when it is due (for in_flight rows:
# its lease ran out), its endpoint is active, and no earlier delivery of the same ordering
# key to the same endpoint is unfinished -- that probe is one descent of the partial index
# webhook_deliveries_unfinished_key. SKIP LOCKED lets any number of workers claim at once
# without waiting on each other or claiming a row twice.
CLAIM_SQL = f"""
WITH picked AS (
    SELECT d.id
      FROM webhook_deliveries d
      JOIN webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.state IN {_UNFINISHED}
       AND d.due_at <= $1
       AND e.state = 'active'
       AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key
              AND p.id < d.id AND p.state IN {_UNFINISHED})
     ORDER BY d.due_at, d.id
     LIMIT $2
       FOR UPDATE OF d SKIP LOCKED),
claimed AS (
    -- = ANY(ARRAY(...)): a primary-key probe per picked row, never a scan of the table.
    UPDATE webhook_deliveries d
       SET state = 'in_flight', due_at = $3, lease = gen_random_uuid()
     WHERE d.id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING d.id, d.lease, d.attempts, d.event_id, d.endpoint_id)
SELECT c.id, c.lease, c.attempts, ev.id AS event_id, ev.event_type, ev.schema_version,
       ev.occurred_at, ev.payload, e.id AS endpoint_id, e.url, e.secret, e.allow_full_phone,
       CASE WHEN e.previous_secret_until > $1 THEN e.previous_secret END AS previous_secret
  FROM claimed c
  JOIN outbox_events ev ON ev.id = c.event_id
  JOIN webhook_endpoints e ON e.id = c.endpoint_id
"""


async def claim(pool: asyncpg.Pool, now: datetime, limit: int, lease_until: datetime) -> list[ClaimedDelivery]:
    async with pool.acquire() as conn, conn.transaction():
        # A claim lost in a crash is harmless: its rows simply stay claimable.
        await conn.execute("SET LOCAL synchronous_commit TO off")
        rows = await conn.fetch(CLAIM_SQL, now, limit, lease_until)
    claimed = [ClaimedDelivery(
        id=r["id"], lease=r["lease"], attempts=r["attempts"], event_id=r["event_id"],
        event_type=r["event_type"], version=r["schema_version"], occurred_at=r["occurred_at"],
        data=r["payload"], endpoint_id=r["endpoint_id"], url=r["url"],
        secrets=tuple(s for s in (r["secret"], r["previous_secret"]) if s),
        allow_full_phone=r["allow_full_phone"]) for r in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


async def record_attempts(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """rows: (delivery_id, attempt, started_at, latency_ms, status, outcome, error, response_body)."""
    cols = list(zip(*rows)) if rows else [[]] * 8
    await conn.execute("""
        INSERT INTO webhook_attempts (delivery_id, attempt, started_at, latency_ms, status, outcome,
                                      error, response_body)
        SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::int[], $5::int[],
                             $6::text[], $7::text[], $8::text[])""", *cols)


async def finish(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> set[int]:
    """rows: (id, lease, state, due_at, status, error). Only the current lease holder's result
    counts (a worker whose lease ran out must not overwrite its successor). Returns the ids
    updated."""
    if not rows:
        return set()
    cols = list(zip(*rows))
    done = await conn.fetch(f"""
        UPDATE webhook_deliveries d
           SET state = r.state, due_at = r.due_at, attempts = d.attempts + 1,
               last_status = r.status, last_error = r.error, lease = NULL,
               finished_at = CASE WHEN r.state IN ('delivered', 'dead') THEN now() END
          FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::timestamptz[], $5::int[], $6::text[])
               AS r(id, lease, state, due_at, status, error)
         WHERE d.id = r.id AND d.lease = r.lease AND d.state = 'in_flight'
        RETURNING d.id""", *cols)
    return {r["id"] for r in done}


async def release(conn: Conn, ids: Sequence[int], leases: Sequence[uuid.UUID], now: datetime) -> None:
    """Hand claimed rows back at once (shutdown) instead of waiting for their lease."""
    await conn.execute("""
        UPDATE webhook_deliveries d SET state = CASE WHEN d.attempts = 0 THEN 'pending' ELSE 'retry_wait' END,
               due_at = $3, lease = NULL
          FROM unnest($1::bigint[], $2::uuid[]) AS r(id, lease)
         WHERE d.id = r.id AND d.lease = r.lease AND d.state = 'in_flight'""", list(ids), list(leases), now)


async def add_dead_letters(conn: asyncpg.Connection, ids: Sequence[int]) -> list[asyncpg.Record]:
    return await conn.fetch("""
        INSERT INTO webhook_dead_letters (delivery_id, event_id, endpoint_id, attempts, last_status, last_error)
        SELECT d.id, d.event_id, d.endpoint_id, d.attempts, d.last_status, d.last_error
          FROM webhook_deliveries d WHERE d.id = ANY($1::bigint[])
        ON CONFLICT DO NOTHING
        RETURNING delivery_id, event_id, endpoint_id, attempts, last_status,
                  (SELECT event_type FROM outbox_events WHERE id = event_id) AS event_type""", list(ids))


async def disable_endpoints(conn: Conn, ids: Sequence[int], reason: str) -> None:
    await conn.execute("""
        UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = $2, updated_at = now()
         WHERE id = ANY($1::bigint[]) AND state = 'active'""", list(ids), reason)


# --- endpoints -------------------------------------------------------------------------

_ENDPOINT_COLS = ("id, url, description, event_types, state, disabled_reason, allow_full_phone, "
                  "previous_secret, created_at, updated_at")


async def insert_endpoint(conn: Conn, *, url: str, description: str, event_types: Sequence[str],
                          allow_full_phone: bool, secret: str) -> asyncpg.Record:
    return await conn.fetchrow(f"""
        INSERT INTO webhook_endpoints (url, description, event_types, allow_full_phone, secret)
        VALUES ($1, $2, $3, $4, $5) RETURNING {_ENDPOINT_COLS}""",
        url, description, list(event_types), allow_full_phone, secret)


async def get_endpoint(conn: Conn, endpoint_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1{lock}", endpoint_id)


async def list_endpoints(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_ENDPOINT_COLS} FROM webhook_endpoints ORDER BY id")


async def update_endpoint(conn: Conn, endpoint_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    # Column names come from the service's whitelist, never from the request.
    sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(changes, start=2))
    return await conn.fetchrow(f"""
        UPDATE webhook_endpoints SET {sets}, updated_at = now() WHERE id = $1
        RETURNING {_ENDPOINT_COLS}""", endpoint_id, *changes.values())


async def rotate_secret(conn: Conn, endpoint_id: int, secret: str, old_until: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(f"""
        UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $3,
               secret = $2, updated_at = now()
         WHERE id = $1 RETURNING {_ENDPOINT_COLS}""", endpoint_id, secret, old_until)


async def delete_endpoint(conn: Conn, endpoint_id: int) -> bool:
    return await conn.execute("DELETE FROM webhook_endpoints WHERE id = $1", endpoint_id) == "DELETE 1"


# --- replay and the delivery log --------------------------------------------------------

_REPLAY_SQL = """
    INSERT INTO webhook_deliveries (event_id, endpoint_id, ordering_key, replayed)
    SELECT ev.id, e.id, ev.ordering_key, true
      FROM outbox_events ev
      JOIN webhook_endpoints e
        ON e.state = 'active'
       AND (cardinality(e.event_types) = 0 OR ev.event_type = ANY (e.event_types))
       AND ($1::bigint IS NULL OR e.id = $1)
     WHERE {where}
     ORDER BY ev.seq, e.id"""


async def replay_event(conn: Conn, event_id: uuid.UUID, endpoint_id: int | None) -> int:
    status = await conn.execute(_REPLAY_SQL.format(where="ev.id = $2"), endpoint_id, event_id)
    return int(status.split()[-1])


async def replay_range(conn: Conn, start: datetime, end: datetime, endpoint_id: int | None) -> int:
    status = await conn.execute(_REPLAY_SQL.format(where="ev.occurred_at >= $2 AND ev.occurred_at < $3"),
                                endpoint_id, start, end)
    return int(status.split()[-1])


async def event_exists(conn: Conn, event_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM outbox_events WHERE id = $1", event_id))


async def list_deliveries(conn: Conn, *, endpoint_id: int | None, event_id: uuid.UUID | None,
                          state: str | None, before: int | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("""
        SELECT d.id, d.event_id, ev.event_type, d.endpoint_id, d.state, d.attempts, d.due_at,
               d.last_status, d.last_error, d.replayed, d.created_at, d.finished_at
          FROM webhook_deliveries d JOIN outbox_events ev ON ev.id = d.event_id
         WHERE ($1::bigint IS NULL OR d.endpoint_id = $1) AND ($2::uuid IS NULL OR d.event_id = $2)
           AND ($3::text IS NULL OR d.state = $3) AND ($4::bigint IS NULL OR d.id < $4)
         ORDER BY d.id DESC LIMIT $5""", endpoint_id, event_id, state, before, limit)


async def list_attempts(conn: Conn, delivery_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("""
        SELECT attempt, started_at, latency_ms, status, outcome, error, response_body
          FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id""", delivery_id)


async def delivery_exists(conn: Conn, delivery_id: int) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM webhook_deliveries WHERE id = $1", delivery_id))


async def list_dead_letters(conn: Conn, *, endpoint_id: int | None, before: int | None,
                            limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("""
        SELECT dl.delivery_id, dl.event_id, ev.event_type, dl.endpoint_id, dl.attempts,
               dl.last_status, dl.last_error, dl.created_at
          FROM webhook_dead_letters dl JOIN outbox_events ev ON ev.id = dl.event_id
         WHERE ($1::bigint IS NULL OR dl.endpoint_id = $1) AND ($2::bigint IS NULL OR dl.delivery_id < $2)
         ORDER BY dl.delivery_id DESC LIMIT $3""", endpoint_id, before, limit)
