"""Fixtures of the dialer tests: simulated customers by number, apps on the sandbox with
the dialer's sandbox settings, and helpers to build campaigns through the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from callcycle import keys
from callcycle.app import init_app
from lifecycle.models import NewContact
from tests.conftest import auth

# Sandbox dialer settings: the simulated carrier (behaviour from the number, see the
# callcycle-sim-trunk context), short rings (simulated people answer within 1 s; the 15 s
# floor is for real destinations), AMD tuned to the sandbox's sounds (a silent person
# gives no audio -> NOTSURE after totalAnalysisTime, 2.5 s; the "machine" greeting ->
# MACHINE at its second word, ~2.2 s), quick leases, agents that talk 2 s.
SANDBOX_DIALER = {
    "CALLCYCLE_DIALER_TRUNK": "Local/{number}@callcycle-sim-trunk",
    "CALLCYCLE_DIALER_RING_TIMEOUT_OVERRIDE_S": "4",
    "CALLCYCLE_DIALER_AMD_PARAMS": "2500/1500/800/2500/100/50/1/256/5000",
    "CALLCYCLE_DIALER_ORIGINATE_VARIABLES": "__SIM_AGENT_TALK=2",
    "CALLCYCLE_DIALER_LEASE_TTL_S": "2",
    "CALLCYCLE_DIALER_LEASE_RENEW_S": "0.5",
    "CALLCYCLE_DIALER_TICK_S": "0.2",
}
BEHAVIOUR = {"answer": 0, "busy": 1, "noanswer": 2, "machine": 3, "congestion": 4}


def sim_number(behaviour: str, n: int, press: int = 0) -> str:
    """+1 415 555 B P NN (or another area code past 100 of a kind): a simulated person."""
    area = 415 + n // 100
    return f"+1{area}555{BEHAVIOUR[behaviour]}{press}{n % 100:02d}"


def zone_inside_window(now: datetime | None = None, lo: int = 10, hi: int = 18) -> str:
    """An IANA zone where it is between lo:00 and hi:00 now (tests run at any hour)."""
    now = now or datetime.now(timezone.utc)
    for offset in range(-12, 15):
        name = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}" if offset else "Etc/GMT"
        if lo <= now.astimezone(ZoneInfo(name)).hour < hi:
            return name
    raise AssertionError("no zone")


def zone_outside_window(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    for offset in range(-12, 15):
        name = f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}" if offset else "Etc/GMT"
        if now.astimezone(ZoneInfo(name)).hour in (1, 2, 3, 4, 5):
            return name
    raise AssertionError("no zone")


@pytest.fixture
def dialer_env(asterisk_env) -> dict[str, str]:
    return dict(SANDBOX_DIALER)


@pytest.fixture
def make_app(make_settings, aiohttp_client) -> Callable:
    """An app (client) on the test's database; several share it like server instances."""
    async def make(with_pbx: bool = True, **env: str):
        app = init_app(make_settings(**env), with_pbx=with_pbx)
        client = await aiohttp_client(app)
        if with_pbx:
            await app[keys.PBX].default.client.wait_connected(15)
        return client
    return make


async def add_contacts(app, phones: list[str], zone: str, tag: str) -> list[int]:
    lifecycle = app[keys.LIFECYCLE]
    ids = []
    for p in phones:
        c = await lifecycle.create(NewContact((p,), time_zones=(zone,), tags=(tag,)), source="test")
        ids.append(c.id)
    return ids


def soon(minutes: float = 15) -> str:
    """A campaign end: leads not callable before it (retries, rests) close with their reason."""
    from datetime import timedelta

    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()


async def create_campaign(client, mode: str, **settings) -> dict:
    settings.setdefault("ends_at", soon())
    resp = await client.post("/dialer/campaigns", json={"name": f"test {mode}", "mode": mode, "settings": settings},
                             headers=auth("supervisor"))
    body = await resp.json()
    assert resp.status == 201, body
    return body


async def post(client, path: str, body: dict | None = None, status: int = 200) -> dict:
    resp = await client.post(path, json=body or {}, headers=auth("supervisor"))
    data = await resp.json()
    assert resp.status == status, data
    return data


async def get(client, path: str) -> dict:
    resp = await client.get(path, headers=auth("supervisor"))
    data = await resp.json()
    assert resp.status == 200, data
    return data


