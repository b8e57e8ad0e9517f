"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import public, requires
from callcycle.errors import json_response


@public
async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers. Reveals nothing, so it needs no token."""
    return json_response({"status": "ok"})


async def _check(coro: Any, timeout: float = 2.0) -> dict[str, Any]:
    try:
        await asyncio.wait_for(coro, timeout)
        return {"ok": True}
    except Exception as exc:  # a readiness probe reports any failure, it does not raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


@requires("supervisor", "agent", "crm")
async def ready(request: web.Request) -> web.Response:
    """Readiness: database, Redis and every configured AMI connection (logged in)."""
    app = request.app
    checks: dict[str, Any] = {}
    if keys.DB in app:
        checks["database"] = await _check(app[keys.DB].fetchval("SELECT 1"))
    if keys.REDIS in app:
        checks["redis"] = await _check(app[keys.REDIS].ping())
    if keys.PBX in app:
        checks["asterisk"] = {name: status for name, status in app[keys.PBX].status().items()}
        ami_ok = all(s["ok"] for s in checks["asterisk"].values())
    else:
        ami_ok = True
    ok = ami_ok and all(c["ok"] for k, c in checks.items() if k != "asterisk")
    return json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)


def routes() -> list[web.RouteDef]:
    return [web.get("/health", health), web.get("/ready", ready)]
