"""SQL of the dialer. Functions take the connection of the caller's transaction.

Writes of the dialing loop are fenced: they run after :func:`hold_fence` confirmed, under
a share lock on the campaign row, that the caller's lease token is still the newest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg

from dialer.machine import LeadNext
from dialer.models import Campaign, CampaignSettings, CampaignState, Lead, LeadState, Mode


def to_campaign(r: asyncpg.Record) -> Campaign:
    stored = r["settings"]
    known = set(asdict(CampaignSettings()))
    settings = CampaignSettings(**{k: v for k, v in stored.items() if k in known})
    return Campaign(r["id"], r["name"], Mode(r["mode"]), CampaignState(r["state"]), settings, r["lease_token"],
                    r["lease_holder"], r["created_at"], r["updated_at"], r["started_at"], r["ended_at"])


def to_lead(r: asyncpg.Record) -> Lead:
    return Lead(r["id"], r["campaign_id"], r["contact_id"], r["phone"], r["source"], r["task_id"], r["priority"],
                LeadState(r["state"]), r["next_at"], r["attempts"], r["last_disposition"],
                r["final_disposition"], r["final_reason"], r["approved_by"])


async def namespace(conn: asyncpg.Connection) -> str:
    """This database's own name for the dialer's Redis keys."""
    return await conn.fetchval("SELECT current_database() || ':' || value FROM dialer_meta WHERE key = 'namespace'")


# -- campaigns --------------------------------------------------------------------------------

async def insert_campaign(conn: asyncpg.Connection, name: str, mode: Mode, settings: CampaignSettings,
                          now: datetime) -> Campaign:
    row = await conn.fetchrow(
        """INSERT INTO dialer_campaigns (name, mode, settings, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4) RETURNING *""", name, str(mode), settings.to_json(), now)
    return to_campaign(row)


async def get_campaign(conn: asyncpg.Connection, campaign_id: int, *, lock: bool = False) -> Campaign | None:
    row = await conn.fetchrow(f"SELECT * FROM dialer_campaigns WHERE id = $1{' FOR UPDATE' if lock else ''}",
                              campaign_id)
    return to_campaign(row) if row else None


async def list_campaigns(conn: asyncpg.Connection, state: str | None, limit: int, offset: int) -> list[Campaign]:
    rows = await conn.fetch("""SELECT * FROM dialer_campaigns WHERE ($1::text IS NULL OR state = $1)
                               ORDER BY id DESC LIMIT $2 OFFSET $3""", state, limit, offset)
    return [to_campaign(r) for r in rows]


async def update_campaign(conn: asyncpg.Connection, campaign_id: int, now: datetime, **fields: Any) -> Campaign:
    """Set columns by name (names come from code, never from input)."""
    values = [v.to_json() if isinstance(v, CampaignSettings) else str(v) if isinstance(v, CampaignState) else v
              for v in fields.values()]
    assigns = ", ".join(f"{n} = ${i + 3}" for i, n in enumerate(fields))
    row = await conn.fetchrow(f"UPDATE dialer_campaigns SET {assigns}, updated_at = $2 WHERE id = $1 RETURNING *",
                              campaign_id, now, *values)
    return to_campaign(row)


async def campaigns_to_lead(conn: asyncpg.Connection) -> list[int]:
    """Campaigns that need a runner: dialing or paused, or ended with calls still live."""
    rows = await conn.fetch("""SELECT id FROM dialer_campaigns c WHERE state IN ('running', 'paused')
                                  OR EXISTS (SELECT 1 FROM dialer_attempts a
                                             WHERE a.campaign_id = c.id AND a.ended_at IS NULL)
                               ORDER BY id""")
    return [r["id"] for r in rows]


async def raise_fence(conn: asyncpg.Connection, campaign_id: int, holder: str) -> int:
    """A new lease token, higher than any granted before (waits for fenced writes in flight)."""
    return await conn.fetchval("""UPDATE dialer_campaigns SET lease_token = lease_token + 1, lease_holder = $2
                                  WHERE id = $1 RETURNING lease_token""", campaign_id, holder)


async def hold_fence(conn: asyncpg.Connection, campaign_id: int, token: int) -> CampaignState | None:
    """The campaign's state if ``token`` is still the newest; the share lock held until the
    transaction ends keeps a new leader's :func:`raise_fence` waiting until then."""
    row = await conn.fetchrow("SELECT state, lease_token FROM dialer_campaigns WHERE id = $1 FOR SHARE",
                              campaign_id)
    if row is None or row["lease_token"] != token:
        return None
    return CampaignState(row["state"])


