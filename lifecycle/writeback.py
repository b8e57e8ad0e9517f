"""The one statement that sends a transaction's held-back writes (lifecycle.unit.Pending):
contact updates, INSERTs and outbox rows, whatever the transaction changed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from crm_sync import outbox
from lifecycle.errors import ContactChanged

_PARAM = re.compile(r"\$(\d+)")


async def write_back(conn: asyncpg.Connection, updates: dict[int, tuple[dict[str, Any], datetime | None]],
                     inserts: Sequence[tuple[str, Sequence[Any]]], events: Sequence[outbox.Event],
                     expect: tuple[int, int] | None = None) -> None:
    """Contact columns by name (``updated_at`` set too unless None), INSERTs (SQL with its
    own ``$1..$n``, and their values) and outbox rows, in ONE statement: one round trip,
    whatever a transaction changed. Its parts see the same snapshot and none reads
    another's rows; foreign keys between them are checked at the statement's end. Column
    names and SQL come from code (UPDATABLE, the service, the repositories), never from input.

    ``expect`` (a contact id, the version it was read at) is for a statement sent on its own,
    outside a transaction, by a writer that did not lock the contact: the statement updates
    the contact only at that version, and if it did not, it raises ContactChanged and writes
    nothing at all. Its outbox rows are numbered after it holds the contact's row lock, so
    they follow those of any transaction that held it before."""
    ctes: list[str] = []
    args: list[Any] = []
    for n, (sql, values) in enumerate(inserts):
        base = len(args)
        ctes.append(f"i{n} AS ({_PARAM.sub(lambda m: f'${int(m[1]) + base}', sql)})")
        args.extend(values)
    if expect is not None:
        updates = {expect[0]: ({}, None), **updates}
    for contact_id, (fields, now) in updates.items():
        if now is not None:
            fields = {**fields, "updated_at": now}
        args.append(contact_id)
        first = len(args)
        assigns = ", ".join(f"{n} = ${first + 1 + i}" for i, n in enumerate(fields)) or "version = version"
        args.extend(fields.values())
        if expect is not None and contact_id == expect[0]:
            args.append(expect[1])
            ctes.append(f"guard AS (UPDATE contacts SET {assigns} WHERE id = ${first} AND version = ${len(args)}"
                        f" RETURNING true AS held)")
        else:
            ctes.append(f"c{first} AS (UPDATE contacts SET {assigns} WHERE id = ${first})")
    if expect is not None:
        if events:
            ctes.append(f"o AS ({outbox.insert_many(len(args) + 1, after='guard')})")
            args.extend(outbox.as_arrays(events))
        # The same text for every contact: asyncpg prepares a statement once per text.
        main = "SELECT callcycle_expect((SELECT count(*) FROM guard) = 1, 'the contact changed')"
        try:
            await conn.execute(f"WITH {', '.join(ctes)} {main}", *args)
        except asyncpg.SerializationError:
            raise ContactChanged(expect[0]) from None
        return
    if events:
        main = outbox.insert_many(len(args) + 1)
        args.extend(outbox.as_arrays(events))
    elif ctes:
        main = "SELECT 1"
    else:
        return
    await conn.execute(f"WITH {', '.join(ctes)} {main}" if ctes else main, *args)
