"""Thin HTTP handlers of the lifecycle API: parse, validate against the OpenAPI schemas,
call the service, render JSON. Roles per endpoint are declared here and in the document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import principal, public, requires
from callcycle.errors import NotFound, decimal_id, json_response, read_json
from lifecycle import importer, phones
from lifecycle.errors import NoSuchContact, NoSuchTask, ValidationFailed
from lifecycle.models import Contact, NewContact, Task
from lifecycle.openapi import aware_time, document, validate
from lifecycle.service import LifecycleService


def _svc(request: web.Request) -> LifecycleService:
    return request.app[keys.LIFECYCLE]


def contact_json(c: Contact) -> dict[str, Any]:
    return {"id": c.id, "external_id": c.external_id, "name": c.name, "phones": list(c.phones),
            "country": c.country, "time_zones": list(c.time_zones), "attributes": c.attributes,
            "stage": str(c.stage), "score": c.score, "tags": list(c.tags), "owner_agent": c.owner_agent,
            "claimed_at": c.claimed_at, "consent": c.consent, "do_not_call": c.do_not_call,
            "renewal_date": c.renewal_date, "created_at": c.created_at, "updated_at": c.updated_at}


def task_json(t: Task) -> dict[str, Any]:
    return {"id": t.id, "contact_id": t.contact_id, "kind": t.kind, "not_before": t.not_before,
            "due_at": t.due_at, "reason": t.reason, "rule": t.rule, "state": str(t.state),
            "created_at": t.created_at, "closed_at": t.closed_at}


def _id(request: web.Request, missing: type[NotFound] = NoSuchContact) -> int:
    raw = request.match_info["id"]
    value = decimal_id(raw)
    if value is None:
        raise missing(raw)
    return value


_INT32 = 2**31 - 1


def _int(request: web.Request, name: str, default: int | None = None, minimum: int = -_INT32) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if raw.isascii() else None
    except ValueError:
        value = None
    if value is None or not minimum <= value <= _INT32:
        raise ValidationFailed(name, f"must be an integer from {minimum} to {_INT32}")
    return value


def _time(request: web.Request, name: str) -> datetime:
    return aware_time(request.query.get(name), name)


def _phones(raw: list[str], region: str) -> tuple[phones.Phone, ...]:
    return tuple(phones.parse(p, region, f"phones[{i}]") for i, p in enumerate(raw))


@public
async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document; it describes routes and schemas, nothing about the data."""
    return json_response(document())


@requires("supervisor", "agent")
async def search_contacts(request: web.Request) -> web.Response:
    limit = min(_int(request, "limit", 50, minimum=1) or 50, 500)
    found = await _svc(request).search(
        phone=request.query.get("phone"), stage=request.query.get("stage"), tag=request.query.get("tag"),
        min_score=_int(request, "min_score"), max_score=_int(request, "max_score"),
        limit=limit, offset=_int(request, "offset", 0, minimum=0) or 0)
    return json_response({"contacts": [contact_json(c) for c in found]})


@requires("supervisor", "crm")
async def create_contact(request: web.Request) -> web.Response:
    body = validate(await read_json(request), "ContactCreate")
    svc = _svc(request)
    parsed = _phones(body["phones"], svc.settings.default_region)
    new = NewContact(tuple(p.e164 for p in parsed), body.get("external_id"), body.get("name"),
                     body.get("country") or parsed[0].country, tuple(body.get("time_zones") or parsed[0].time_zones),
                     body.get("attributes", {}), body.get("consent", True), tuple(body.get("tags", ())))
    contact = await svc.create(new, source=f"api:{principal(request).subject}")
    return json_response(contact_json(contact), status=201)


@requires("supervisor", "agent")
async def get_contact(request: web.Request) -> web.Response:
    svc = _svc(request)
    contact = await svc.get(_id(request))
    return json_response({**contact_json(contact), "history": await svc.history(contact.id)})