# -- leads ------------------------------------------------------------------------------------

async def insert_leads(conn: asyncpg.Connection, campaign_id: int, rows: Sequence[tuple[int, str, str, int | None, int]],
                       next_at: datetime, now: datetime) -> int:
    """(contact_id, phone, source, task_id, priority) rows; a contact already in the campaign is skipped."""
    result = await conn.fetch(
        """INSERT INTO dialer_leads (campaign_id, contact_id, phone, source, task_id, priority, next_at,
                                     created_at, updated_at)
           SELECT $1, r.contact_id, r.phone, r.source, r.task_id, r.priority, $2, $3, $3
           FROM unnest($4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::int[])
                AS r(contact_id, phone, source, task_id, priority)
           ON CONFLICT (campaign_id, contact_id) DO NOTHING RETURNING id""",
        campaign_id, next_at, now, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows], [r[4] for r in rows])
    return len(result)


async def schedule_callback(conn: asyncpg.Connection, campaign_id: int, contact_id: int, at: datetime,
                            priority: int, now: datetime) -> bool:
    """The contact's lead is due at ``at``, whatever it was; a finished lead opens again (the
    gate still applies its caps and rules when it is dialed). False if it is being dialed."""
    status = await conn.execute(
        """UPDATE dialer_leads SET next_at = $3, priority = $4, source = 'callback', state = 'ready',
                  final_disposition = NULL, final_reason = NULL, updated_at = $5
           WHERE campaign_id = $1 AND contact_id = $2 AND state IN ('ready', 'done')""",
        campaign_id, contact_id, at, priority, now)
    return status != "UPDATE 0"


async def hopper_batch(conn: asyncpg.Connection, campaign_id: int, now: datetime, limit: int,
                       exclude: Sequence[int], approved_only: bool) -> list[int]:
    """Lead ids due now, best first: callbacks and due tasks carry a higher priority."""
    rows = await conn.fetch(
        """SELECT id FROM dialer_leads
           WHERE campaign_id = $1 AND state = 'ready' AND next_at <= $2 AND NOT (id = ANY($4))
             AND (NOT $5 OR approved_by IS NOT NULL)
           ORDER BY priority DESC, next_at, id LIMIT $3""", campaign_id, now, limit, list(exclude), approved_only)
    return [r["id"] for r in rows]


