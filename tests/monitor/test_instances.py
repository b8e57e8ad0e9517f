"""Several instances on one Redis and one database: every instance's calls and campaigns
reach every console, actions are forwarded to the instance that can do them, one owner
per Asterisk server, and an instance that stops takes its entities with it."""

from __future__ import annotations

import pytest

from callcycle import keys
from callcycle.app import init_app
from tests.conftest import auth
from tests.monitor.conftest import open_feed
from tests.monitor.sandbox import call_of, start_customer_call
from tests.pbx.tools import eventually


async def test_an_instance_started_later_learns_the_others_and_forwards_campaign_pauses(
        aiohttp_client, monitor_settings):
    settings = monitor_settings()
    b_app = init_app(settings, with_pbx=False)
    await aiohttp_client(b_app)
    paused: list[bool] = []
    b_app[keys.MONITOR].campaigns.register("b-camp", name="B's campaign", pause=paused.append, lines=7)

    a_app = init_app(settings, with_pbx=False)
    a = await aiohttp_client(a_app)
    a_app[keys.MONITOR].campaigns.register("a-camp", lines=1)
    feed = await open_feed(a)
    # B announced its state when A subscribed: both campaigns are on A's console.
    await eventually(lambda: set(feed.entities("campaign")) >= {"a-camp", "b-camp"}, 10)
    assert feed.entity("campaign", "b-camp")["lines"] == 7

    resp = await a.post("/monitor/campaigns/b-camp/pause", json={"paused": True}, headers=auth("supervisor"))
    assert resp.status == 200, await resp.json()
    assert paused == [True]  # B's own control ran
    await eventually(lambda: feed.entity("campaign", "b-camp")["state"] == "paused", 10)
    resp = await a.post("/monitor/campaigns/a-camp/pause", json={"paused": True}, headers=auth("supervisor"))
    assert resp.status == 409 and (await resp.json())["error"] == "not-controllable"
    audit = await (await a.get("/monitor/audit", headers=auth("supervisor"))).json()
    assert [(e["action"], e["target_id"], e["outcome"]) for e in audit["entries"][:2]] == [
        ("campaign_pause", "a-camp", "failed"), ("campaign_pause", "b-camp", "ok")]
    await feed.close()


async def test_a_stopping_instance_takes_its_entities_away(aiohttp_client, monitor_settings):
    settings = monitor_settings()
    a_app, b_app = init_app(settings, with_pbx=False), init_app(settings, with_pbx=False)
    a, b = await aiohttp_client(a_app), await aiohttp_client(b_app)
    feed = await open_feed(a)
    b_app[keys.MONITOR].campaigns.register("leaving", lines=2)
    await eventually(lambda: feed.entity("campaign", "leaving"), 10)
    await b.close()
    await eventually(lambda: feed.entity("campaign", "leaving") is None, 10)
    await feed.close()


@pytest.mark.asterisk
async def test_two_instances_feed_one_dashboard_and_actions_reach_the_connected_one(
        aiohttp_client, monitor_settings, asterisk_env):
    settings = monitor_settings()
    web_app = init_app(settings, with_pbx=False)      # serves consoles, no AMI connection
    pbx_app = init_app(settings, with_pbx=True)       # connected to the sandbox
    web, _ = await aiohttp_client(web_app), await aiohttp_client(pbx_app)
    await pbx_app[keys.PBX].default.client.wait_connected(15)
    web_app[keys.MONITOR].campaigns.register("web-camp", lines=3)
    feed = await open_feed(web)
    attempt, originate = start_customer_call(pbx_app, talk=30, agent_talk=30)
    call = await call_of(feed, attempt)
    assert web_app[keys.MONITOR].board.origin_of("call", call["id"]) == pbx_app[keys.MONITOR].instance
    assert feed.entity("campaign", "web-camp")["lines"] == 3
    # queues and agents travel in their own deltas, possibly after the call's: wait for them
    await eventually(lambda: any(q["name"] == "sales" for q in feed.entities("queue").values()),
                     15, what="the sales queue on the other console")
    await eventually(lambda: feed.entities("agent"), 15, what="the pbx instance's agents on the other console")
    # The web instance cannot reach Asterisk itself: it forwards the hang-up.
    resp = await web.post(f"/monitor/calls/{call['id']}/hangup", headers=auth("supervisor"))
    assert resp.status == 200, await resp.json()
    await eventually(lambda: feed.entity("call", call["id"]) is None, 15)
    await originate
    await feed.close()


@pytest.mark.asterisk
async def test_one_instance_per_asterisk_publishes_and_another_takes_over_when_it_stops(
        aiohttp_client, monitor_settings, asterisk_env):
    settings = monitor_settings()
    one, two = init_app(settings, with_pbx=True), init_app(settings, with_pbx=True)
    c1, c2 = await aiohttp_client(one), await aiohttp_client(two)
    await eventually(lambda: ("main" in one[keys.MONITOR].owned) != ("main" in two[keys.MONITOR].owned), 10)
    owner, other, owner_client = (one, two, c1) if "main" in one[keys.MONITOR].owned else (two, one, c2)
    feed = await open_feed(c2 if owner_client is c1 else c1)
    attempt, originate = start_customer_call(owner, talk=3, agent_talk=1)
    call = await call_of(feed, attempt)
    origins = {other[keys.MONITOR].board.origin_of("call", call["id"])}
    assert origins == {owner[keys.MONITOR].instance}
    await originate
    await owner_client.close()
    await eventually(lambda: "main" in other[keys.MONITOR].owned, 10)
    await feed.close()
