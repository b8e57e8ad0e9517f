"""HTTP of the supervisor console: the page, the live feed, actions, audit, /metrics.

Every endpoint needs a token except the page and its static files, which hold no data
(the page asks for a token and gets everything from the endpoints below). Browsers cannot
set headers on a WebSocket or EventSource, so those two take ``?access_token=``.

    GET  /monitor                          the dashboard page (public, no data)
    GET  /monitor/static/{name}            its script and style (public)
    GET  /monitor/me                       who the token is         supervisor, agent
    GET  /monitor/snapshot                 the live view as JSON    supervisor, agent
    GET  /monitor/ws                       live feed, WebSocket     supervisor, agent
    GET  /monitor/events                   live feed, SSE           supervisor, agent
    POST /monitor/calls/{call_id}/spy      {"mode": "listen"|"whisper"|"barge"}   supervisor
    POST /monitor/calls/{call_id}/hangup                                          supervisor
    POST /monitor/agents/pause             {"agent": id, "paused": bool, "reason": str}
    POST /monitor/campaigns/{campaign_id}/pause   {"paused": bool}                supervisor
    GET  /monitor/audit?limit=&target_kind=&target_id=                            supervisor
    GET  /metrics                          Prometheus text          supervisor (admin)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import principal, public, query_token, requires
from callcycle.errors import Invalid, NotFound, json_response, read_json
from monitor import repository
from monitor.feed import Client, serve_sse, serve_websocket
from monitor.metrics import CONTENT_TYPE
from monitor.models import audience_of
from monitor.plugin import ACTIONS, METRICS

STATIC = Path(__file__).resolve().parent / "static"
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
_NO_STORE = {"Cache-Control": "no-store"}


@public
async def page(request: web.Request) -> web.FileResponse:
    """The dashboard: markup and code only; it shows nothing until given a token."""
    return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8",
                                                            **_NO_STORE})


@public
async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise NotFound(f"no asset {name!r}")
    return web.FileResponse(STATIC / name, headers={"Content-Type": _ASSETS[name], **_NO_STORE})


@requires("supervisor", "agent")
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    mon = request.app[keys.MONITOR]
    return json_response({"subject": who.subject, "role": who.role, "audience": audience_of(who.role),
                          "instance": mon.instance, "can_act": who.role in ("admin", "supervisor")})


@requires("supervisor", "agent")
async def snapshot(request: web.Request) -> web.Response:
    who = principal(request)
    return json_response(request.app[keys.MONITOR].snapshot(who.subject, who.role))


def _joiner(request: web.Request, kind: str) -> Callable[[], Client]:
    who = principal(request)
    mon = request.app[keys.MONITOR]
    label = f"{kind}:{who.subject}:{request.remote}"
    return lambda: mon.hub.join(audience_of(who.role), mon.snapshot_message(who.subject, who.role), label)


@query_token
@requires("supervisor", "agent")
async def websocket(request: web.Request) -> web.StreamResponse:
    return await serve_websocket(request, request.app[keys.MONITOR].hub, _joiner(request, "ws"))


@query_token
@requires("supervisor", "agent")
async def events(request: web.Request) -> web.StreamResponse:
    return await serve_sse(request, request.app[keys.MONITOR].hub, _joiner(request, "sse"))


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await read_json(request)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", error_id="invalid-body")
    return body


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, True)
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false", error_id="invalid-field")
    return value


@requires("supervisor")
async def spy(request: web.Request) -> web.Response:
    body = await _body(request)
    who = principal(request)
    endpoint = request.app[keys.MONITOR].settings.supervisor_endpoint.format(subject=who.subject)
    entry = await request.app[ACTIONS].spy(who, request.match_info["call_id"], str(body.get("mode", "listen")),
                                           endpoint)
    return json_response(entry)


@requires("supervisor")
async def hangup(request: web.Request) -> web.Response:
    return json_response(await request.app[ACTIONS].hangup(principal(request), request.match_info["call_id"]))


@requires("supervisor")
async def pause_agent(request: web.Request) -> web.Response:
    body = await _body(request)
    agent = body.get("agent")
    if not isinstance(agent, str) or not agent:
        raise Invalid("agent (an agent id from the live view) is required", error_id="invalid-field")
    reason = body.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > 80 or "\n" in reason or "\r" in reason:
        raise Invalid("reason must be one line of at most 80 characters", error_id="invalid-field")
    entry = await request.app[ACTIONS].pause_agent(principal(request), agent, _flag(body, "paused"), reason)
    return json_response(entry)


@requires("supervisor")
async def pause_campaign(request: web.Request) -> web.Response:
    body = await _body(request)
    entry = await request.app[ACTIONS].pause_campaign(principal(request), request.match_info["campaign_id"],
                                                      _flag(body, "paused"))
    return json_response(entry)


@requires("supervisor")
async def audit(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise Invalid("limit must be a number", error_id="invalid-field") from exc
    entries = await repository.recent(request.app[keys.DB], limit=limit,
                                      target_kind=request.query.get("target_kind"),
                                      target_id=request.query.get("target_id"))
    return json_response({"entries": [e.to_json() for e in entries]})


@requires("supervisor")
async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/monitor", page), web.get("/monitor/static/{name}", asset),
        web.get("/monitor/me", me), web.get("/monitor/snapshot", snapshot),
        web.get("/monitor/ws", websocket), web.get("/monitor/events", events),
        web.post("/monitor/calls/{call_id}/spy", spy), web.post("/monitor/calls/{call_id}/hangup", hangup),
        web.post("/monitor/agents/pause", pause_agent),
        web.post("/monitor/campaigns/{campaign_id}/pause", pause_campaign),
        web.get("/monitor/audit", audit), web.get("/metrics", metrics),
    ]
