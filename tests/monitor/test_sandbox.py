"""The console against the real sandbox Asterisk: live calls, listen/whisper/barge with a
real ChanSpy channel, hang up, pause an agent, all audited; metrics."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from callcycle import keys
from callcycle.app import init_app
from tests.conftest import auth
from tests.monitor.conftest import open_feed
from tests.monitor.sandbox import call_of, spy_channels, start_customer_call
from tests.pbx.tools import eventually

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def live(aiohttp_client, monitor_settings, asterisk_env):
    app = init_app(monitor_settings(), with_pbx=True)
    client = await aiohttp_client(app)
    await app[keys.PBX].default.client.wait_connected(15)
    await eventually(lambda: "main" in app[keys.MONITOR].owned, 10)
    return app, client


async def test_a_sandbox_call_appears_changes_state_and_disappears(live):
    app, client = live
    feed = await open_feed(client)
    attempt, originate = start_customer_call(app, talk=4, agent_talk=2)
    call = await call_of(feed, attempt)
    cid = call["id"]
    await eventually(lambda: feed.entity("call", cid) is None and feed.deltas("call", lambda m: m["id"] == cid
                                                                             and m["data"] is None), 30)
    views = [m["data"] for m in feed.deltas("call", lambda m: m["id"] == cid and m["data"])]
    states = [v["state"] for v in views]
    assert "answered" in states or "bridged" in states, states
    assert len(set(states)) >= 2, states
    assert views[-1]["direction"] == "outbound" and views[-1]["server"] == "main"
    assert all(m["at"] for m in feed.deltas("call", lambda m: m["id"] == cid)[:3]), "event deltas carry their time"
    assert (await originate).success
    await feed.close()


async def test_listen_then_whisper_spies_on_the_call_and_hangup_ends_it_all_audited(live):
    app, client = live
    feed = await open_feed(client)
    attempt, originate = start_customer_call(app, talk=40, agent_talk=40)
    call = await call_of(feed, attempt)
    cid = call["id"]
    await eventually(lambda: (feed.entity("call", cid) or {}).get("state") in ("answered", "bridged"), 15)

    resp = await client.post(f"/monitor/calls/{cid}/spy", json={"mode": "listen"}, headers=auth("supervisor"))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["action"] == "listen" and body["subject"] == "test-supervisor" and body["outcome"] == "ok"
    target = feed.entity("call", cid)
    target_channel = target.get("agent_channel") or target["channel"]
    # Asterisk itself has a ChanSpy channel on the call.
    assert await eventually(lambda: spy_channels(target_channel), 10)
    leg = await eventually(lambda: next((c for c in feed.entities("call").values()
                                         if (c.get("spy") or {}).get("call_id") == cid), None), 10)
    assert leg["direction"] == "spy" and leg["spy"]["mode"] == "listen"
    await eventually(lambda: feed.entity("call", cid)["spied_by"] == [{"supervisor": "test-supervisor",
                                                                       "mode": "listen"}], 10)

    # Switching mode plays the digit into the running ChanSpy: no second ring, same leg.
    resp = await client.post(f"/monitor/calls/{cid}/spy", json={"mode": "whisper"}, headers=auth("supervisor"))
    assert resp.status == 200, await resp.json()
    await eventually(lambda: (feed.entity("call", leg["id"]) or {}).get("spy", {}).get("mode") == "whisper", 10)
    spy_call = app[keys.PBX].default.router.calls.get(leg["linkedid"])
    assert spy_call is not None and "5" in spy_call.digits
    assert spy_channels(target_channel)

    resp = await client.post(f"/monitor/calls/{cid}/hangup", headers=auth("supervisor"))
    assert resp.status == 200, await resp.json()
    await eventually(lambda: feed.entity("call", cid) is None, 15)
    await eventually(lambda: feed.entity("call", leg["id"]) is None, 15)  # ChanSpy's E option
    await originate

    resp = await client.get("/monitor/audit", params={"target_id": cid}, headers=auth("supervisor"))
    actions = [(e["action"], e["subject"], e["outcome"]) for e in (await resp.json())["entries"]]
    assert actions == [("hangup", "test-supervisor", "ok"), ("whisper", "test-supervisor", "ok"),
                       ("listen", "test-supervisor", "ok")]
    shown = {e["action"] for e in feed.entities("audit").values() if e["target_id"] == cid}
    assert shown == {"listen", "whisper", "hangup"}
    await feed.close()


async def test_an_agent_role_may_watch_but_not_act(live):
    app, client = live
    attempt, originate = start_customer_call(app, talk=3, agent_talk=1)
    feed = await open_feed(client, "agent")
    call = await call_of(feed, attempt)
    resp = await client.post(f"/monitor/calls/{call['id']}/spy", json={"mode": "listen"}, headers=auth("agent"))
    assert resp.status == 403
    await originate
    await feed.close()


async def test_pausing_an_agent_reaches_asterisk_and_is_audited(live):
    app, client = live
    srv = app[keys.PBX].default
    name = f"ccmon{uuid.uuid4().hex[:8]}"
    interface, device = f"Local/{name}@sim-supervisor", f"Custom:{name}"
    # A member of our own that app_queue never rings (its device is unavailable), so other
    # engineers' queue calls are not disturbed.
    await srv.client.send({"Action": "Setvar", "Variable": f"DEVICE_STATE({device})", "Value": "UNAVAILABLE"})
    # as_list=False: panoramisk would wait for a list after "Added interface to queue".
    await srv.client.send({"Action": "QueueAdd", "Queue": "support", "Interface": interface, "MemberName": name,
                           "StateInterface": device, "Paused": "true"}, as_list=False)
    try:
        feed = await open_feed(client)
        await srv.client.send({"Action": "QueuePause", "Queue": "support", "Interface": interface,
                               "Paused": "false"})
        aid = f"main:{interface}"
        await eventually(lambda: (feed.entity("agent", aid) or {}).get("paused") is False, 10)
        resp = await client.post("/monitor/agents/pause", json={"agent": aid, "paused": True, "reason": "coaching"},
                                 headers=auth("supervisor"))
        assert resp.status == 200, await resp.json()
        await eventually(lambda: feed.entity("agent", aid)["paused_reason"] == "coaching", 10)
        assert feed.entity("agent", aid)["state"] == "paused"
        resp = await client.post("/monitor/agents/pause", json={"agent": aid, "paused": False},
                                 headers=auth("supervisor"))
        assert resp.status == 200
        await eventually(lambda: feed.entity("agent", aid)["paused"] is False, 10)
        audit = await (await client.get("/monitor/audit", params={"target_id": aid},
                                        headers=auth("supervisor"))).json()
        assert [e["action"] for e in audit["entries"]] == ["agent_resume", "agent_pause"]
        assert audit["entries"][1]["detail"] == {"reason": "coaching"}
        await feed.close()
    finally:
        await srv.client.send({"Action": "QueueRemove", "Queue": "support", "Interface": interface}, as_list=False)


async def test_an_action_on_a_call_that_is_gone_is_refused_and_audited(live):
    app, client = live
    resp = await client.post("/monitor/calls/main:0000.1/hangup", headers=auth("supervisor"))
    assert resp.status == 404 and (await resp.json())["error"] == "no-such-entity"
    audit = await (await client.get("/monitor/audit", headers=auth("supervisor"))).json()
    assert audit["entries"][0]["outcome"] == "failed" and audit["entries"][0]["target_id"] == "main:0000.1"


async def test_metrics_report_calls_ami_loop_lag_webhooks_dialer_and_flows(live):
    app, client = live
    mon = app[keys.MONITOR]
    mon.campaigns.register("metrics-c", lines=4, abandon_rate=0.021)
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=auth("agent"))).status == 403
    await asyncio.sleep(0.6)  # one lag probe
    resp = await client.get("/metrics", headers=auth("supervisor"))
    text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    for needle in ('callcycle_calls{server="main",state="answered"}', 'callcycle_ami_events_total{kind="events",server="main"}',
                   'callcycle_ami_reconnects_total{server="main"}', "callcycle_event_loop_lag_seconds_bucket",
                   "callcycle_webhook_backlog", 'callcycle_dialer_lines{campaign="metrics-c"} 4.0',
                   'callcycle_dialer_abandon_rate{campaign="metrics-c"} 0.021', "callcycle_flow_outcomes_total",
                   "callcycle_monitor_clients"):
        assert needle in text, needle
