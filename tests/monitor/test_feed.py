"""The live feed without Asterisk: snapshot then deltas over WebSocket and SSE, roles,
bounded per-client queues (a slow client is dropped, the others get everything),
reconnect with a fresh snapshot."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from callcycle import keys
from callcycle.app import init_app
from callcycle.logs import mask_phone
from monitor.feed import CLOSE_SLOW
from tests.conftest import ROLE_TOKENS, auth
from tests.monitor.conftest import open_feed
from tests.pbx.tools import eventually


async def test_websocket_sends_a_snapshot_then_a_delta_per_change(aiohttp_client, monitor_settings):
    app = init_app(monitor_settings(), with_pbx=False)
    client = await aiohttp_client(app)
    mon = app[keys.MONITOR]
    mon.campaigns.register("c1", name="Spring", lines=3)
    feed = await open_feed(client)
    assert feed.snapshot["entities"]["campaign"]["c1"]["lines"] == 3
    assert feed.snapshot["role"] == "supervisor" and feed.snapshot["subject"] == "test-supervisor"
    seq0 = feed.snapshot["seq"]
    mon.campaigns.update("c1", lines=5, abandon_rate=0.02)
    await eventually(lambda: feed.deltas("campaign"), 5)
    delta = feed.deltas("campaign")[0]
    assert delta["seq"] > seq0 and delta["id"] == "c1"
    assert delta["data"]["lines"] == 5 and delta["data"]["abandon_rate"] == 0.02
    mon.campaigns.unregister("c1")
    await eventually(lambda: feed.entity("campaign", "c1") is None, 5)
    await feed.close()


async def test_sse_sends_the_same_snapshot_and_deltas(aiohttp_client, monitor_settings):
    app = init_app(monitor_settings(), with_pbx=False)
    client = await aiohttp_client(app)
    resp = await client.get("/monitor/events", params={"access_token": ROLE_TOKENS["supervisor"]})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    app[keys.MONITOR].campaigns.register("c9", lines=1)
    frames: list[dict] = []
    # Other deltas (the stage counts refreshed from the database) may come in between.
    while not any(f.get("kind") == "campaign" and f.get("id") == "c9" for f in frames):
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode()
        if line.startswith("data: "):
            data = json.loads(line[6:])  # one message, or a batch of them in order
            frames.extend(data if isinstance(data, list) else [data])
    assert frames[0]["type"] == "snapshot"
    assert all(f["type"] == "delta" for f in frames[1:])
    c9 = next(f for f in frames if f.get("id") == "c9")
    assert c9["data"]["lines"] == 1 and c9["seq"] > frames[0]["seq"]
    resp.close()


async def test_an_agent_sees_masked_callers_and_no_campaigns_or_audit(aiohttp_client, monitor_settings):
    app = init_app(monitor_settings(), with_pbx=False)
    client = await aiohttp_client(app)
    mon = app[keys.MONITOR]
    mon.campaigns.register("secret", lines=2)
    agent, boss = await open_feed(client, "agent"), await open_feed(client, "supervisor")
    assert "campaign" not in agent.snapshot["entities"] and "audit" not in agent.snapshot["entities"]
    assert "secret" in boss.snapshot["entities"]["campaign"]
    mon.publish("call", "x:1", {"id": "x:1", "server": "x", "caller": "+14155550123", "started_at": 1.0,
                                "caller_name": "+14155550123", "channel": "Local/+14155550123@trunk-0001;1",
                                "channels": ["Local/+14155550123@trunk-0001;1", "PJSIP/agent1-00000001"]})
    mon.campaigns.update("secret", lines=4)
    await eventually(lambda: boss.deltas("call") and boss.deltas("campaign"), 5)
    await eventually(lambda: agent.deltas("call"), 5)
    seen = agent.entity("call", "x:1")
    assert seen["caller"] == mask_phone("+14155550123") != "+14155550123"
    assert "+14155550123" not in str(seen)   # nor in the caller name or the channel names
    assert seen["channels"][1] == "PJSIP/agent1-00000001"
    assert boss.entity("call", "x:1")["caller"] == "+14155550123"
    assert agent.deltas("campaign") == []
    for feed in (agent, boss):
        await feed.close()


async def test_feed_endpoints_refuse_no_token_and_the_crm_role(aiohttp_client, monitor_settings):
    client = await aiohttp_client(init_app(monitor_settings(), with_pbx=False))
    for path in ("/monitor/ws", "/monitor/events", "/monitor/snapshot", "/metrics"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=auth("crm"))).status == 403, path
    for path in ("/monitor/ws", "/monitor/events"):   # browsers cannot set headers on these two
        assert (await client.get(path, params={"access_token": ROLE_TOKENS["crm"]})).status == 403, path
    # anywhere else a token in the URL (history, Referer, proxy logs) is not taken
    for path in ("/monitor/snapshot", "/metrics"):
        assert (await client.get(path, params={"access_token": ROLE_TOKENS["supervisor"]})).status == 401, path
    page = await client.get("/monitor")  # public, and holds no data: only the login form
    assert page.status == 200 and 'id="login-form"' in await page.text()


async def test_a_slow_client_is_dropped_and_never_stalls_the_others(aiohttp_client, monitor_settings):
    app = init_app(monitor_settings(CALLCYCLE_MONITOR_FEED_QUEUE_SIZE="64"), with_pbx=False)
    client = await aiohttp_client(app)
    mon = app[keys.MONITOR]
    fast = await open_feed(client)
    # The slow one never reads: its socket buffers fill, then its queue of 64.
    slow = await client.ws_connect("/monitor/ws", params={"access_token": ROLE_TOKENS["supervisor"]})
    await eventually(lambda: len(mon.hub.clients) == 2, 5)
    blob = "x" * 16384
    sent = 0
    while mon.hub.stats["dropped"] == 0 and sent < 20000:
        for _ in range(16):  # bursts well under the queue size, as a busy contact centre sends
            mon.campaigns.update("load", n=sent, blob=blob)
            sent += 1
        await asyncio.sleep(0.005)
    assert mon.hub.stats["dropped"] == 1, "the slow client was never dropped"
    for _ in range(16):
        mon.campaigns.update("load", n=sent, blob=blob)
        sent += 1
    # The fast client kept up: it got the latest state, in order (a change superseded
    # within one flush is sent once, in its latest state).
    await eventually(lambda: fast.deltas("campaign") and fast.deltas("campaign")[-1]["data"]["n"] == sent - 1, 20)
    seqs = [m["seq"] for m in fast.messages[1:] if m["type"] == "delta"]   # not the periodic samples
    assert seqs == sorted(set(seqs))
    ns = [d["data"]["n"] for d in fast.deltas("campaign")]
    assert ns == sorted(set(ns)) and ns[-1] == sent - 1
    # The slow client, reading at last, finds the close frame with the reason.
    async for _msg in slow:
        pass
    assert slow.close_code == CLOSE_SLOW
    assert len(mon.hub.clients) == 1 and mon.hub.stats["dropped"] == 1
    await fast.close()


async def test_a_reconnecting_client_gets_a_fresh_snapshot(aiohttp_client, monitor_settings):
    app = init_app(monitor_settings(), with_pbx=False)
    client = await aiohttp_client(app)
    mon = app[keys.MONITOR]
    mon.campaigns.register("a", lines=1)
    first = await open_feed(client)
    await first.close()
    mon.campaigns.register("b", lines=2)
    mon.campaigns.update("a", lines=7)
    second = await open_feed(client)
    assert second.snapshot["seq"] > first.snapshot["seq"]
    campaigns = second.snapshot["entities"]["campaign"]
    assert campaigns["a"]["lines"] == 7 and campaigns["b"]["lines"] == 2
    await second.close()


async def test_snapshot_endpoint_returns_the_board_with_stage_kpis_as_json(aiohttp_client, monitor_settings):
    app = init_app(monitor_settings(), with_pbx=False)
    client = await aiohttp_client(app)
    app[keys.MONITOR].campaigns.register("s", lines=1)
    await eventually(lambda: app[keys.MONITOR].board.get("kpis", "stages"), 10)
    resp = await client.get("/monitor/snapshot", headers=auth("supervisor"))
    body = await resp.json()
    assert resp.status == 200 and body["entities"]["campaign"]["s"]["lines"] == 1
    kpis = body["entities"]["kpis"]["stages"]
    assert kpis["window_hours"] == 24.0 and kpis["stages"]["acquisition"]["high_intent_rate_target"] == 0.3
    me = await (await client.get("/monitor/me", headers=auth("agent"))).json()
    assert me["role"] == "agent" and me["can_act"] is False


async def test_websocket_with_an_unknown_token_is_refused(aiohttp_client, monitor_settings):
    client = await aiohttp_client(init_app(monitor_settings(), with_pbx=False))
    try:
        await client.ws_connect("/monitor/ws", params={"access_token": "nope-nope-nope-nope"})
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401
    else:
        raise AssertionError("the handshake was accepted")
