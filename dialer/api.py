"""Thin HTTP handlers of the dialer: campaigns, their leads, controls, live figures, preview
choices, do-not-call imports. Supervisors run campaigns; agents preview and choose leads."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import principal, requires
from callcycle.errors import BadRequest, decimal_id, json_response, read_json
from dialer import dnc
from dialer.errors import NoSuchCampaign, NoSuchLead
from dialer.service import DialerService

SERVICE = web.AppKey("dialer_service", DialerService)
_P = "/dialer"


def _svc(request: web.Request) -> DialerService:
    return request.app[SERVICE]


def _id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    value = decimal_id(raw)
    if value is None:
        raise (NoSuchCampaign if name == "id" else NoSuchLead)(raw)
    return value


def _int(request: web.Request, name: str, default: int, cap: int) -> int:
    raw = request.query.get(name, "")
    value = decimal_id(raw) if raw else default
    if value is None:
        raise BadRequest(f"{name} must be a non-negative integer")
    return min(value, cap)


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


@requires("supervisor")
async def list_campaigns(request: web.Request) -> web.Response:
    found = await _svc(request).list(request.query.get("state"), _int(request, "limit", 100, 500),
                                     _int(request, "offset", 0, 10**9))
    return json_response({"campaigns": [c.to_json() for c in found]})


@requires("supervisor")
async def create_campaign(request: web.Request) -> web.Response:
    body = await _body(request)
    campaign = await _svc(request).create(body.get("name"), body.get("mode", ""), body.get("settings", {}))
    return json_response(campaign.to_json(), status=201)


@requires("supervisor")
async def get_campaign(request: web.Request) -> web.Response:
    svc = _svc(request)
    campaign = await svc.get(_id(request))
    return json_response({**campaign.to_json(), "figures": await svc.figures(campaign.id)})


@requires("supervisor")
async def update_campaign(request: web.Request) -> web.Response:
    body = await _body(request)
    campaign = await _svc(request).update(_id(request), body.get("name"), body.get("settings"))
    return json_response(campaign.to_json())


def _control(action: str) -> Any:
    @requires("supervisor")
    async def handler(request: web.Request) -> web.Response:
        campaign = await _svc(request).control(_id(request), action, principal(request).subject)
        return json_response(campaign.to_json())

    handler.__name__ = f"{action}_campaign"
    return handler


@requires("supervisor")
async def add_leads(request: web.Request) -> web.Response:
    return json_response(await _svc(request).add_leads(_id(request), await _body(request)), status=201)


@requires("supervisor")
async def list_leads(request: web.Request) -> web.Response:
    leads = await _svc(request).leads(_id(request), request.query.get("state"), _int(request, "limit", 100, 1000),
                                      _int(request, "offset", 0, 10**9))
    return json_response({"leads": [lead.to_json() for lead in leads]})


@requires("supervisor")
async def list_attempts(request: web.Request) -> web.Response:
    """Attempts, newest first, each with why the gate allowed it (rule versions, values)."""
    found = await _svc(request).attempts(_id(request), _int(request, "limit", 100, 1000),
                                         _int(request, "offset", 0, 10**9))
    return json_response({"attempts": found})


@requires("supervisor")
async def figures(request: web.Request) -> web.Response:
    """Live figures and the pacing explanation: its inputs and the lines it chose."""
    return json_response(await _svc(request).figures(_id(request)))


@requires("supervisor", "agent")
async def preview(request: web.Request) -> web.Response:
    found = await _svc(request).next_preview(_id(request))
    return json_response(found or {"lead": None})


@requires("supervisor", "agent")
async def dial_lead(request: web.Request) -> web.Response:
    await _svc(request).approve(_id(request), _id(request, "lead_id"), principal(request).subject)
    return json_response({"queued": True}, status=202)


@requires("supervisor", "crm")
async def import_dnc(request: web.Request) -> web.Response:
    """An imported do-not-call list: {"phones": [...], "source": "..."}."""
    body = await _body(request)
    phones = body.get("phones")
    if not isinstance(phones, list) or len(phones) > 100_000:
        raise BadRequest("phones must be a list of up to 100000 numbers")
    source = str(body.get("source") or f"import:{principal(request).subject}")[:100]
    return json_response(await dnc.import_numbers(request.app[keys.LIFECYCLE], phones, source), status=201)


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{_P}/campaigns", list_campaigns, allow_head=False),
        web.post(f"{_P}/campaigns", create_campaign),
        web.get(f"{_P}/campaigns/{{id}}", get_campaign, allow_head=False),
        web.patch(f"{_P}/campaigns/{{id}}", update_campaign),
        *[web.post(f"{_P}/campaigns/{{id}}/{a}", _control(a)) for a in ("start", "pause", "resume", "stop")],
        web.post(f"{_P}/campaigns/{{id}}/leads", add_leads),
        web.get(f"{_P}/campaigns/{{id}}/leads", list_leads, allow_head=False),
        web.get(f"{_P}/campaigns/{{id}}/attempts", list_attempts, allow_head=False),
        web.get(f"{_P}/campaigns/{{id}}/figures", figures, allow_head=False),
        web.get(f"{_P}/campaigns/{{id}}/preview", preview, allow_head=False),
        web.post(f"{_P}/campaigns/{{id}}/leads/{{lead_id}}/dial", dial_lead),
        web.post(f"{_P}/dnc", import_dnc),
    ]
