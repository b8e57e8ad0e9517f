"""SQL of the lifecycle records. Functions take the connection of the caller's transaction."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from lifecycle.models import CallOutcome, Contact, Snapshot, Stage

_PHONES = """COALESCE((SELECT array_agg(p.phone ORDER BY p.position, p.phone)
                      FROM contact_phones p WHERE p.contact_id = c.id), '{}') AS phones"""
_CONTACT = f"SELECT c.*, {_PHONES} FROM contacts c"
# Columns the API may change directly (stage, score, tags, claims go through the service).
UPDATABLE = ("external_id", "name", "country", "time_zones", "attributes", "consent", "renewal_date")


def to_contact(r: asyncpg.Record) -> Contact:
    return Contact(
        id=r["id"], external_id=r["external_id"], name=r["name"], phones=tuple(r["phones"]),
        country=r["country"], time_zones=tuple(r["time_zones"]), attributes=r["attributes"],
        stage=Stage(r["stage"]), score=r["score"], tags=tuple(r["tags"]), owner_agent=r["owner_agent"],
        claimed_at=r["claimed_at"], consent=r["consent"], do_not_call=r["do_not_call"],
        renewal_date=r["renewal_date"], created_at=r["created_at"], updated_at=r["updated_at"])


async def get_contact(conn: asyncpg.Connection, contact_id: int) -> Contact | None:
    row = await conn.fetchrow(f"{_CONTACT} WHERE c.id = $1", contact_id)
    return to_contact(row) if row else None


async def contacts_by_id(conn: asyncpg.Connection, contact_ids: Sequence[int]) -> dict[int, Contact]:
    rows = await conn.fetch(f"{_CONTACT} WHERE c.id = ANY($1)", list(contact_ids))
    return {r["id"]: to_contact(r) for r in rows}


_TABLE = re.compile(r"[a-z_]+")


def _next_id(table: str) -> str:
    if not _TABLE.fullmatch(table):   # a name from code; checked all the same
        raise ValueError(f"not a table name: {table!r}")
    return f"nextval(pg_get_serial_sequence('{table}', 'id'))"


def _reserving(reserve: Sequence[str]) -> str:
    """Select-list items taking a new id of each table (read back by :func:`_reserved`)."""
    return "".join(f", {_next_id(t)} AS id_{t}" for t in reserve)


def _reserved(row: asyncpg.Record, reserve: Sequence[str]) -> dict[str, int]:
    return {t: row[f"id_{t}"] for t in reserve}


async def read_contact(conn: asyncpg.Connection, contact_id: int, reserve: Sequence[str] = (), *,
                       lock: bool = True) -> Snapshot | None:
    """The contact, row-locked unless ``lock`` is false (the lock serialises concurrent
    changes to it: a call outcome and a CRM event), with when its score last decayed, its
    version, and a new id of each table in ``reserve`` (for rows written at commit that
    other rows refer to); one round trip."""
    return await _read(conn, "c.id = $1", contact_id, reserve, lock)


async def read_contact_by_phone(conn: asyncpg.Connection, e164: str, reserve: Sequence[str] = ()
                                ) -> Snapshot | None:
    """:func:`read_contact`, unlocked, of the contact owning this number."""
    return await _read(conn, "c.id = (SELECT contact_id FROM contact_phones WHERE phone = $1)", e164, reserve,
                       False)


async def _read(conn: asyncpg.Connection, where: str, arg: Any, reserve: Sequence[str], lock: bool
                ) -> Snapshot | None:
    row = await conn.fetchrow(f"SELECT c.*, {_PHONES}{_reserving(reserve)} FROM contacts c WHERE {where}"
                              f"{' FOR UPDATE OF c' if lock else ''}", arg)
    if row is None:
        return None
    return Snapshot(to_contact(row), row["score_at"], row["version"], _reserved(row, reserve))


async def next_id(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval(f"SELECT {_next_id(table)}")


async def id_by_phone(conn: asyncpg.Connection, e164: str) -> int | None:
    return await conn.fetchval("SELECT contact_id FROM contact_phones WHERE phone = $1", e164)


async def id_by_external_id(conn: asyncpg.Connection, external_id: str) -> int | None:
    return await conn.fetchval("SELECT id FROM contacts WHERE external_id = $1", external_id)


async def owners_of(conn: asyncpg.Connection, phones: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT phone, contact_id FROM contact_phones WHERE phone = ANY($1)", list(phones))
    return {r["phone"]: r["contact_id"] for r in rows}


@dataclass(frozen=True)
class Prepared:
    """What creating a contact needs to know first (see :func:`prepare_contact`)."""

    id: int                      # the new contact's, from its sequence
    owners: dict[str, int]       # its numbers that belong to a contact already, and whose
    external_owner: int | None   # the contact holding its external id, if any
    dnc: bool                    # one of its numbers is on the do-not-call list
    reserved: dict[str, int]     # a new id of each table asked for


async def prepare_contact(conn: asyncpg.Connection, phones: Sequence[str], external_id: str | None,
                          reserve: Sequence[str] = ()) -> Prepared:
    """A new contact's id and what deciding on it needs, in one round trip (see Prepared)."""
    row = await conn.fetchrow(
        f"""SELECT {_next_id("contacts")} AS id,
                  (SELECT jsonb_object_agg(phone, contact_id) FROM contact_phones WHERE phone = ANY($1::text[]))
                      AS owners,
                  (SELECT id FROM contacts WHERE external_id = $2) AS external_owner,
                  EXISTS (SELECT 1 FROM dnc_numbers WHERE phone = ANY($1::text[])) AS dnc{_reserving(reserve)}""",
        list(phones), external_id)
    return Prepared(row["id"], row["owners"] or {}, row["external_owner"], row["dnc"], _reserved(row, reserve))


