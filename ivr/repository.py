"""SQL of the IVR records. Functions take the connection of the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifecycle.unit import Pending


@dataclass(frozen=True)
class SessionRow:
    call_id: int | None
    contact_id: int | None
    server: str
    linkedid: str
    channel: str
    flow: str
    flow_version: str
    direction: str
    outcome: str
    last_node: str
    intent: str | None
    digits: str
    satisfaction: int | None
    transfer_to: str | None
    priority: int | None
    started_at: datetime
    ended_at: datetime
    error: str | None = None


_INSERT_SESSION = """INSERT INTO ivr_sessions (id, call_id, contact_id, server, linkedid, channel, flow, flow_version,
                                               direction, outcome, last_node, intent, digits, satisfaction,
                                               transfer_to, priority, error, started_at, ended_at)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)"""
_INSERT_STEPS = """INSERT INTO ivr_steps (session_id, seq, kind, node, digits, at)
                   SELECT $1, x.ord - 1, x.kind, x.node, x.digits, x.at
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[])
                          WITH ORDINALITY AS x(kind, node, digits, at, ord)"""


def hold_session(pending: Pending, session_id: int, r: SessionRow,
                 steps: Sequence[tuple[str, str, str, datetime]]) -> None:
    """The session (its id reserved) and its steps ((kind, node, digits, at) in order),
    written with the transaction's other held-back writes."""
    kinds, nodes, digits, ats = (list(col) for col in zip(*steps, strict=True)) if steps else ([], [], [], [])
    pending.insert(_INSERT_SESSION, (
        session_id, r.call_id, r.contact_id, r.server, r.linkedid, r.channel, r.flow, r.flow_version, r.direction,
        r.outcome, r.last_node, r.intent, r.digits, r.satisfaction, r.transfer_to, r.priority, r.error,
        r.started_at, r.ended_at))
    pending.insert(_INSERT_STEPS, (session_id, kinds, nodes, digits, ats))


async def recorded(conn: Any, server: str, linkedid: str, channel: str, started_at: datetime) -> Any:
    """The session already recorded under this name (id, call_id, priority, refused nodes), or None."""
    return await conn.fetchrow(
        """SELECT s.id, s.call_id, s.priority,
                  array(SELECT node FROM ivr_steps WHERE session_id = s.id AND kind = 'refused' ORDER BY seq)
                      AS refused
             FROM ivr_sessions s
            WHERE s.server = $1 AND s.linkedid = $2 AND s.channel = $3 AND s.started_at = $4""",
        server, linkedid, channel, started_at)


async def add_error(conn: Any, session_id: int, error: str) -> None:
    await conn.execute("UPDATE ivr_sessions SET error = concat_ws('; ', error, $2::text) WHERE id = $1",
                       session_id, error)


async def sessions(conn: Any, *, linkedid: str | None = None, contact_id: int | None = None,
                   flow: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT * FROM ivr_sessions
           WHERE ($1::text IS NULL OR linkedid = $1) AND ($2::bigint IS NULL OR contact_id = $2)
             AND ($3::text IS NULL OR flow = $3)
           ORDER BY id DESC LIMIT $4""", linkedid, contact_id, flow, limit)
    return [dict(r) for r in rows]


async def steps(conn: Any, session_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT seq, kind, node, digits, at FROM ivr_steps WHERE session_id = $1 ORDER BY seq",
                            session_id)
    return [dict(r) for r in rows]