@requires("supervisor", "crm")
async def update_contact(request: web.Request) -> web.Response:
    body = validate(await read_json(request), "ContactUpdate")
    svc = _svc(request)
    new_phones = None
    if "phones" in body:
        new_phones = tuple(p.e164 for p in _phones(body.pop("phones"), svc.settings.default_region))
    if body.get("renewal_date"):
        body["renewal_date"] = date.fromisoformat(body["renewal_date"])
    contact = await svc.update(_id(request), body, new_phones)
    return json_response(contact_json(contact))


@requires("supervisor")
async def delete_contact(request: web.Request) -> web.Response:
    await _svc(request).delete(_id(request))
    return web.Response(status=204)


@requires("supervisor", "agent", "crm")
async def tag_contact(request: web.Request) -> web.Response:
    body = validate(await read_json(request), "TagChange")
    contact = await _svc(request).tag(_id(request), body.get("add", []), f"api:{principal(request).subject}",
                                      remove=body.get("remove", []))
    return json_response(contact_json(contact))


@requires("supervisor", "crm")
async def change_stage(request: web.Request) -> web.Response:
    body = validate(await read_json(request), "StageChange")
    contact = await _svc(request).change_stage(_id(request), body["to"], body["reason"],
                                               f"api:{principal(request).subject}")
    return json_response(contact_json(contact))


@requires("supervisor", "agent")
async def claim_contact(request: web.Request) -> web.Response:
    body = validate(await read_json(request) if request.can_read_body else {}, "Claim")
    who = principal(request)
    # Agents claim for themselves; a supervisor may assign a lead to a named agent.
    agent = body.get("agent") if who.role in ("supervisor", "admin") and body.get("agent") else who.subject
    return json_response(contact_json(await _svc(request).claim(_id(request), agent)))


@requires("supervisor", "crm")
async def add_dnc(request: web.Request) -> web.Response:
    body = validate(await read_json(request), "DncAdd")
    contact = await _svc(request).add_dnc(body["phone"], body.get("source", f"api:{principal(request).subject}"))
    return json_response({"contact_id": contact.id if contact else None}, status=201)


@requires("supervisor", "agent")
async def list_tasks(request: web.Request) -> web.Response:
    svc, q = _svc(request), request.query
    limit = min(_int(request, "limit", 100, minimum=1) or 100, 1000)
    if q.get("due") in ("1", "true"):
        tasks = await svc.due_tasks(kind=q.get("kind"), limit=limit)
    else:
        tasks = await svc.list_tasks(kind=q.get("kind"), state=q.get("state"),
                                     contact_id=_int(request, "contact_id", minimum=0), limit=limit)
    return json_response({"tasks": [task_json(t) for t in tasks]})


@requires("supervisor", "agent")
async def complete_task(request: web.Request) -> web.Response:
    return json_response(task_json(await _svc(request).complete_task(_id(request, NoSuchTask))))


@requires("supervisor", "agent")
async def kpis(request: web.Request) -> web.Response:
    return json_response(await _svc(request).kpis(_time(request, "from"), _time(request, "to")))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/openapi.json", openapi_json),
        web.get("/contacts", search_contacts, allow_head=False),
        web.post("/contacts", create_contact),
        web.post("/contacts/import", importer.import_handler),
        web.get("/contacts/{id}", get_contact, allow_head=False),
        web.patch("/contacts/{id}", update_contact),
        web.delete("/contacts/{id}", delete_contact),
        web.post("/contacts/{id}/tags", tag_contact),
        web.post("/contacts/{id}/stage", change_stage),
        web.post("/contacts/{id}/claim", claim_contact),
        web.post("/dnc", add_dnc),
        web.get("/tasks", list_tasks, allow_head=False),
        web.post("/tasks/{id}/complete", complete_task),
        web.get("/kpis", kpis, allow_head=False),
    ]
