"""Inbound CRM events applied to the records, inside the caller's transaction.

Event ``type`` -> handler; ``data`` was validated against the OpenAPI schema already.
A contact is named by ``contact_id``, ``external_id`` or ``phone`` (first found wins).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from lifecycle import phones, repository as repo
from lifecycle.errors import NoSuchContact
from lifecycle.models import NewContact, TaskState
from lifecycle.openapi import aware_time, iso_date
from lifecycle.steps import add_dnc, create_contact, update_contact
from lifecycle.unit import ContactUnit, Context

Handler = Callable[[asyncpg.Connection, Context, dict[str, Any]], Awaitable[dict[str, Any]]]
CAUSE = "crm"


async def _find(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> int | None:
    if data.get("contact_id") is not None:
        return data["contact_id"] if await repo.get_contact(conn, data["contact_id"]) else None
    if data.get("external_id"):
        found = await repo.id_by_external_id(conn, data["external_id"])
        if found is not None:
            return found
    if data.get("phone"):
        return await repo.id_by_phone(conn, phones.normalise(data["phone"], ctx.settings.default_region, "data.phone"))
    return None


async def _unit(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> ContactUnit:
    contact_id = await _find(conn, ctx, data)
    if contact_id is None:
        raise NoSuchContact({k: data.get(k) for k in ("contact_id", "external_id") if data.get(k)})
    return await ContactUnit.load(conn, ctx, contact_id)


async def lead_upserted(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    region = ctx.settings.default_region
    numbers = tuple(phones.normalise(p, region, f"data.phones[{i}]") for i, p in enumerate(data.get("phones", [])))
    lookup = {"external_id": data.get("external_id"), "phone": numbers[0] if numbers else None}
    contact_id = await _find(conn, ctx, lookup)
    fields = {k: data[k] for k in ("external_id", "name", "attributes", "consent") if k in data}
    if contact_id is None:
        first = phones.parse(numbers[0], region) if numbers else None
        new = NewContact(numbers, data.get("external_id"), data.get("name"), first and first.country,
                         first.time_zones if first else (), data.get("attributes", {}), data.get("consent", True))
        unit = await create_contact(conn, ctx, new, CAUSE)
    else:
        unit = await ContactUnit.load(conn, ctx, contact_id)
        await update_contact(unit, fields, numbers or None)
    if data.get("tags"):
        await unit.tag(data["tags"], [], CAUSE)
    return {"contact_id": unit.contact.id}


async def stage_changed(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    unit = await _unit(conn, ctx, data)
    if unit.contact.stage != data["stage"]:  # a CRM echo of our own change is not an error
        await unit.move(data["stage"], data.get("reason", "changed in the CRM"), "crm:stage_changed")
    return {"contact_id": unit.contact.id, "stage": str(unit.contact.stage)}


async def purchase_recorded(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    unit = await _unit(conn, ctx, data)
    at = aware_time(data["purchased_at"], "data.purchased_at") if data.get("purchased_at") else ctx.now
    renewal = iso_date(data["renewal_date"], "data.renewal_date") if data.get("renewal_date") else None
    await repo.insert_purchase(conn, unit.contact.id, data.get("ref"), data.get("amount"), at, renewal)
    if renewal is not None:
        await unit.update(renewal_date=renewal)
        await unit.emit("contact.updated", changed=["renewal_date"])
    await unit.rescore(["purchase"], "purchase recorded")
    await unit.fire("purchase", "crm:purchase_recorded")
    await unit.schedule("purchase", renewal)
    return {"contact_id": unit.contact.id}


async def complaint_opened(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    unit = await _unit(conn, ctx, data)
    await repo.open_complaint(conn, unit.contact.id, data.get("ref"), ctx.now)
    await unit.schedule("complaint_opened")
    return {"contact_id": unit.contact.id}


async def complaint_resolved(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    unit = await _unit(conn, ctx, data)
    still_open = await repo.resolve_complaints(conn, unit.contact.id, data.get("ref"), ctx.now)
    if not still_open:
        ended = [c.name for c in ctx.rules.cadences if c.until == "complaint_resolved"]
        await unit.close(ended, TaskState.CANCELLED)
    return {"contact_id": unit.contact.id, "open_complaints": still_open}


async def risk_signal(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    unit = await _unit(conn, ctx, data)
    await unit.risk_signal(f"crm:risk_signal:{data.get('kind', 'unspecified')}")
    return {"contact_id": unit.contact.id, "stage": str(unit.contact.stage)}


async def dnc_added(conn: asyncpg.Connection, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    e164 = phones.normalise(data["phone"], ctx.settings.default_region, "data.phone")
    contact = await add_dnc(conn, ctx, e164, CAUSE)
    return {"contact_id": contact.id if contact else None}


HANDLERS: dict[str, Handler] = {
    "lead.upserted": lead_upserted,
    "contact.stage_changed": stage_changed,
    "purchase.recorded": purchase_recorded,
    "complaint.opened": complaint_opened,
    "complaint.resolved": complaint_resolved,
    "risk.signal": risk_signal,
    "dnc.added": dnc_added,
}


async def apply(conn: asyncpg.Connection, ctx: Context, webhook_id: str, event_type: str,
                data: dict[str, Any]) -> dict[str, Any] | None:
    """Apply one event once: None when this webhook-id was already processed."""
    if not await repo.remember_inbound(conn, webhook_id, event_type, ctx.now):
        return None
    return await HANDLERS[event_type](conn, ctx, data)
