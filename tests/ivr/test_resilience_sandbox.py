"""The IVR when things go wrong on the sandbox: the AMI connection cut mid-flow (through a
TcpProxy), AMI down for good, a call vanishing during an outage, flows reloaded while a call
is in the menu. Every session ends with a clear outcome; none is left behind."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from callcycle import keys
from pbx import events as ev
from tests.conftest import ROOT, auth
from tests.ivr.conftest import poll
from tests.pbx.tools import TcpProxy

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def proxy(asterisk_env):
    p = TcpProxy(int(asterisk_env.get("CALLCYCLE_ASTERISK_MAIN_PORT", "5038")))
    await p.start()
    yield p
    await p.stop()


async def _in_menu_wait(ivr, linkedid: str) -> None:
    """Until the session has played the menu prompt and waits for a key."""
    seen: list[str] = []
    ivr.service.observers.append(lambda kind, s, _t, _d: seen.append(kind) if s.linkedid == linkedid else None)
    await poll(lambda: "waiting" in seen, 15, "the menu's wait for a key")
    await asyncio.sleep(1.0)   # GET OPTION played its file and waits for a key


async def test_ami_cut_mid_menu_resumes_the_flow_and_the_key_pressed_after_it_still_counts(make_ivr, proxy):
    ivr = await make_ivr(port=proxy.port)
    client = ivr.app[keys.PBX].default.client
    linkedid = await ivr.call(SIM_DIGIT="1", SIM_DIGIT_DELAY="3.5", SIM_TALK="4")
    await _in_menu_wait(ivr, linkedid)   # both prompt files played: WAIT FOR DIGIT 3000 is running
    proxy.cut()
    await poll(lambda: client.stats["disconnects"] >= 1 and client.connected, 10, "the reconnect")
    s = await ivr.session(linkedid)
    assert (s["outcome"], s["intent"], s["digits"], s["transfer_to"]) == ("transferred", "high_intent", "1", "sales")
    await poll(lambda: ivr.events.find(ev.QueueCallerJoin, linkedid=linkedid), 10, "QueueCallerJoin")
    assert ivr.service.sessions == {}


async def test_ami_down_longer_than_the_grace_ends_the_session_and_the_channel_is_hung_up_when_it_returns(
        make_ivr, proxy):
    ivr = await make_ivr(port=proxy.port, CALLCYCLE_IVR_RECONNECT_GRACE="2")
    linkedid = await ivr.call(SIM_DIGIT="", SIM_TALK="30")
    await _in_menu_wait(ivr, linkedid)
    proxy.block()
    s = await ivr.session(linkedid, timeout=15)
    assert (s["outcome"], s["last_node"]) == ("ivr_failed", "ask")
    assert "AMI not back within 2 s" in s["error"]
    # the session forgets itself once its record and error are written, an instant after
    await poll(lambda: ivr.service.sessions == {}, 10, "the session ended")
    proxy.unblock()
    # Parked in AsyncAGI with nobody driving it, the channel would wait forever: we hang it up.
    await poll(lambda: ivr.events.find(ev.CallEnded, linkedid=linkedid), 20, "the channel hung up")


async def test_ami_lost_during_the_goodbye_the_channel_is_still_hung_up_when_it_returns(make_ivr, proxy):
    ivr = await make_ivr(port=proxy.port, CALLCYCLE_IVR_RECONNECT_GRACE="2")
    linkedid = await ivr.call(SIM_DIGIT="2", SIM_DIGIT_DELAY="1", SIM_TALK="40")
    ivr.service.observers.append(lambda kind, s, _t, d: proxy.block() if (
        kind == "prompt_sent" and s.linkedid == linkedid and d.get("sound") == "auth-thankyou") else None)
    s = await ivr.session(linkedid, timeout=20)
    assert (s["outcome"], s["intent"]) == ("completed", "low_intent")   # decided before the goodbye
    await poll(lambda: ivr.service.sessions == {}, 10, "the session ended")
    proxy.unblock()
    # the goodbye (and our hang-up after it) never ran: the caller, who stays 40 s, must not
    # be left parked in AsyncAGI
    await poll(lambda: ivr.events.find(ev.CallEnded, linkedid=linkedid), 20, "the channel hung up")


async def test_call_that_vanishes_during_an_ami_outage_ends_its_session_with_that_outcome(make_ivr, proxy):
    ivr = await make_ivr(port=proxy.port)
    linkedid = await ivr.call(SIM_DIGIT="", SIM_TALK="3")   # the caller hangs up ~3 s in, unseen
    await _in_menu_wait(ivr, linkedid)
    proxy.block()
    await asyncio.sleep(4)
    proxy.unblock()
    s = await ivr.session(linkedid, timeout=20)
    assert (s["outcome"], s["last_node"]) == ("ended_during_ami_outage", "ask")
    assert ivr.service.sessions == {}


async def test_reload_mid_call_the_call_in_progress_finishes_on_the_flow_it_began_with(make_ivr, tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    ivr = await make_ivr(CALLCYCLE_IVR_FLOWS_DIR=str(flows))
    old_version = ivr.service.flows.get("screening").version
    first = await ivr.call(SIM_DIGIT="1", SIM_DIGIT_DELAY="3", SIM_TALK="3")
    await poll(lambda: any(s.linkedid == first for s in ivr.service.sessions.values()), 10, "the first session")
    text = (flows / "screening.yaml").read_text()
    (flows / "screening.yaml").write_text(text.replace("intent: high_intent", "intent: hot_lead"))
    resp = await ivr.client.post("/api/ivr/flows/reload", headers=auth("admin"))
    assert resp.status == 200, await resp.text()
    new_version = ivr.service.flows.get("screening").version
    assert new_version != old_version
    second = await ivr.call(SIM_DIGIT="1", SIM_DIGIT_DELAY="1", SIM_TALK="3")
    a, b = await ivr.session(first), await ivr.session(second)
    assert (a["flow_version"], a["intent"]) == (old_version, "high_intent")
    assert (b["flow_version"], b["intent"]) == (new_version, "hot_lead")


async def test_transfer_to_an_agent_leaves_the_ivr_and_dials_the_agent(make_ivr, tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    (flows / "agent_line.yaml").write_text(
        "name: agent_line\nstart: hold\nnodes:\n"
        "  hold: {type: transfer, agent: Local/agent1@sim-agent, prompt: pls-hold-while-try, ring_timeout: 10}\n")
    ivr = await make_ivr(CALLCYCLE_IVR_FLOWS_DIR=str(flows))
    linkedid = await ivr.call(flow="agent_line", SIM_DIGIT="", SIM_TALK="4", __SIM_AGENT_TALK="1")
    s = await ivr.session(linkedid)
    assert (s["outcome"], s["transfer_to"], s["priority"]) == ("transferred", "Local/agent1@sim-agent", None)
    dial = await poll(lambda: [e for e in ivr.events.find(ev.DialEnd, linkedid=linkedid)
                               if "agent1@sim-agent" in e.dest_channel], 15, "the agent dialled")
    assert dial[0].dial_status == "ANSWER"
    assert ivr.service.sessions == {}


@pytest.fixture
def own_postgres(tmp_path):
    from tests.crm_sync.test_pg_restart import OwnPostgres

    pg = OwnPostgres(tmp_path / "pg")
    try:
        yield pg
    finally:
        pg.server.cleanup()


async def test_a_call_that_ends_while_postgres_is_down_is_recorded_once_it_is_back(own_postgres, make_ivr):
    # the caller must not wait for the database, and the outcome must not be lost with it
    ivr = await make_ivr(DATABASE_URL=own_postgres.url)
    linkedid = await ivr.call(SIM_DIGIT="2", SIM_DIGIT_DELAY="5", SIM_TALK="4")
    await _in_menu_wait(ivr, linkedid)
    await own_postgres.stop()
    await poll(lambda: ivr.service.pending_commits == 1, 30, "the outcome waiting for the database")
    await poll(lambda: ivr.service.sessions == {}, 15, "the call ended without its record")
    await own_postgres.start()
    s = await ivr.session(linkedid, timeout=90)
    assert (s["outcome"], s["intent"], s["digits"]) == ("completed", "low_intent", "2")
    assert ivr.service.pending_commits == 0
    assert await ivr.pool.fetchval("SELECT count(*) FROM ivr_sessions WHERE linkedid = $1", linkedid) == 1
