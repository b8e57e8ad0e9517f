"""POST /crm/events: events from the CRM (leads, stage changes, purchases, complaints, risk
signals, do-not-call numbers), signed with Standard Webhooks.

The signature is the authentication, so the route is public to the token gate and checks
the signature itself: a bad one is a 401 and nothing is stored. Each webhook-id is applied
once (the CRM retries until it gets a 2xx), in the same transaction as its changes.
"""

from __future__ import annotations

import json

from aiohttp import web

from callcycle import keys
from callcycle.auth import public
from callcycle.errors import BadRequest, json_response
from crm_sync.signing import SignatureError, verify
from lifecycle.errors import BadSignature
from lifecycle.openapi import validate


@public
async def crm_events(request: web.Request) -> web.Response:
    """Verify, validate, apply once. 200 with the result; a repeat gets ``duplicate: true``."""
    body = await request.read()
    secrets_ = request.app[keys.SETTINGS].crm_inbound_secrets
    if not secrets_:
        raise BadSignature("no CRM inbound secret is configured (CALLCYCLE_CRM_INBOUND_SECRETS)",
                           error_id="inbound-not-configured")
    now = request.app[keys.CLOCK].now().timestamp()
    try:
        verified = verify(secrets_, request.headers, body, now=now)
    except SignatureError as exc:
        raise BadSignature(str(exc), error_id=exc.error_id) from None
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", error_id="malformed-json") from exc
    validate(event, "CrmEvent")
    result = await request.app[keys.LIFECYCLE].apply_crm_event(verified.msg_id, event["type"], event["data"])
    if result is None:
        return json_response({"webhook_id": verified.msg_id, "duplicate": True})
    return json_response({"webhook_id": verified.msg_id, "duplicate": False, **result})


def routes() -> list[web.RouteDef]:
    return [web.post("/crm/events", crm_events)]
