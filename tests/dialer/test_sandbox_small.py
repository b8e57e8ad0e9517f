"""Small campaigns on the real sandbox: every kind of simulated person; the 2 s rule with
its safe-harbour message; the pacing explained through the API; a call that ends while
the AMI connection is down."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from callcycle import keys
from dialer.unseen import ended_family
from dialer.models import AttemptState
from pbx import events as ev
from tests.dialer.conftest import (add_contacts, audit, create_campaign, get, post, sim_number, wait_finished,
                                   zone_inside_window)
from tests.conftest import auth
from tests.pbx.tools import TcpProxy, asterisk_cli, eventually

pytestmark = pytest.mark.asterisk


async def test_a_progressive_campaign_reaches_every_kind_of_person_and_records_each_call(make_app, dialer_env, watch):
    client = await make_app(**dialer_env)
    app = client.server.app
    kinds = {sim_number("answer", 1): "answered", sim_number("answer", 2, press=1): "answered",
             sim_number("busy", 3): "busy", sim_number("noanswer", 4): "no_answer",
             sim_number("machine", 5): "machine", sim_number("congestion", 6): "congestion"}
    await add_contacts(app, list(kinds), zone_inside_window(), "small")
    campaign = await create_campaign(client, "progressive", amd=True, max_attempts=1, max_attempts_per_day=1)
    cid = campaign["id"]
    assert (await post(client, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "small"}}, 201))["added"] == 6
    await post(client, f"/dialer/campaigns/{cid}/start")
    await wait_finished(client, cid, 60)

    found = await audit(app, cid, watch, max_attempts=1)
    by_phone = {r["phone"]: r for r in found["attempts"]}
    assert {p: by_phone[p]["disposition"] for p in kinds} == kinds
    presser = by_phone[sim_number("answer", 2, press=1)]
    assert presser["digits"] == "1" and presser["agent"].startswith("agent")
    assert by_phone[sim_number("machine", 5)]["amd_result"].startswith("MACHINE")
    assert by_phone[sim_number("answer", 1)]["amd_result"].startswith("NOTSURE")   # a silent person
    async with app[keys.DB].acquire() as conn:
        tags = await conn.fetchval("SELECT tags FROM contacts c JOIN contact_phones p ON p.contact_id = c.id "
                                   "WHERE p.phone = $1", sim_number("answer", 2, press=1))
        machine_at = await conn.fetchval("SELECT machine_at FROM dialer_numbers WHERE phone = $1",
                                         sim_number("machine", 5))
    assert "high_intent" in tags          # pressing 1 tags the lead through lifecycle's rules
    assert machine_at is not None         # not re-called today without a guaranteed agent


async def test_answered_people_no_agent_takes_within_2_s_hear_the_safe_harbour_message(make_app, dialer_env, watch):
    # 14 people answer at once, 5 agents talk 6 s: most cannot be connected in time.
    client = await make_app(**{**dialer_env, "CALLCYCLE_DIALER_ORIGINATE_VARIABLES": "__SIM_AGENT_TALK=6"})
    app = client.server.app
    phones = [sim_number("answer", 10 + i) for i in range(14)]
    await add_contacts(app, phones, zone_inside_window(), "flood")
    campaign = await create_campaign(client, "power", pacing={"ratio": 3.0}, max_lines=14,
                                     safe_harbour_message="privacy-thankyou")
    cid = campaign["id"]
    await post(client, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "flood"}}, 201)
    await post(client, f"/dialer/campaigns/{cid}/start")
    figures = await get(client, f"/dialer/campaigns/{cid}/figures")
    await wait_finished(client, cid, 60)

    found = await audit(app, cid, watch, max_attempts=3)
    abandoned = [r for r in found["attempts"] if r["disposition"] == "abandoned"]
    assert abandoned, "the flood should overflow 5 agents"
    assert all(r["safe_harbour"] == "played" for r in abandoned)
    assert all(r["agent"] is None for r in abandoned)
    leads = {r["id"]: r for r in found["leads"]}
    assert all(leads[r["lead_id"]]["final_disposition"] == "abandoned" for r in abandoned)   # 72 h rest: not again
    assert len(found["attempts"]) == 14                                                       # nobody called twice
    async with app[keys.DB].acquire() as conn:
        rested = await conn.fetchval("SELECT count(*) FROM dialer_numbers WHERE last_abandoned_at IS NOT NULL")
    assert rested == len(abandoned)
    figures = await get(client, f"/dialer/campaigns/{cid}/figures")
    assert figures["abandon_rate_24h"] == round(len(abandoned) / 14, 4)


async def test_an_agentless_campaign_hands_answered_people_to_the_ivr_flow_which_records_them(make_app, dialer_env,
                                                                                             watch):
    owner = f"dialer-test-{uuid.uuid4().hex[:8]}"   # the shared sandbox: only our IVR drives our calls
    client = await make_app(CALLCYCLE_IVR_OWNER=owner, **{
        **dialer_env, "CALLCYCLE_DIALER_ORIGINATE_VARIABLES": f"__SIM_AGENT_TALK=2,CALLCYCLE_IVR_OWNER={owner}"})
    app = client.server.app
    yes, no, busy = sim_number("answer", 31, press=1), sim_number("answer", 32, press=2), sim_number("busy", 33)
    await add_contacts(app, [yes, no, busy], zone_inside_window(), "press1")
    campaign = await create_campaign(client, "agentless", flow="screening", max_lines=3, max_attempts=1)
    cid = campaign["id"]
    await post(client, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "press1"}}, 201)
    await post(client, f"/dialer/campaigns/{cid}/start")
    await wait_finished(client, cid, 60)

    async def recorded() -> int:
        async with app[keys.DB].acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM calls WHERE campaign_id = $1", str(cid))
    for _ in range(50):                       # the IVR records its calls when its sessions end
        if await recorded() == 3:
            break
        await asyncio.sleep(0.2)
    found = await audit(app, cid, watch, max_attempts=1)
    by_phone = {r["phone"]: r for r in found["attempts"]}
    assert {p: by_phone[p]["disposition"] for p in (yes, no, busy)} == {yes: "answered", no: "answered",
                                                                         busy: "busy"}
    async with app[keys.DB].acquire() as conn:
        intents = {r["attempt_id"]: r["intent"] for r in await conn.fetch(
            "SELECT attempt_id, intent FROM calls WHERE campaign_id = $1", str(cid))}
    assert intents[by_phone[yes]["id"]] == "high_intent" and intents[by_phone[no]["id"]] == "low_intent"


@pytest.mark.timeout(120)
async def test_a_call_that_an_agent_took_while_the_ami_connection_was_down_is_recorded_as_answered(
        make_app, dialer_env, watch, asterisk_env):
    """The connection drops while the person is under AMD; an agent takes the call and it
    ends before the connection is back. Nobody saw that: the dialplan's hangup handler kept
    it in AstDB, and the attempt is recorded as answered by that agent (it was abandoned,
    or unknown, before). The handler's once-a-day clean-up removes older days."""
    stale = ended_family(time.time() - 3 * 86400)    # the handler deletes such days, once a day
    asterisk_cli(f"database put {stale} d9-9-old 1:2:agent::agent1")
    asterisk_cli("dialplan set global CALLCYCLE_ENDED_CLEANED 0")
    proxy = TcpProxy(int(asterisk_env.get("CALLCYCLE_ASTERISK_MAIN_PORT", "5038")))
    await proxy.start()
    try:
        client = await make_app(CALLCYCLE_ASTERISK_MAIN_PORT=str(proxy.port),
                                **{**dialer_env, "CALLCYCLE_DIALER_ORIGINATE_VARIABLES": "__SIM_AGENT_TALK=2"})
        app = client.server.app
        await add_contacts(app, [sim_number("answer", 41)], zone_inside_window(), "outage")
        campaign = await create_campaign(client, "progressive", amd=True, max_attempts=1, max_attempts_per_day=1)
        cid = campaign["id"]
        await post(client, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "outage"}}, 201)
        await post(client, f"/dialer/campaigns/{cid}/start")
        observer = app[keys.DIALER_ENGINE].d.observer
        answered = await eventually(lambda: next((t for t in observer.traces.values()
                                                  if t.state is AttemptState.ANSWERED), None), 30, what="an answer")
        proxy.block()                        # AMD is still listening to the silent person
        await eventually(lambda: watch.find(ev.CallEnded, linkedid=answered.linkedid), 40, what="the call's end")
        assert answered.state in (AttemptState.ANSWERED, AttemptState.WAITING)   # nobody told the app
        proxy.unblock()
        await wait_finished(client, cid, 60)
    finally:
        await proxy.stop()
    found = await audit(app, cid, watch, max_attempts=1)
    (row,) = found["attempts"]
    assert watch.find(ev.AgentConnect, linkedid=answered.linkedid)   # the witness saw the agent take it
    # the channel our originate made is the first of its call (the observer's adopt relies on it)
    tagged = {e.uniqueid: e.channel for e in watch.find(ev.VarSet, variable="CALLCYCLE_ATTEMPT_ID",
                                                        linkedid=answered.linkedid)}
    assert tagged.get(answered.linkedid, "").endswith(";1"), tagged
    assert (row["disposition"], row["detail"]["end"]) == ("answered", "ended_during_ami_outage")
    assert row["agent"].startswith("agent") and row["connected_at"] is not None
    # the simulated agent talks 2 s; AstDB's epochs are whole seconds (connect = queue join +
    # hold time, two truncations; end, one), so the recorded talk is 2 s within -1/+2
    assert 1 <= row["talk_seconds"] <= 4
    assert "0 results" in asterisk_cli(f"database show {stale}")


