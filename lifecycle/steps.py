"""Steps shared by the service and inbound CRM events; each runs inside the caller's
transaction and writes its outbox rows on the same connection (creating a contact may also
run outside one, see create_contact)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from crm_sync import outbox
from lifecycle import cadence, repository as repo, scoring, task_repository as task_repo
from lifecycle.errors import DuplicateContact
from lifecycle.models import CallOutcome, Contact, NewContact, TaskState
from lifecycle.unit import ContactUnit, Context

async def create_contact(conn: asyncpg.Connection, ctx: Context, new: NewContact, source: str,
                         reserve: Sequence[str] = ()) -> ContactUnit:
    """A new contact in the initial stage: one round trip decides (its id, numbers taken,
    do-not-call), and its row, numbers, history line and ``contact.created`` event are held
    in ``ctx.pending``. Inside a transaction they are sent at once, so the transaction's own
    statements (a task referring to the contact) find the row; outside one, the caller sends
    them as one statement (``ctx.pending.send_alone``), which creates all or nothing."""
    prep = await repo.prepare_contact(conn, new.phones, new.external_id, reserve)
    for i, p in enumerate(new.phones):
        if p in prep.owners:
            raise DuplicateContact(f"phones[{i}]", f"number already belongs to contact {prep.owners[p]}")
    if new.external_id and prep.external_owner is not None:
        raise DuplicateContact("external_id", "a contact with this external_id exists")
    contact = new.as_contact(prep.id, ctx.rules.initial_stage, prep.dnc, ctx.now)
    for sql, values in repo.contact_inserts(contact):
        ctx.pending.insert(sql, values)
    ctx.pending.insert(repo.INSERT_HISTORY,
                       repo.history_row(contact.id, None, ctx.rules.initial_stage, "created", source, ctx.now))
    unit = ContactUnit(conn, ctx, contact, None, prep.reserved)
    await unit.emit("contact.created", source=source)
    if conn.is_in_transaction():
        await ctx.pending.flush(conn, ctx.now)
    return unit


async def update_contact(unit: ContactUnit, fields: dict[str, Any], new_phones: tuple[str, ...] | None) -> None:
    before = unit.contact
    changed = [k for k, v in fields.items() if k in repo.UPDATABLE and _differs(getattr(before, k), v)]
    if changed:
        await unit.update(**{k: fields[k] for k in changed})
    if new_phones is not None and tuple(new_phones) != before.phones:
        owners = await repo.owners_of(unit.conn, new_phones)
        for i, p in enumerate(new_phones):
            if owners.get(p, before.id) != before.id:
                raise DuplicateContact(f"phones[{i}]", f"number already belongs to contact {owners[p]}")
        await repo.set_phones(unit.conn, before.id, new_phones)
        await unit.update(phones=tuple(new_phones))
        changed.append("phones")
    if changed:
        await unit.emit("contact.updated", changed=changed)


def _differs(old: Any, new: Any) -> bool:
    return (list(old) if isinstance(old, tuple) else old) != (list(new) if isinstance(new, tuple) else new)


async def record_call(unit: ContactUnit, o: CallOutcome) -> int:
    rules = unit.ctx.rules
    call_id = await unit.new_id("calls")
    unit.ctx.pending.insert(repo.INSERT_CALL, repo.call_row(call_id, o, unit.contact.stage))
    cause = f"call:{call_id}"
    unit.set({"last_touch_at": o.ended_at})
    await unit.emit("call.completed", call=_call_event(call_id, o))
    if o.task_id is not None:
        task = await task_repo.get_task(unit.conn, o.task_id, lock=True)
        if task is not None and task.contact_id == unit.contact.id and task.state == TaskState.OPEN:
            await unit.complete(task)
    added = await unit.tag(scoring.call_tags(o, rules.intent), [], cause, rescore=False)
    await unit.rescore(scoring.call_signals(o, added), f"call {call_id}: {o.disposition}")
    if o.satisfaction is not None and o.satisfaction >= rules.intent.referral_min_satisfaction:
        await unit.schedule("satisfied")
    if cadence.is_undecided(unit.contact.stage, unit.contact.tags, rules.intent):
        # One round of touches per lead: after it, the lead is nurtured or handed over.
        if not any([await task_repo.has_tasks(unit.conn, unit.contact.id, c.name)
                    for c in rules.cadences if c.on == "undecided"]):
            await unit.schedule("undecided")
    return call_id


def _call_event(call_id: int, o: CallOutcome) -> dict[str, Any]:
    return {"id": call_id, "direction": str(o.direction), "campaign_id": o.campaign_id,
            "attempt_id": o.attempt_id, "disposition": o.disposition, "intent": o.intent, "digits": o.digits,
            "ivr_path": list(o.ivr_path), "satisfaction": o.satisfaction, "talk_seconds": o.talk_seconds,
            "ring_seconds": o.ring_seconds, "agent": o.agent, "started_at": o.started_at.isoformat(),
            "ended_at": o.ended_at.isoformat()}


async def add_dnc(conn: asyncpg.Connection, ctx: Context, e164: str, source: str) -> Contact | None:
    new = await repo.add_dnc(conn, e164, source, ctx.now)
    contact_id = await repo.id_by_phone(conn, e164)
    if contact_id is None:
        if new:
            await outbox.enqueue(conn, "contact.dnc_added", {"contact": None, "phone": e164},
                                 ordering_key=None, occurred_at=ctx.now)  # no number in keys
        return None
    unit = await ContactUnit.load(conn, ctx, contact_id)
    if new or not unit.contact.do_not_call:
        await unit.update(do_not_call=True)
        await unit.emit("contact.dnc_added", phone=e164)
    return unit.contact
