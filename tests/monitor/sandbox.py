"""Helpers for console tests on the real sandbox Asterisk (shared with other engineers:
everything here is filtered by our own attempt ids, nothing counts global state)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from callcycle import keys
from pbx.actions import OriginateRequest
from tests.monitor.conftest import Feed
from tests.pbx.tools import asterisk_cli, eventually


def start_customer_call(app, *, talk: int = 6, agent_talk: int = 3, ring: int = 1,
                        exten: str = "queue", pbx=None) -> tuple[str, asyncio.Task]:
    """A simulated customer (Local/s@sim-customer) answering after ``ring`` s, then put in
    the sales queue (``exten='queue'``); returns (attempt id, the originate task)."""
    attempt = f"montest-{uuid.uuid4().hex[:12]}"
    server = (pbx or app[keys.PBX]).default
    req = OriginateRequest(attempt_id=attempt, channel="Local/s@sim-customer", context="callcycle-outbound",
                           exten=exten, timeout_s=20,
                           variables={"SIM_RING": str(ring), "SIM_TALK": str(talk),
                                      "__SIM_AGENT_TALK": str(agent_talk)})
    return attempt, asyncio.create_task(server.actions.originate(req))


async def call_of(feed: Feed, attempt: str, timeout: float = 15) -> dict[str, Any]:
    """The live call our originate created, as the feed shows it."""
    def find() -> dict[str, Any] | None:
        return next((c for c in feed.entities("call").values() if c.get("attempt_id") == attempt), None)

    return await eventually(find, timeout)


def spy_channels(target_prefix: str) -> list[str]:
    """Asterisk's own list of channels running ChanSpy on ``target_prefix``."""
    rows = asterisk_cli("core show channels concise").splitlines()
    return [r for r in rows if "!ChanSpy!" in r and target_prefix in r]