async def test_a_preview_agent_is_rung_first_so_a_number_reached_on_a_machine_today_may_be_called(
        make_app, dialer_env, watch):
    client = await make_app(**{**dialer_env, "CALLCYCLE_DIALER_AGENT_ENDPOINT": "Local/{agent}@sim-preview-agent",
                               "CALLCYCLE_DIALER_ORIGINATE_VARIABLES": "__SIM_TALK=2"})
    app = client.server.app
    machine, busy = sim_number("machine", 40), sim_number("busy", 41)
    await add_contacts(app, [machine, busy], zone_inside_window(), "preview")
    async with app[keys.DB].acquire() as conn:   # a machine answered this number an hour ago
        await conn.execute("INSERT INTO dialer_numbers (phone, machine_at, updated_at) "
                           "VALUES ($1, now() - interval '1 hour', now())", machine)
    campaign = await create_campaign(client, "preview", max_attempts=1, max_attempts_per_day=1)
    cid = campaign["id"]
    await post(client, f"/dialer/campaigns/{cid}/leads", {"segment": {"tag": "preview"}}, 201)
    await post(client, f"/dialer/campaigns/{cid}/start")
    for _ in range(2):   # the agent looks at the best lead, chooses it, and talks to its customer
        resp = await client.get(f"/dialer/campaigns/{cid}/preview", headers=auth("agent"))
        lead = (await resp.json())["lead"]
        resp = await client.post(f"/dialer/campaigns/{cid}/leads/{lead['id']}/dial", headers=auth("agent"))
        assert resp.status == 202
        await eventually(lambda lead_id=lead["id"]: lead_done(app, lead_id), timeout=45, what=f"lead {lead['id']} done")
    await wait_finished(client, cid, 60)

    found = await audit(app, cid, watch, max_attempts=1)
    by_phone = {r["phone"]: r for r in found["attempts"]}
    # the agent was on the line first: the machine's greeting went to a person, no abandon, no AMD
    reached = by_phone[machine]
    assert reached["disposition"] == "answered" and reached["agent"] == "test-agent", dict(reached)
    assert (reached["connected_at"] - reached["answered_at"]).total_seconds() < 2 and reached["amd_result"] is None
    assert reached["allowed_by"]["rules"]["machine"]["guaranteed_agent"] is True
    assert reached["allowed_by"]["rules"]["machine"]["same_day"] is True
    assert by_phone[busy]["disposition"] == "busy"
    # the agent's phone was the originated channel, the customer's was dialed from it
    first = {e.channel for e in watch.find(ev.VarSet, variable="CALLCYCLE_ATTEMPT_ID") if e.value == reached["id"]}
    assert first and all(c.startswith("Local/test-agent@sim-preview-agent") for c in first), first
    # and the hangup handler kept how it went for a dialer that missed the events
    kept = await app[keys.PBX].default.actions.db_get(ended_family(reached["ended_at"].timestamp()), reached["id"])
    assert kept is not None and kept.split(":")[2] == "agent" and kept.split(":")[5] == "test-agent", kept


async def lead_done(app, lead_id: int) -> bool:
    async with app[keys.DB].acquire() as conn:
        return await conn.fetchval("SELECT state FROM dialer_leads WHERE id = $1", lead_id) == "done"
