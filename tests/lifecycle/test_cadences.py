"""Every follow-up cadence, driven by a manual clock."""

from datetime import datetime, timedelta, timezone

import pytest

from callcycle import keys
from callcycle.app import init_app
from lifecycle.errors import AlreadyClaimed
from tests.lifecycle.conftest import START, events, outcome
from tests.pbx.tools import eventually

H = timedelta(hours=1)


async def crm(service, type_, **data):
    return await service.apply_crm_event(f"msg_{type_}_{datetime.now().timestamp()}", type_, data)


async def test_an_undecided_acquisition_lead_gets_two_touches_within_three_days_once(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.record_call(outcome(c.id, clock, disposition="no_answer", talk_seconds=0))
    first, second = await service.list_tasks(contact_id=c.id)
    assert (first.not_before, first.due_at) == (START, START + 24 * H)
    assert (second.not_before, second.due_at) == (START + 48 * H, START + 72 * H)
    assert [t.id for t in await service.due_tasks(START)] == [first.id]
    clock.advance(49 * H)
    assert [t.id for t in await service.due_tasks()] == [first.id, second.id]
    await service.record_call(outcome(c.id, clock, disposition="no_answer", talk_seconds=0))
    assert len(await service.list_tasks(contact_id=c.id)) == 2  # one round per lead
    created = await events(db_pool, c.id, "task.created")
    assert [e["data"]["task"]["rule"] for e in created] == ["acquisition_undecided"] * 2


async def test_a_decided_lead_gets_no_undecided_touches(service, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.record_call(outcome(c.id, clock, digits="2"))
    assert await service.list_tasks(contact_id=c.id) == []


async def test_a_purchase_moves_to_maturity_and_plans_the_renewal_reminder_15_days_before(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await crm(service, "purchase.recorded", contact_id=c.id, amount=120000, renewal_date="2027-01-05")
    after = await service.get(c.id)
    assert after.stage == "maturity" and str(after.renewal_date) == "2027-01-05"
    [task] = await service.list_tasks(contact_id=c.id)
    assert task.rule == "renewal_reminder" and task.not_before.date().isoformat() == "2026-12-21"
    clock.set(datetime(2026, 12, 20, tzinfo=timezone.utc))
    assert await service.due_tasks() == []
    clock.set(datetime(2026, 12, 21, 8, tzinfo=timezone.utc))
    assert [t.id for t in await service.due_tasks()] == [task.id]


async def test_a_crm_risk_signal_moves_to_decline_and_asks_for_a_call_within_72_hours(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.change_stage(c.id, "maturity", "bought", "api")
    await crm(service, "risk.signal", contact_id=c.id, kind="no_repurchase_3_months")
    assert (await service.get(c.id)).stage == "decline"
    [task] = await service.list_tasks(contact_id=c.id)
    assert (task.rule, task.not_before, task.due_at) == ("risk_follow_up", START, START + 72 * H)
    ev = (await events(db_pool, c.id, "contact.stage_changed"))[-1]
    assert ev["data"]["cause"] == "rule:risk_detected"


async def test_an_open_complaint_is_followed_up_weekly_until_resolved(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await crm(service, "complaint.opened", contact_id=c.id, ref="T-1")
    [week1] = await service.list_tasks(contact_id=c.id, state="open")
    assert week1.not_before == START + 168 * H and week1.rule == "complaint_weekly"
    clock.set(week1.not_before)
    await service.complete_task(week1.id)
    [week2] = await service.list_tasks(contact_id=c.id, state="open")
    assert week2.not_before == START + 2 * 168 * H
    await crm(service, "complaint.resolved", contact_id=c.id, ref="T-1")
    assert await service.list_tasks(contact_id=c.id, state="open") == []
    assert [t.state for t in await service.list_tasks(contact_id=c.id)] == ["done", "cancelled"]
    assert len(await events(db_pool, c.id, "task.completed")) == 1


async def test_satisfaction_4_or_more_marks_a_referral_candidate_followed_up_within_3_days(service, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.change_stage(c.id, "maturity", "bought", "api")
    await service.record_call(outcome(c.id, clock, satisfaction=3))
    assert await service.list_tasks(contact_id=c.id) == []
    await service.record_call(outcome(c.id, clock, satisfaction=4))
    assert "referral_candidate" in (await service.get(c.id)).tags
    [task] = await service.list_tasks(contact_id=c.id)
    assert (task.rule, task.due_at) == ("referral_follow_up", START + 72 * H)


async def test_a_claimed_lead_not_followed_up_in_24_hours_returns_to_the_shared_pool(service, db_pool, clock):
    idle = await service.find_or_create_by_phone("+14155550123")
    worked = await service.find_or_create_by_phone("+14155550124")
    await service.claim(idle.id, "agent-7")
    await service.claim(worked.id, "agent-7")
    clock.advance(5 * H)
    await service.record_call(outcome(worked.id, clock, agent="agent-7", direction="outbound"))
    clock.advance(19 * H)
    assert await service.release_stale_claims() == []  # exactly 24 h: not yet late
    clock.advance(1)
    assert await service.release_stale_claims() == [idle.id]
    assert (await service.get(idle.id)).owner_agent is None
    assert (await service.get(worked.id)).owner_agent == "agent-7"
    [claim_task] = [t for t in await service.list_tasks(contact_id=idle.id) if t.rule == "claim_follow_up"]
    assert claim_task.state == "cancelled"
    changed = [e["data"]["changed"] for e in await events(db_pool, idle.id, "contact.updated")]
    assert changed == [["owner_agent"], ["owner_agent"]]


async def test_due_tasks_are_emitted_once_when_they_become_workable(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.record_call(outcome(c.id, clock, disposition="no_answer", talk_seconds=0))
    assert await service.emit_due_tasks() == 1
    assert await service.emit_due_tasks() == 0
    clock.advance(48 * H)
    assert await service.emit_due_tasks() == 1
    due = await events(db_pool, c.id, "task.due")
    assert [e["data"]["task"]["due_at"] for e in due] == [(START + 24 * H).isoformat(), (START + 72 * H).isoformat()]


async def test_the_server_sweeps_due_tasks_and_stale_claims_on_its_own(aiohttp_client, make_settings, db_pool, clock):
    app = init_app(make_settings(CALLCYCLE_LIFECYCLE_SWEEP_INTERVAL="0.05"), clock=clock, with_pbx=False)
    await aiohttp_client(app)
    service = app[keys.LIFECYCLE]
    c = await service.find_or_create_by_phone("+14155550123")
    await service.record_call(outcome(c.id, clock, disposition="no_answer", talk_seconds=0))
    claimed = await service.find_or_create_by_phone("+14155550124")
    await service.claim(claimed.id, "agent-7")
    await eventually(lambda: events(db_pool, c.id, "task.due"), 5, what="the first touch announced as due")
    clock.advance(25 * H)   # the claim's 24 h follow-up window passed without a touch
    await eventually(lambda: _released(service, claimed.id), 5, what="the stale claim released")
    assert len(await events(db_pool, c.id, "task.due")) == 1   # once, however many sweeps ran


async def _released(service, contact_id: int) -> bool:
    return (await service.get(contact_id)).owner_agent is None


async def test_a_held_claim_cannot_be_taken_or_renewed_until_it_lapses(service, clock):
    lead = await service.find_or_create_by_phone("+14155550125")
    first = await service.claim(lead.id, "agent-7")
    with pytest.raises(AlreadyClaimed):
        await service.claim(lead.id, "agent-9")
    clock.advance(20 * H)
    assert (await service.claim(lead.id, "agent-7")).claimed_at == first.claimed_at   # the window keeps running
    clock.advance(5 * H)                                                             # lapsed, not yet swept
    assert (await service.claim(lead.id, "agent-9")).owner_agent == "agent-9"