NEW_VERSION = 0   # contacts.version of a row never updated (its DEFAULT, migration 0600)
_INSERT_CONTACT = ("INSERT INTO contacts (id, external_id, name, country, time_zones, attributes, stage, tags,"
                   " consent, do_not_call, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$11)")
_INSERT_PHONES = ("INSERT INTO contact_phones (phone, contact_id, position)"
                  " SELECT phone, $2, n - 1 FROM unnest($1::text[]) WITH ORDINALITY AS t(phone, n)")


def contact_inserts(c: Contact) -> list[tuple[str, tuple[Any, ...]]]:
    """The INSERTs of a new contact's row and numbers, to hold back (lifecycle.unit.Pending)."""
    return [(_INSERT_CONTACT, (c.id, c.external_id, c.name, c.country, list(c.time_zones), dict(c.attributes),
                               str(c.stage), list(c.tags), c.consent, c.do_not_call, c.created_at)),
            (_INSERT_PHONES, (list(c.phones), c.id))]


async def set_phones(conn: asyncpg.Connection, contact_id: int, phones: Sequence[str]) -> None:
    await conn.execute("DELETE FROM contact_phones WHERE contact_id = $1", contact_id)
    await conn.execute(_INSERT_PHONES, list(phones), contact_id)


async def delete_contact(conn: asyncpg.Connection, contact_id: int) -> None:
    await conn.execute("DELETE FROM contacts WHERE id = $1", contact_id)


INSERT_HISTORY = ("INSERT INTO stage_history (contact_id, from_stage, to_stage, reason, cause, at) "
                  "VALUES ($1,$2,$3,$4,$5,$6)")


def history_row(contact_id: int, from_stage: Stage | None, to_stage: Stage, reason: str, cause: str,
                now: datetime) -> tuple[Any, ...]:
    return contact_id, from_stage and str(from_stage), str(to_stage), reason, cause, now


async def history(conn: asyncpg.Connection, contact_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT from_stage, to_stage, reason, cause, at FROM stage_history "
                            "WHERE contact_id = $1 ORDER BY at, id", contact_id)
    return [dict(r) for r in rows]


INSERT_CALL = """INSERT INTO calls (id, contact_id, stage, direction, campaign_id, attempt_id, disposition, intent,
                                   digits, ivr_path, satisfaction, talk_seconds, ring_seconds, agent, started_at,
                                   ended_at)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)"""


