"""Every path of flows/screening.yaml with simulated callers (Local channel + SendDTMF) on
the sandbox Asterisk: 1, 2, invalid, timeout, hang-up mid-menu; each checked in the
database (session, steps, call record, contact, outbox) and in the CRM receiver."""

from __future__ import annotations

import gc

import pytest

from callcycle import keys
from ivr.channel import AgiChannel
from ivr.session import Session
from pbx import events as ev
from pbx.actions import OriginateRequest
from pbx.calls import Call
from tests.ivr.conftest import Ivr, caller_number, poll

pytestmark = pytest.mark.asterisk


async def _crm_got(ivr: Ivr, contact_id: int, *types: str) -> list[tuple[str, dict]]:
    await poll(lambda: set(types) <= {t for t, _d in ivr.received(contact_id)}, 20, f"CRM events {types}")
    return ivr.received(contact_id)


async def _call_ended(ivr: Ivr, linkedid: str) -> None:
    await poll(lambda: ivr.events.find(ev.CallEnded, linkedid=linkedid), 20, "the call to end")


async def _tasks(ivr: Ivr, contact_id: int) -> list[str]:
    rows = await ivr.pool.fetch("SELECT rule FROM tasks WHERE contact_id = $1 ORDER BY id", contact_id)
    return [r["rule"] for r in rows]


async def test_caller_pressing_1_is_tagged_high_intent_and_queued_to_sales(ivr):
    number = caller_number()
    linkedid = await ivr.call(number, SIM_DIGIT="1", SIM_DIGIT_DELAY="1", SIM_TALK="4")
    s = await ivr.session(linkedid)
    assert (s["outcome"], s["intent"], s["digits"], s["last_node"]) == ("transferred", "high_intent", "1", "to_sales")
    assert (s["transfer_to"], s["priority"]) == ("sales", 5)   # score 55 -> QUEUE_PRIO 5
    join = await poll(lambda: ivr.events.find(ev.QueueCallerJoin, linkedid=linkedid), 10, "QueueCallerJoin")
    assert join[0].queue == "sales"
    assert await ivr.steps(s["id"]) == [("visit", "ask", ""), ("keys", "ask", "1"), ("visit", "interested", ""),
                                        ("visit", "to_sales", "")]
    call = await ivr.call_record(s["call_id"])
    assert (call["disposition"], call["intent"], call["digits"], call["ivr_path"]) == \
        ("transferred", "high_intent", "1", ["ask", "interested", "to_sales"])
    contact = await ivr.contact(s["contact_id"])
    assert (contact["stage"], contact["tags"], contact["score"]) == ("acquisition", ["high_intent"], 55)
    assert "+" + number.lstrip("+") in [r["phone"] for r in await ivr.pool.fetch(
        "SELECT phone FROM contact_phones WHERE contact_id = $1", s["contact_id"])]
    got = await _crm_got(ivr, s["contact_id"], "contact.created", "call.completed", "contact.tagged",
                         "ivr.intent_tagged")
    intent = [d for t, d in got if t == "ivr.intent_tagged"][0]
    assert (intent["intent"], intent["node"], intent["digits"], intent["call_id"]) == \
        ("high_intent", "interested", "1", s["call_id"])
    assert [d["call"]["disposition"] for t, d in got if t == "call.completed"] == ["transferred"]
    await poll(lambda: ivr.service.sessions == {}, 5, "no session left")


async def test_caller_pressing_2_is_tagged_low_intent_kept_for_nurturing_and_hung_up(ivr):
    linkedid = await ivr.call(SIM_DIGIT="2", SIM_DIGIT_DELAY="1", SIM_TALK="6")
    s = await ivr.session(linkedid)
    assert (s["outcome"], s["intent"], s["digits"], s["last_node"]) == ("completed", "low_intent", "2",
                                                                        "nurture_goodbye")
    contact = await ivr.contact(s["contact_id"])
    assert (contact["tags"], contact["score"]) == (["low_intent"], 0)   # nurture band (<= 30)
    assert await _tasks(ivr, s["contact_id"]) == []                     # decided: no follow-up
    got = await _crm_got(ivr, s["contact_id"], "call.completed", "ivr.intent_tagged")
    assert [d["intent"] for t, d in got if t == "ivr.intent_tagged"] == ["low_intent"]
    await _call_ended(ivr, linkedid)   # we hung up after the goodbye; the caller stayed 6 s
    await poll(lambda: ivr.service.sessions == {}, 5, "no session left")


async def test_two_invalid_keys_leave_the_lead_undecided_with_follow_up_tasks(ivr):
    linkedid = await ivr.call(SIM_DIGITS="97", SIM_DIGIT_DELAY="1", SIM_DIGIT_GAP="2", SIM_TALK="8")
    s = await ivr.session(linkedid)
    assert (s["outcome"], s["intent"], s["digits"], s["last_node"]) == ("undecided", "undecided", "97",
                                                                        "undecided_goodbye")
    assert [k for k in await ivr.steps(s["id"]) if k[0] in ("keys", "invalid")] == [
        ("keys", "ask", "9"), ("invalid", "ask", "9"), ("keys", "ask", "7"), ("invalid", "ask", "7")]
    # An undecided acquisition lead: lifecycle's cadence, 2 touches within 3 days.
    assert await _tasks(ivr, s["contact_id"]) == ["acquisition_undecided", "acquisition_undecided"]
    got = await _crm_got(ivr, s["contact_id"], "task.created", "ivr.intent_tagged", "call.completed")
    assert [d["call"]["disposition"] for t, d in got if t == "call.completed"] == ["undecided"]
    await _call_ended(ivr, linkedid)
    await poll(lambda: ivr.service.sessions == {}, 5, "no session left")