async def lock_lead(conn: asyncpg.Connection, lead_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM dialer_leads WHERE id = $1 FOR UPDATE", lead_id)


async def get_lead(conn: asyncpg.Connection, campaign_id: int, lead_id: int) -> Lead | None:
    row = await conn.fetchrow("SELECT * FROM dialer_leads WHERE id = $1 AND campaign_id = $2", lead_id, campaign_id)
    return to_lead(row) if row else None


async def list_leads(conn: asyncpg.Connection, campaign_id: int, state: str | None, limit: int,
                     offset: int) -> list[Lead]:
    rows = await conn.fetch("""SELECT * FROM dialer_leads WHERE campaign_id = $1 AND ($2::text IS NULL OR state = $2)
                               ORDER BY id LIMIT $3 OFFSET $4""", campaign_id, state, limit, offset)
    return [to_lead(r) for r in rows]


async def count_attempt(conn: asyncpg.Connection, lead_id: int, day: Any, max_total: int, max_day: int,
                        now: datetime) -> bool:
    """Count an attempt against the caps, atomically: False when a cap is already reached
    (another worker got there first), so caps hold with any number of workers."""
    status = await conn.execute(
        """UPDATE dialer_leads SET state = 'dialing', attempts = attempts + 1,
                  attempts_day = CASE WHEN attempts_day_date = $2 THEN attempts_day + 1 ELSE 1 END,
                  attempts_day_date = $2, updated_at = $5
           WHERE id = $1 AND state = 'ready' AND attempts < $3
             AND (attempts_day_date IS DISTINCT FROM $2 OR attempts_day < $4)""",
        lead_id, day, max_total, max_day, now)
    return status.endswith(" 1")


async def move_lead(conn: asyncpg.Connection, lead_id: int, nxt: LeadNext, last: str | None, now: datetime) -> None:
    if nxt.done:
        await conn.execute("""UPDATE dialer_leads SET state = 'done', final_disposition = $2, final_reason = $3,
                                     last_disposition = COALESCE($4, last_disposition), updated_at = $5
                              WHERE id = $1""", lead_id, nxt.final_disposition, nxt.final_reason, last, now)
    else:
        await conn.execute("""UPDATE dialer_leads SET state = 'ready', next_at = $2, approved_by = NULL,
                                     last_disposition = COALESCE($3, last_disposition), updated_at = $4
                              WHERE id = $1""", lead_id, nxt.next_at, last, now)


async def uncount_attempt(conn: asyncpg.Connection, lead_id: int, now: datetime) -> None:
    """An attempt that was never sent gives its count back."""
    await conn.execute("""UPDATE dialer_leads SET state = 'ready', attempts = attempts - 1,
                                 attempts_day = greatest(attempts_day - 1, 0), updated_at = $2
                          WHERE id = $1 AND state = 'dialing'""", lead_id, now)


async def approve_lead(conn: asyncpg.Connection, campaign_id: int, lead_id: int, agent: str, now: datetime) -> bool:
    status = await conn.execute("""UPDATE dialer_leads SET approved_by = $3, next_at = least(next_at, $4),
                                          updated_at = $4
                                   WHERE id = $1 AND campaign_id = $2 AND state = 'ready'""",
                                lead_id, campaign_id, agent, now)
    return status.endswith(" 1")


async def lead_counts(conn: asyncpg.Connection, campaign_id: int) -> dict[str, int]:
    rows = await conn.fetch("SELECT state, count(*) AS n FROM dialer_leads WHERE campaign_id = $1 GROUP BY state",
                            campaign_id)
    counts = {s.value: 0 for s in LeadState}
    counts.update({r["state"]: r["n"] for r in rows})
    return counts


async def insert_refusal(conn: asyncpg.Connection, campaign_id: int, lead_id: int, phone: str, rule: str,
                         retry_at: datetime | None, record: dict[str, Any], now: datetime) -> None:
    await conn.execute("""INSERT INTO dialer_refusals (campaign_id, lead_id, phone, rule, retry_at, record, at)
                          VALUES ($1, $2, $3, $4, $5, $6, $7)""", campaign_id, lead_id, phone, rule, retry_at,
                       record, now)


# -- numbers ----------------------------------------------------------------------------------

async def number_in_call(conn: asyncpg.Connection, phone: str) -> bool:
    """Another campaign's call to this number is live (never ring a person twice at once)."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM dialer_attempts WHERE phone = $1 AND "
                               "ended_at IS NULL)", phone)


async def number_facts(conn: asyncpg.Connection, phone: str) -> tuple[datetime | None, datetime | None]:
    """(last abandoned at, last answering machine at); the row lock serialises two
    campaigns reaching for the same number."""
    row = await conn.fetchrow("SELECT last_abandoned_at, machine_at FROM dialer_numbers WHERE phone = $1 FOR UPDATE",
                              phone)
    return (row["last_abandoned_at"], row["machine_at"]) if row else (None, None)


async def note_number(conn: asyncpg.Connection, phone: str, now: datetime, *, abandoned: bool = False,
                      machine: bool = False) -> None:
    await conn.execute(
        """INSERT INTO dialer_numbers (phone, last_abandoned_at, machine_at, updated_at)
           VALUES ($1, CASE WHEN $3 THEN $2::timestamptz END, CASE WHEN $4 THEN $2::timestamptz END, $2)
           ON CONFLICT (phone) DO UPDATE SET
             last_abandoned_at = CASE WHEN $3 THEN $2 ELSE dialer_numbers.last_abandoned_at END,
             machine_at = CASE WHEN $4 THEN $2 ELSE dialer_numbers.machine_at END, updated_at = $2""",
        phone, now, abandoned, machine)


# -- attempts ---------------------------------------------------------------------------------

async def insert_attempt(conn: asyncpg.Connection, attempt_id: str, lead: asyncpg.Record, token: int, holder: str,
                         allowed_by: dict[str, Any], dial_string: str, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO dialer_attempts (id, campaign_id, lead_id, contact_id, phone, lease_token, holder, state,
                                        allowed_by, dial_string, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'dialing', $8, $9, $10)""",
        attempt_id, lead["campaign_id"], lead["id"], lead["contact_id"], lead["phone"], token, holder,
        allowed_by, dial_string, now)


