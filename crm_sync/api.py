"""HTTP handlers of the webhook side: endpoints (admin), the delivery log (admin,
supervisor), replay (admin) and the event catalogue. Thin: parse, call the service, render."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import requires
from callcycle.errors import Invalid, decimal_id, json_response, read_json
from crm_sync import catalogue, service
from crm_sync.config import CrmSyncSettings
from crm_sync.machine import DeliveryState

PREFIX = "/api/webhooks"


def _settings(request: web.Request) -> CrmSyncSettings:
    return request.app[keys.SETTINGS].feature("crm_sync", CrmSyncSettings)


def _int(value: str | None, name: str, *, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    found = decimal_id(value)
    if found is None:
        raise Invalid(f"{name} must be a whole number in ASCII digits, at most 18 of them",
                      error_id="invalid-parameter")
    return found


def _endpoint_id(request: web.Request) -> int:
    return _int(request.match_info["endpoint_id"], "endpoint_id")  # type: ignore[return-value]


def _page(request: web.Request) -> dict[str, Any]:
    limit = _int(request.query.get("limit"), "limit", default=100)
    return {"before": _int(request.query.get("before"), "before"),
            "limit": max(1, min(limit or 100, 500))}


@requires("admin")
async def list_endpoints(request: web.Request) -> web.Response:
    endpoints = await service.list_endpoints(request.app[keys.DB])
    return json_response({"endpoints": [e.to_json() for e in endpoints]})


@requires("admin")
async def create_endpoint(request: web.Request) -> web.Response:
    """The secret is in this response and never again."""
    endpoint, secret = await service.create_endpoint(request.app[keys.DB], _settings(request),
                                                     await read_json(request))
    return json_response({**endpoint.to_json(), "secret": secret}, status=201)


@requires("admin")
async def get_endpoint(request: web.Request) -> web.Response:
    return json_response((await service.get_endpoint(request.app[keys.DB], _endpoint_id(request))).to_json())


@requires("admin")
async def update_endpoint(request: web.Request) -> web.Response:
    endpoint = await service.update_endpoint(request.app[keys.DB], _settings(request), _endpoint_id(request),
                                             await read_json(request))
    return json_response(endpoint.to_json())


@requires("admin")
async def delete_endpoint(request: web.Request) -> web.Response:
    await service.delete_endpoint(request.app[keys.DB], _endpoint_id(request))
    return web.Response(status=204)


@requires("admin")
async def rotate_secret(request: web.Request) -> web.Response:
    """A new secret, returned once; the old one still signs for ``rotation_overlap`` s."""
    endpoint, secret = await service.rotate_secret(request.app[keys.DB], _settings(request),
                                                   request.app[keys.CLOCK], _endpoint_id(request))
    return json_response({**endpoint.to_json(), "secret": secret})


@requires("supervisor")
async def list_deliveries(request: web.Request) -> web.Response:
    q = request.query
    state = q.get("state") or None
    if state is not None and state not in set(DeliveryState):
        raise Invalid(f"state must be one of {', '.join(DeliveryState)}", error_id="invalid-parameter")
    try:
        event_id = uuid.UUID(q["event_id"]) if q.get("event_id") else None
    except ValueError:
        raise Invalid("event_id must be a UUID", error_id="invalid-parameter") from None
    rows = await service.deliveries(request.app[keys.DB], {
        "endpoint_id": _int(q.get("endpoint_id"), "endpoint_id"), "event_id": event_id, "state": state,
        **_page(request)})
    return json_response({"deliveries": rows})


@requires("supervisor")
async def list_attempts(request: web.Request) -> web.Response:
    delivery_id = _int(request.match_info["delivery_id"], "delivery_id")
    return json_response({"attempts": await service.attempts(request.app[keys.DB], delivery_id)})  # type: ignore[arg-type]


@requires("supervisor")
async def list_dead_letters(request: web.Request) -> web.Response:
    rows = await service.dead_letters(request.app[keys.DB], {
        "endpoint_id": _int(request.query.get("endpoint_id"), "endpoint_id"), **_page(request)})
    return json_response({"dead_letters": rows})


@requires("admin")
async def replay(request: web.Request) -> web.Response:
    """Body: ``{"event_id": ...}`` or ``{"from": iso, "to": iso}``, optional ``endpoint_id``."""
    count = await service.replay(request.app[keys.DB], await read_json(request))
    return json_response({"deliveries_created": count}, status=202)


@requires("supervisor", "crm")
async def event_types(request: web.Request) -> web.Response:
    return json_response({"event_types": catalogue.load().to_json()})


def routes() -> list[web.RouteDef]:
    p = PREFIX
    return [
        web.get(f"{p}/endpoints", list_endpoints),
        web.post(f"{p}/endpoints", create_endpoint),
        web.get(f"{p}/endpoints/{{endpoint_id}}", get_endpoint),
        web.patch(f"{p}/endpoints/{{endpoint_id}}", update_endpoint),
        web.delete(f"{p}/endpoints/{{endpoint_id}}", delete_endpoint),
        web.post(f"{p}/endpoints/{{endpoint_id}}/rotate-secret", rotate_secret),
        web.get(f"{p}/deliveries", list_deliveries),
        web.get(f"{p}/deliveries/{{delivery_id}}/attempts", list_attempts),
        web.get(f"{p}/dead-letters", list_dead_letters),
        web.post(f"{p}/replay", replay),
        web.get(f"{p}/event-types", event_types),
    ]
