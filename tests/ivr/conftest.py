"""Fixtures of the IVR tests: the real app on the sandbox Asterisk, simulated callers
(``Local/s@sim-customer`` into ``callcycle-ivr``), a CRM receiver registered through the
webhook API, and pollers over the database."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from callcycle import keys
from callcycle.app import init_app
from ivr.config import SANDBOX_ROOT
from pbx.actions import OriginateRequest
from tests.conftest import auth
from tests.crm_sync.conftest import Receiver
from tests.pbx.tools import EventLog, eventually

SOUNDS_DIR = os.path.join(os.environ.get("CALLCYCLE_SANDBOX_ROOT", SANDBOX_ROOT), "usr/share/asterisk/sounds/en")
IVR_ENV = {
    "CALLCYCLE_CRM_SYNC_ALLOW_PRIVATE_DESTINATIONS": "true",   # the receiver is on 127.0.0.1
    "CALLCYCLE_CRM_SYNC_POLL_INTERVAL": "0.05",
    "CALLCYCLE_IVR_SOUNDS_DIR": SOUNDS_DIR,
    "CALLCYCLE_IVR_SOUNDS_CHROOT": os.environ.get("CALLCYCLE_SANDBOX_ROOT", SANDBOX_ROOT),
}
_numbers = itertools.count(int(time.time() * 1000) % 9000)


def caller_number() -> str:
    """A fresh valid US number per simulated caller (the database is per test anyway)."""
    return f"+1415555{next(_numbers) % 10000:04d}"


@dataclass
class Ivr:
    """The running app and what the tests do with it."""

    app: Any
    client: Any
    receiver: Receiver
    events: EventLog
    owner: str

    @property
    def pool(self) -> Any:
        return self.app[keys.DB]

    @property
    def service(self) -> Any:
        return self.app[keys.IVR]

    @property
    def pbx(self) -> Any:
        return self.app[keys.PBX].default

    async def call(self, number: str | None = None, flow: str = "screening", **sim: str) -> str:
        """Originate a simulated caller into callcycle-ivr; returns the call's linkedid."""
        number = number or caller_number()
        variables = {"CALLCYCLE_FLOW": flow, "CALLCYCLE_IVR_OWNER": self.owner, **{k: str(v) for k, v in sim.items()}}
        result = await self.pbx.actions.originate(OriginateRequest(
            attempt_id=f"ivrtest-{uuid.uuid4().hex[:16]}", channel="Local/s@sim-customer", context="callcycle-ivr",
            exten="s", caller_id=f'"IVR test" <{number}>', timeout_s=15, variables=variables))
        assert result.success, result
        return result.uniqueid   # the originated channel's uniqueid is the call's linkedid

    async def session(self, linkedid: str, timeout: float = 30) -> dict[str, Any]:
        """The recorded ivr_sessions row of a call, once it exists."""
        return await poll(lambda: self.pool.fetchrow("SELECT * FROM ivr_sessions WHERE linkedid = $1", linkedid),
                          timeout, f"the IVR session of {linkedid}")

    async def call_record(self, call_id: int) -> dict[str, Any]:
        return dict(await self.pool.fetchrow("SELECT * FROM calls WHERE id = $1", call_id))

    async def contact(self, contact_id: int) -> dict[str, Any]:
        return dict(await self.pool.fetchrow("SELECT * FROM contacts WHERE id = $1", contact_id))

    async def outbox(self, contact_id: int) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch("SELECT event_type, payload FROM outbox_events WHERE ordering_key = $1 "
                                     "ORDER BY seq", f"contact:{contact_id}")
        return [(r["event_type"], r["payload"]) for r in rows]

    async def steps(self, session_id: int) -> list[tuple[str, str, str]]:
        rows = await self.pool.fetch("SELECT kind, node, digits FROM ivr_steps WHERE session_id = $1 ORDER BY seq",
                                     session_id)
        return [(r["kind"], r["node"], r["digits"]) for r in rows]

    def received(self, contact_id: int) -> list[tuple[str, dict[str, Any]]]:
        """What the CRM receiver got for a contact, in order (type, data)."""
        out = []
        for r in self.receiver.requests:
            body = r.json
            if (body["data"].get("contact") or {}).get("id") == contact_id:
                out.append((body["type"], body["data"]))
        return out


async def poll(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy."""
    return await eventually(predicate, timeout, 0.05, what)


@pytest.fixture
async def make_ivr(asterisk_env, make_settings, aiohttp_client) -> AsyncIterator[Callable[..., Any]]:
    """Start the whole app on the sandbox (``port``: AMI through e.g. a TcpProxy), with a
    CRM receiver subscribed to every event through the webhook API."""
    receivers: list[Receiver] = []

    async def make(port: int | None = None, **env: str) -> Ivr:
        # The sandbox is shared: this app drives only the calls that name it as their owner.
        overrides = {**IVR_ENV, "CALLCYCLE_IVR_OWNER": str(uuid.uuid4().int % 10**9), **env}
        if port is not None:
            overrides["CALLCYCLE_ASTERISK_MAIN_PORT"] = str(port)
        app = init_app(make_settings(**overrides))
        client = await aiohttp_client(app)
        await app[keys.PBX].default.client.wait_connected(15)
        events = EventLog()
        app[keys.PBX].default.router.add_listener(events)
        receiver = Receiver()
        await receiver.start()
        receivers.append(receiver)
        resp = await client.post("/api/webhooks/endpoints", json={"url": receiver.url("/crm")},
                                 headers=auth("admin"))
        assert resp.status == 201, await resp.text()
        return Ivr(app, client, receiver, events, overrides["CALLCYCLE_IVR_OWNER"])

    try:
        yield make
    finally:
        for receiver in receivers:
            await receiver.stop()


@pytest.fixture
async def ivr(make_ivr) -> Ivr:
    return await make_ivr()
