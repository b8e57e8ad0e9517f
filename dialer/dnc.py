"""Do-not-call at the moment of dialing, from PostgreSQL (the list the CRM's ``dnc.added``
events, imports and the API all write through lifecycle). No cache: a number added is
never dialed after that moment by any worker, and if the list cannot be read the query
raises and nothing is dialed (fail closed).

Why a share lock on the contact row: lifecycle's ``add_dnc`` inserts the number and then
locks its contact ``FOR UPDATE`` in one transaction. Holding ``FOR SHARE`` on the contact
while we read the list and send the originate makes the two serial: either the addition
committed before our read (we see it and do not dial), or it commits after our originate
was sent (the number was added after that moment).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from lifecycle.errors import InvalidPhone
from lifecycle.service import LifecycleService


async def lock_contact(conn: asyncpg.Connection, contact_id: int) -> asyncpg.Record | None:
    """The contact's dialing facts, with the share lock held until the transaction ends."""
    return await conn.fetchrow("SELECT time_zones, do_not_call, consent FROM contacts WHERE id = $1 FOR SHARE",
                               contact_id)


async def listed(conn: asyncpg.Connection, phone: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM dnc_numbers WHERE phone = $1)", phone)


async def blocked_now(conn: asyncpg.Connection, contact_id: int, phone: str) -> bool:
    """True if the number may not be dialed now (listed, contact flagged or gone)."""
    contact = await lock_contact(conn, contact_id)
    return contact is None or contact["do_not_call"] or not contact["consent"] or await listed(conn, phone)


async def import_numbers(lifecycle: LifecycleService, phones: Iterable[Any], source: str) -> dict[str, Any]:
    """Add an imported list (a regulator's or a partner's) through lifecycle, one number at
    a time so each contact is flagged and the CRM hears of it. Returns counts and the
    positions of numbers that could not be read."""
    added, invalid = 0, []
    for i, raw in enumerate(phones):
        try:
            await lifecycle.add_dnc(raw, source)
            added += 1
        except InvalidPhone:
            invalid.append(i)
    return {"added": added, "invalid": invalid}