@pytest.fixture
async def watch(asterisk_env):
    """A Pbx of the test's own, straight to the sandbox, recording every event: the
    witness of what was really dialed (it sees calls even while the app's AMI is cut)."""
    from callcycle import settings as settings_mod
    from pbx.service import Pbx
    from tests.conftest import ROOT
    from tests.pbx.tools import EventLog

    log = EventLog()
    pbx = Pbx(settings_mod.load(ROOT / "config" / "callcycle.toml", asterisk_env).asterisk)
    pbx.default.router.add_listener(log)
    await pbx.start()
    await pbx.default.client.wait_connected(15)
    yield log
    await pbx.stop()


def channels_by_attempt(log, prefix: str) -> dict[str, set[str]]:
    from pbx import events as ev

    found: dict[str, set[str]] = {}
    for e in log.find(ev.VarSet, variable="CALLCYCLE_ATTEMPT_ID"):
        if e.value.startswith(prefix):
            found.setdefault(e.value, set()).add(e.channel)
    return found


def values_by_linkedid(log, variable: str) -> dict[str, set[str]]:
    from pbx import events as ev

    found: dict[str, set[str]] = {}
    for e in log.find(ev.VarSet, variable=variable):
        found.setdefault(e.linkedid, set()).add(e.value)
    return found


async def wait_finished(client, cid: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        campaign = await get(client, f"/dialer/campaigns/{cid}")
        if campaign["state"] == "finished":
            return campaign
        await asyncio.sleep(0.5)
    raise AssertionError(f"campaign {cid} not finished within {timeout} s: {campaign['figures']}")


async def audit(app, cid: int, log, max_attempts: int) -> dict:
    """The invariants every campaign run must keep; returns the rows for more checks."""
    async with app[keys.DB].acquire() as conn:
        leads = await conn.fetch("SELECT * FROM dialer_leads WHERE campaign_id = $1", cid)
        attempts = await conn.fetch("SELECT * FROM dialer_attempts WHERE campaign_id = $1", cid)
        calls = await conn.fetch("SELECT attempt_id, disposition FROM calls WHERE campaign_id = $1", str(cid))
        events = await conn.fetch("SELECT payload FROM outbox_events WHERE event_type = 'call.completed'")
    # every lead reached a final disposition, within its caps
    assert all(r["state"] == "done" and r["final_disposition"] for r in leads), \
        [dict(r) for r in leads if r["state"] != "done"]
    assert max(r["attempts"] for r in leads) <= max_attempts
    # every originate carried its attempt id on one channel pair only, and was ours
    seen = channels_by_attempt(log, f"d{cid}-")
    for attempt_id, chans in seen.items():
        assert len({c.rsplit(";", 1)[0] for c in chans}) == 1 and len(chans) <= 2, (attempt_id, chans)
    ids = {r["id"] for r in attempts}
    assert set(seen) <= ids, set(seen) - ids
    dialed = {r["id"] for r in attempts if r["dialed_at"] is not None}
    assert dialed <= set(seen) | {r["id"] for r in attempts if r["disposition"] == "unknown"}
    # every dial was allowed by every rule, and says so
    for r in attempts:
        assert set(r["allowed_by"]["rules"]) == {"number", "destination", "dnc", "window", "caps", "abandon_rest",
                                                 "machine"}
        assert "refused_by" not in r["allowed_by"]
    # records and CRM events: one per dialed attempt
    recorded = [c["attempt_id"] for c in calls]
    assert sorted(recorded) == sorted(r["id"] for r in attempts if r["disposition"] not in ("refused",)
                                      and not (r["detail"] or {}).get("not_dialed"))
    evented = [e["payload"]["call"]["attempt_id"] for e in events
               if e["payload"]["call"]["campaign_id"] == str(cid)]
    assert sorted(evented) == sorted(recorded)
    # abandoned people heard the safe-harbour message
    heard = values_by_linkedid(log, "CALLCYCLE_SAFE_HARBOUR")
    abandoned = [r for r in attempts if r["disposition"] == "abandoned"]
    live = [r for r in attempts if r["disposition"] in ("answered", "abandoned")]
    if abandoned:
        rate = len(abandoned) / len(live)
        assert rate <= 0.03 or all("played" in heard.get(r["linkedid"], ()) for r in abandoned), \
            [(r["id"], heard.get(r["linkedid"])) for r in abandoned]
    return {"leads": leads, "attempts": attempts, "calls": calls}
