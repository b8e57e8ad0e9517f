"""Thin HTTP handlers of the IVR: the flows loaded (and their versions), a reload without
restart, the sessions running now and the recorded ones."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import requires
from callcycle.errors import Invalid, json_response
from ivr import repository
from ivr.errors import NoSuchFlow
from ivr.models import Flow
from ivr.service import IvrService

PREFIX = "/api/ivr"


def _ivr(request: web.Request) -> IvrService:
    return request.app[keys.IVR]


def flow_json(f: Flow, *, nodes: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "version": f.version, "file": f.file, "description": f.description,
                           "start": f.start, "node_count": len(f.nodes)}
    if nodes:
        out["nodes"] = [{"id": n.id, "type": type(n).__name__.lower(), "line": n.line} for n in f.nodes.values()]
    return out


@requires("supervisor")
async def list_flows(request: web.Request) -> web.Response:
    flows = _ivr(request).flows
    return json_response({"loaded_at": flows.loaded_at, "flows": [flow_json(f) for f in flows.flows.values()]})


@requires("supervisor")
async def get_flow(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    flow = _ivr(request).flows.get(name)
    if flow is None:
        raise NoSuchFlow(name)
    return json_response(flow_json(flow, nodes=True))


@requires("admin")
async def reload_flows(request: web.Request) -> web.Response:
    """Load every flow again; 422 with file/line/reason of each problem keeps the old set."""
    flows = _ivr(request).reload()
    return json_response({"loaded_at": flows.loaded_at, "flows": [flow_json(f) for f in flows.flows.values()]})


@requires("supervisor")
async def live_sessions(request: web.Request) -> web.Response:
    return json_response({"sessions": _ivr(request).live()})


@requires("supervisor")
async def recorded_sessions(request: web.Request) -> web.Response:
    q = request.query
    try:
        contact_id = int(q["contact_id"]) if q.get("contact_id") else None
        limit = max(1, min(int(q.get("limit", "100")), 500))
    except ValueError:
        raise Invalid("contact_id and limit must be integers", error_id="invalid-parameter") from None
    async with request.app[keys.DB].acquire() as conn:
        rows = await repository.sessions(conn, linkedid=q.get("linkedid") or None, contact_id=contact_id,
                                         flow=q.get("flow") or None, limit=limit)
        if q.get("steps") == "true":
            for row in rows:
                row["steps"] = await repository.steps(conn, row["id"])
    return json_response({"sessions": rows})


def routes() -> list[web.RouteDef]:
    return [
        web.get(f"{PREFIX}/flows", list_flows),
        web.get(f"{PREFIX}/flows/{{name}}", get_flow),
        web.post(f"{PREFIX}/flows/reload", reload_flows),
        web.get(f"{PREFIX}/sessions/live", live_sessions),
        web.get(f"{PREFIX}/sessions", recorded_sessions),
    ]