async def mark_dialed(conn: asyncpg.Connection, attempt_id: str, now: datetime) -> None:
    await conn.execute("UPDATE dialer_attempts SET dialed_at = $2 WHERE id = $1", attempt_id, now)


async def set_attempt_state(conn: asyncpg.Connection, attempt_id: str, state: str, **fields: Any) -> None:
    assigns = "".join(f", {n} = ${i + 3}" for i, n in enumerate(fields))
    await conn.execute(f"UPDATE dialer_attempts SET state = $2{assigns} WHERE id = $1 AND ended_at IS NULL",
                       attempt_id, state, *fields.values())


async def finish_attempt(conn: asyncpg.Connection, attempt_id: str, fields: dict[str, Any]) -> asyncpg.Record | None:
    """End a live attempt once (the caller holds the fence); None if it was already ended."""
    assigns = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(fields))
    return await conn.fetchrow(
        f"UPDATE dialer_attempts SET state = 'ended', {assigns} WHERE id = $1 AND ended_at IS NULL RETURNING *",
        attempt_id, *fields.values())


async def live_attempts(conn: asyncpg.Connection, campaign_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM dialer_attempts WHERE campaign_id = $1 AND ended_at IS NULL ORDER BY "
                            "created_at", campaign_id)


async def list_attempts(conn: asyncpg.Connection, campaign_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("""SELECT id, lead_id, contact_id, state, disposition, allowed_by, agent, amd_result, digits,
                                      safe_harbour, call_id, holder, created_at, dialed_at, answered_at, connected_at,
                                      ended_at, ring_seconds, talk_seconds
                               FROM dialer_attempts WHERE campaign_id = $1 ORDER BY created_at DESC
                               LIMIT $2 OFFSET $3""", campaign_id, limit, offset)
    return [dict(r) for r in rows]


async def set_call_id(conn: asyncpg.Connection, attempt_id: str, call_id: int) -> None:
    await conn.execute("UPDATE dialer_attempts SET call_id = $2 WHERE id = $1", attempt_id, call_id)


async def recent_attempts(conn: asyncpg.Connection, campaign_id: int, since: datetime,
                          limit: int = 20000) -> list[asyncpg.Record]:
    """Ended attempts since ``since``, oldest first (seeds the pacing statistics)."""
    return await conn.fetch(
        """SELECT disposition, ring_seconds, talk_seconds, ended_at FROM dialer_attempts
           WHERE campaign_id = $1 AND ended_at >= $2 AND disposition <> 'refused'
           ORDER BY ended_at LIMIT $3""", campaign_id, since, limit)
