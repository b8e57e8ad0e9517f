"""Several server instances on one campaign: exactly one paces it (the Redis lease); when
it stops, or dies, another takes over its calls and its leads without dialing anyone
twice (the fencing token, and every instance watching every attempt)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections import defaultdict

import aiohttp
import pytest

from callcycle import keys
from dialer.lease import lease_key
from tests.conftest import ROOT
from tests.dialer.conftest import (add_contacts, audit, channels_by_attempt, create_campaign, post, sim_number,
                                   wait_finished, zone_inside_window)
from tests.pbx.tools import eventually

pytestmark = pytest.mark.asterisk
TOKEN = "leader-test-admin-token-0123456789"


def people(n: int, first: int) -> list[str]:
    kinds = ("answer", "busy", "answer", "noanswer", "answer")
    return [sim_number(kinds[i % len(kinds)], first + i, press=i % 2) for i in range(n)]


async def count(app, sql: str, *args) -> int:
    async with app[keys.DB].acquire() as conn:
        return await conn.fetchval(sql, *args)


def assert_nobody_dialed_twice(found: dict) -> None:
    """A lead is dialed again only after its previous attempt ended, and never after a
    person was reached; an attempt id is a single originate (checked in audit)."""
    by_lead = defaultdict(list)
    for r in found["attempts"]:
        by_lead[r["lead_id"]].append(r)
    for rows in by_lead.values():
        rows.sort(key=lambda r: r["created_at"])
        for earlier, later in zip(rows, rows[1:]):
            assert earlier["ended_at"] is not None and earlier["ended_at"] <= later["created_at"], (earlier, later)
            assert earlier["disposition"] not in ("answered", "abandoned", "machine"), (earlier, later)


async def test_two_instances_one_paces_and_the_other_takes_over_when_it_shuts_down(make_app, dialer_env, watch):
    a = await make_app(**dialer_env)
    b = await make_app(**dialer_env)
    apps = {"a": a.server.app, "b": b.server.app}
    await add_contacts(apps["a"], people(16, 300), zone_inside_window(), "pair")
    campaign = await create_campaign(a, "predictive", max_attempts=2, expected_answer_rate=0.5, expected_handle_s=3,
                                     retry_delays={"busy": 1, "no_answer": 1})
    cid = campaign["id"]
    await post(a, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "pair"}}, 201)
    await post(a, f"/dialer/campaigns/{cid}/start")
    await eventually(lambda: any(cid in app[keys.DIALER_ENGINE].leading() for app in apps.values()), 10)
    for _ in range(15):                              # exactly one of them paces it
        leading = [name for name, app in apps.items() if cid in app[keys.DIALER_ENGINE].leading()]
        assert len(leading) == 1, leading
        await asyncio.sleep(0.2)
    leader, other = (a, b) if leading == ["a"] else (b, a)
    holder = leader.server.app[keys.DIALER_ENGINE].d.holder
    while await count(leader.server.app, "SELECT count(*) FROM dialer_attempts") < 6:
        await asyncio.sleep(0.1)
    await leader.close()                             # a graceful shutdown: stop dialing, hand over
    await wait_finished(other, cid, 90)

    found = await audit(other.server.app, cid, watch, max_attempts=2)
    holders = {r["holder"] for r in found["attempts"]}
    assert holder in holders and len(holders) == 2   # both led, one after the other
    assert_nobody_dialed_twice(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_when_the_leader_is_killed_another_instance_takes_over_its_calls(make_app, dialer_env, watch,
                                                                              asterisk_env, db_url, redis_url,
                                                                              tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCYCLE_")}
    env.update({**asterisk_env, **dialer_env, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
                "CALLCYCLE_SERVER_PORT": str(port), "CALLCYCLE_SERVER_DATA_DIR": str(tmp_path / "killed"),
                "CALLCYCLE_API_TOKENS": f"ops:admin:{TOKEN}", "CALLCYCLE_SERVER_LOG_FORMAT": "json"})
    setup = await make_app(with_pbx=False)           # writes contacts and the campaign; never dials
    app = setup.server.app
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "callcycle", "serve", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/ready",
                                        headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False
            deadline = time.monotonic() + 30
            while not await ready():
                assert time.monotonic() < deadline and proc.returncode is None, "the instance to kill did not start"
                await asyncio.sleep(0.2)
        await add_contacts(app, people(20, 400), zone_inside_window(), "kill")
        campaign = await create_campaign(setup, "predictive", max_attempts=2, expected_answer_rate=0.5,
                                         expected_handle_s=3, retry_delays={"busy": 1, "no_answer": 1})
        cid = campaign["id"]
        await post(setup, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "kill"}}, 201)
        await post(setup, f"/dialer/campaigns/{cid}/start")
        redis = app[keys.REDIS]
        deadline = time.monotonic() + 15
        key = lease_key(app[keys.DIALER].namespace, cid)
        while f":{proc.pid}:".encode() not in (await redis.get(key) or b""):
            assert time.monotonic() < deadline, "the subprocess never took the lease"
            await asyncio.sleep(0.1)
        survivor = await make_app(**dialer_env)      # a second instance, standing by
        engine = survivor.server.app[keys.DIALER_ENGINE]
        for _ in range(10):
            assert cid not in engine.leading()       # it does not pace what another leads
            await asyncio.sleep(0.1)
        while await count(app, "SELECT count(*) FROM dialer_attempts WHERE ended_at IS NULL "
                               "AND dialed_at IS NOT NULL") < 3:
            await asyncio.sleep(0.05)
        live_at_kill = await count(app, "SELECT count(*) FROM dialer_attempts WHERE ended_at IS NULL")
        os.kill(proc.pid, signal.SIGKILL)            # no shutdown, no lease release
        await proc.wait()
        await eventually(lambda: cid in engine.leading(), 10)
        await wait_finished(survivor, cid, 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    found = await audit(app, cid, watch, max_attempts=2)
    killed = [r for r in found["attempts"] if f":{proc.pid}:" in r["holder"]]
    assert live_at_kill >= 3 and killed
    # Every call Asterisk ran for the killed leader was adopted and recorded as it went. Only
    # an Originate that died with the leader (written, never read by Asterisk: no channel
    # ever carried its id) may stay "unknown", and is never dialed again (the audit below).
    ran = channels_by_attempt(watch, f"d{cid}-")
    lost = [r for r in killed if r["ended_at"] is None or (r["disposition"] == "unknown" and r["id"] in ran)]
    assert not lost, "\n".join(repr(dict(r)) for r in lost)
    assert_nobody_dialed_twice(found)
