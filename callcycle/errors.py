"""Errors that carry an ``error_id`` slug, and the middleware that renders them as JSON:
``{"error": "no-such-campaign", "detail": ...}`` with the right status."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from callcycle.logs import get_logger

log = get_logger(__name__)


class AppError(Exception):
    """Base of every error a client may see. Subclasses set ``status`` and ``error_id``."""

    status = 500
    error_id = "internal-error"

    def __init__(self, detail: Any = None, *, error_id: str | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else (error_id or self.error_id))
        self.detail = detail
        if error_id:
            self.error_id = error_id

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error_id, "detail": self.detail}


class BadRequest(AppError):
    status = 400
    error_id = "bad-request"


class Invalid(AppError):
    """Well-formed JSON that breaks a rule; ``detail`` names the field."""

    status = 422
    error_id = "invalid"


class Unauthorized(AppError):
    status = 401
    error_id = "unauthorized"


class Forbidden(AppError):
    status = 403
    error_id = "forbidden"


class NotFound(AppError):
    status = 404
    error_id = "not-found"


class Conflict(AppError):
    status = 409
    error_id = "conflict"


class Unavailable(AppError):
    status = 503
    error_id = "unavailable"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=lambda o: json.dumps(o, default=str))


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 naming the problem."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, LookupError) as exc:   # LookupError: an unknown charset
        raise BadRequest(f"body is not valid JSON: {exc}", error_id="malformed-json") from exc


def decimal_id(raw: str) -> int | None:
    """A non-negative integer written in ASCII digits that fits PostgreSQL's bigint, else
    None (``"²".isdigit()`` is true, and an id past bigint fails in the database)."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return json_response(exc.to_json(), status=exc.status, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = exc.reason.lower().replace(" ", "-")
        return json_response({"error": slug, "detail": exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else None},
                             status=exc.status)
    except Exception:
        log.exception("unhandled_error", path=request.path, method=request.method)
        return json_response({"error": "internal-error", "detail": None}, status=500)
