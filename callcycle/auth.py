"""Bearer tokens with roles. Every endpoint declares who may call it; an endpoint that
declares nothing is refused to everyone (fail closed).

    @requires("supervisor", "agent")
    async def list_calls(request): ...

``admin`` may call everything. Tokens come from ``CALLCYCLE_API_TOKENS`` (see settings).
Browsers cannot set headers on a WebSocket or EventSource, so the handlers of those (marked
with :func:`query_token`) also take the token as ``?access_token=``; nothing else does, since
a token in a URL ends up in browser history, Referer headers and proxy logs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callcycle.errors import Forbidden, Unauthorized
from callcycle.settings import ROLES, ApiToken

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ROLES_ATTR = "__callcycle_roles__"
_QUERY_TOKEN_ATTR = "__callcycle_query_token__"
PUBLIC = frozenset({"*"})


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str


PRINCIPAL = web.RequestKey("principal", Principal)


def requires(*roles: str) -> Callable[[Handler], Handler]:
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"requires() needs roles from {ROLES}, got {roles}")

    def mark(handler: Handler) -> Handler:
        setattr(handler, _ROLES_ATTR, frozenset(roles) | {"admin"})
        return handler

    return mark


def query_token(handler: Handler) -> Handler:
    """This GET endpoint (a WebSocket or an EventSource) may take ``?access_token=``."""
    setattr(handler, _QUERY_TOKEN_ATTR, True)
    return handler


def public(handler: Handler) -> Handler:
    """Reachable without a token. Only for liveness and static assets that reveal nothing."""
    setattr(handler, _ROLES_ATTR, PUBLIC)
    return handler


def roles_of(handler: Any) -> frozenset[str] | None:
    return getattr(handler, _ROLES_ATTR, None)


class TokenStore:
    """Looks tokens up by their SHA-256, compared in constant time."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._by_digest = {hashlib.sha256(t.token.encode()).digest(): Principal(t.subject, t.role) for t in tokens}

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, token: str) -> Principal | None:
        # aiohttp decodes header bytes with surrogateescape: such a token is simply unknown
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def _token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    if (request.method == "GET" and "access_token" in request.query
            and getattr(request.match_info.handler, _QUERY_TOKEN_ATTR, False)):
        return request.query["access_token"] or None
    return None


def auth_middleware(store: TokenStore) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        allowed = roles_of(request.match_info.handler)
        if allowed == PUBLIC:
            return await handler(request)
        token = _token_of(request)
        if token is None:
            raise Unauthorized("a bearer token is required", error_id="token-required")
        principal = store.lookup(token)
        if principal is None:
            raise Unauthorized("the token is not valid", error_id="invalid-token")
        if request.match_info.http_exception is not None:
            raise request.match_info.http_exception  # 404/405, told only to a known caller
        if allowed is None or principal.role not in allowed:
            raise Forbidden(f"role {principal.role!r} may not call {request.method} {request.path}",
                            error_id="role-forbidden")
        request[PRINCIPAL] = principal
        return await handler(request)

    return middleware


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
