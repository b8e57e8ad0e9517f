"""Fixtures of the supervisor-console tests: apps with a bus channel of their own (so no
other test's instances are heard), and feed clients."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import ROLE_TOKENS


@pytest.fixture
def monitor_env() -> dict[str, str]:
    """Environment for make_settings: a private bus channel and fast timers."""
    return {"CALLCYCLE_MONITOR_BUS_CHANNEL": f"test-monitor:{uuid.uuid4().hex[:10]}",
            "CALLCYCLE_MONITOR_FULL_INTERVAL": "1.0", "CALLCYCLE_MONITOR_PEER_TIMEOUT": "4.0",
            "CALLCYCLE_MONITOR_TICK_INTERVAL": "0.5", "CALLCYCLE_MONITOR_OWNER_LEASE": "3.0",
            "CALLCYCLE_MONITOR_SAMPLE_INTERVAL": "1.0",
            "CALLCYCLE_MONITOR_SUPERVISOR_ENDPOINT": "Local/{subject}@sim-supervisor"}


@pytest.fixture
def monitor_settings(make_settings, monitor_env):
    def make(**extra: str):
        return make_settings(**{**monitor_env, **extra})

    return make


class Feed:
    """A WebSocket feed client that keeps every message it gets."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)  # one message, or a batch of them in order
                self.messages.extend(data if isinstance(data, list) else [data])
        self.close_code = self.ws.close_code

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.messages[0]

    def entity(self, kind: str, eid: str) -> dict[str, Any] | None:
        """The entity as this client sees it now (snapshot + deltas)."""
        value = self.snapshot["entities"].get(kind, {}).get(eid)
        for m in self.messages[1:]:
            if m["type"] == "delta" and m["kind"] == kind and m["id"] == eid:
                value = m["data"]
        return value

    def entities(self, kind: str) -> dict[str, dict[str, Any]]:
        table = dict(self.snapshot["entities"].get(kind, {}))
        for m in self.messages[1:]:
            if m["type"] == "delta" and m["kind"] == kind:
                if m["data"] is None:
                    table.pop(m["id"], None)
                else:
                    table[m["id"]] = m["data"]
        return table

    def deltas(self, kind: str | None = None, where: Callable[[dict], bool] = lambda m: True) -> list[dict]:
        return [m for m in self.messages if m["type"] == "delta" and (kind is None or m["kind"] == kind) and where(m)]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self.task, return_exceptions=True)


async def open_feed(client, role: str = "supervisor") -> Feed:
    ws = await client.ws_connect("/monitor/ws", params={"access_token": ROLE_TOKENS[role]})
    feed = Feed(ws)
    from tests.pbx.tools import eventually

    await eventually(lambda: feed.messages, 10)
    assert feed.snapshot["type"] == "snapshot"
    return feed