def call_row(call_id: int, o: CallOutcome, stage: Stage) -> tuple[Any, ...]:
    """The parameters of INSERT_CALL: a call record with its (reserved) id."""
    return (call_id, o.contact_id, str(stage), str(o.direction), o.campaign_id, o.attempt_id, o.disposition,
            o.intent, o.digits, list(o.ivr_path), o.satisfaction, o.talk_seconds, o.ring_seconds, o.agent,
            o.started_at, o.ended_at)


# A claim made before $1 and not followed up since: the lead goes back to the shared pool.
_STALE_CLAIM = """owner_agent IS NOT NULL AND claimed_at < $1
                  AND (last_touch_at IS NULL OR last_touch_at < claimed_at)"""


async def stale_claims(conn: asyncpg.Connection, older_than: datetime, limit: int = 500) -> list[int]:
    """Claimed contacts not touched since a claim made before ``older_than``."""
    return [r["id"] for r in await conn.fetch(
        f"""SELECT id FROM contacts WHERE {_STALE_CLAIM}
            ORDER BY claimed_at LIMIT $2 FOR UPDATE SKIP LOCKED""", older_than, limit)]


async def claim_is_stale(conn: asyncpg.Connection, contact_id: int, older_than: datetime) -> bool:
    """:func:`stale_claims`' test for one contact."""
    return await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $2 AND {_STALE_CLAIM})",
                               older_than, contact_id)


async def search(conn: asyncpg.Connection, *, phone: str | None, stage: str | None, tag: str | None,
                 min_score: int | None, max_score: int | None, limit: int, offset: int) -> list[Contact]:
    rows = await conn.fetch(
        f"""{_CONTACT}
            WHERE ($1::text IS NULL OR c.id = (SELECT contact_id FROM contact_phones WHERE phone = $1))
              AND ($2::text IS NULL OR c.stage = $2) AND ($3::text IS NULL OR c.tags @> ARRAY[$3])
              AND ($4::int IS NULL OR c.score >= $4) AND ($5::int IS NULL OR c.score <= $5)
            ORDER BY c.score DESC, c.id LIMIT $6 OFFSET $7""",
        phone, stage, tag, min_score, max_score, limit, offset)
    return [to_contact(r) for r in rows]


async def is_dnc(conn: asyncpg.Connection, e164: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM dnc_numbers WHERE phone = $1)", e164)


async def add_dnc(conn: asyncpg.Connection, e164: str, source: str, now: datetime) -> bool:
    """True when the number is new on the list."""
    status = await conn.execute("INSERT INTO dnc_numbers (phone, source, added_at) VALUES ($1, $2, $3) "
                                "ON CONFLICT (phone) DO NOTHING", e164, source, now)
    return status.endswith(" 1")


async def insert_purchase(conn: asyncpg.Connection, contact_id: int, ref: str | None, amount: Any,
                          at: datetime, renewal: Any) -> None:
    await conn.execute("INSERT INTO purchases (contact_id, external_ref, amount, purchased_at, renewal_date) "
                       "VALUES ($1, $2, $3, $4, $5)", contact_id, ref, amount, at, renewal)


async def open_complaint(conn: asyncpg.Connection, contact_id: int, ref: str | None, now: datetime) -> None:
    await conn.execute("INSERT INTO complaints (contact_id, external_ref, opened_at) VALUES ($1, $2, $3)",
                       contact_id, ref, now)


async def resolve_complaints(conn: asyncpg.Connection, contact_id: int, ref: str | None, now: datetime) -> int:
    """Resolve the named complaint (or all open ones); return how many remain open."""
    await conn.execute("UPDATE complaints SET resolved_at = $3 WHERE contact_id = $1 AND resolved_at IS NULL "
                       "AND ($2::text IS NULL OR external_ref = $2)", contact_id, ref, now)
    return await open_complaints(conn, contact_id)


async def open_complaints(conn: asyncpg.Connection, contact_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM complaints WHERE contact_id = $1 AND resolved_at IS NULL",
                               contact_id)


async def remember_inbound(conn: asyncpg.Connection, webhook_id: str, event_type: str, now: datetime) -> bool:
    """False when this webhook-id was processed before (the CRM retried)."""
    status = await conn.execute("INSERT INTO crm_inbound_events (webhook_id, event_type, received_at) "
                                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", webhook_id, event_type, now)
    return status.endswith(" 1")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