async def test_silence_twice_leaves_the_lead_undecided_with_follow_up_tasks(ivr):
    linkedid = await ivr.call(SIM_DIGIT="", SIM_TALK="20")
    s = await ivr.session(linkedid, timeout=40)
    assert (s["outcome"], s["intent"], s["digits"], s["last_node"]) == ("undecided", "undecided", "",
                                                                        "undecided_goodbye")
    assert [k for k in await ivr.steps(s["id"]) if k[0] == "timeout"] == [("timeout", "ask", "")] * 2
    assert await _tasks(ivr, s["contact_id"]) == ["acquisition_undecided", "acquisition_undecided"]
    await _crm_got(ivr, s["contact_id"], "task.created", "ivr.intent_tagged", "call.completed")
    await _call_ended(ivr, linkedid)
    await poll(lambda: ivr.service.sessions == {}, 5, "no session left")


async def test_caller_hanging_up_mid_menu_is_abandoned_in_ivr_at_the_menu_and_leaves_no_session(ivr):
    linkedid = await ivr.call(SIM_DIGIT="", SIM_TALK="1")
    s = await ivr.session(linkedid)
    assert (s["outcome"], s["last_node"], s["intent"], s["digits"]) == ("abandoned_in_ivr", "ask", None, "")
    call = await ivr.call_record(s["call_id"])
    assert (call["disposition"], call["ivr_path"]) == ("abandoned_in_ivr", ["ask"])
    got = await _crm_got(ivr, s["contact_id"], "call.completed")
    assert [d["call"]["disposition"] for t, d in got if t == "call.completed"] == ["abandoned_in_ivr"]
    await _call_ended(ivr, linkedid)
    await poll(lambda: ivr.service.sessions == {}, 5, "no session left")
    assert ivr.app[keys.PBX].default.router.calls.get(linkedid) is None


async def test_answered_outbound_press_1_campaign_call_runs_the_same_flow_for_the_dialers_contact(ivr):
    contact = await ivr.app[keys.LIFECYCLE].find_or_create_by_phone(caller_number())
    # What the dialer does for an agentless campaign: the answered call goes to the IVR
    # with the campaign and the contact it dialled.
    result = await ivr.pbx.actions.originate(OriginateRequest(
        attempt_id=f"ivrtest-out-{contact.id}-{ivr.owner}", channel="Local/s@sim-customer",
        context="callcycle-outbound", exten="ivr", caller_id='"callcycle" <+14155559999>', timeout_s=15,
        variables={"CALLCYCLE_FLOW": "screening", "CALLCYCLE_IVR_OWNER": ivr.owner, "CALLCYCLE_CAMPAIGN_ID": "c-7",
                   "CALLCYCLE_CONTACT_ID": str(contact.id), "SIM_DIGIT": "1", "SIM_TALK": "3"}))
    assert result.success
    s = await ivr.session(result.uniqueid)
    assert (s["contact_id"], s["direction"], s["outcome"], s["intent"]) == (contact.id, "outbound", "transferred",
                                                                            "high_intent")
    call = await ivr.call_record(s["call_id"])
    assert (call["direction"], call["campaign_id"], call["attempt_id"]) == (
        "outbound", "c-7", f"ivrtest-out-{contact.id}-{ivr.owner}")


async def test_a_call_naming_an_unknown_flow_leaves_the_ivr_at_once_and_is_hung_up(ivr):
    linkedid = await ivr.call(flow="no_such_flow", SIM_DIGIT="", SIM_TALK="20")
    await _call_ended(ivr, linkedid)   # ASYNCAGI BREAK: the dialplan goes on to Hangup()
    await poll(lambda: ivr.service.sessions == {}, 5, "no session left")
    assert await ivr.pool.fetchval("SELECT count(*) FROM ivr_sessions") == 0


async def test_a_finished_call_leaves_no_reference_cycle_for_the_garbage_collector(ivr):
    # A call's objects (its session, AGI channel, tasks, contact) go when it ends, not in
    # a collector pass: a full pass over the cycles a thousand calls had left took 70-80 ms
    # of the event loop in bench/ivr_latency.py.
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)   # unreachable objects are kept in gc.garbage, to be seen
    try:
        linkedid = await ivr.call(SIM_DIGIT="2", SIM_DIGIT_DELAY="1", SIM_TALK="1")
        assert (await ivr.session(linkedid))["outcome"] == "completed"
        await _call_ended(ivr, linkedid)
        await poll(lambda: ivr.service.sessions == {}, 5, "no session left")
        ivr.events.items.clear()   # the test's own event log keeps each call
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, (Call, Session, AgiChannel))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
