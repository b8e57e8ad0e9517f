"""The gate at the moment of dialing, against the real database: do-not-call, caps under
concurrency, refusals recorded with their reasons, fencing of a stale leader."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from callcycle import keys
from callcycle.app import init_app
from callcycle.clock import ManualClock
from dialer import repository as repo
from dialer.config import DialerSettings
from dialer.dialing import Deps, Dialing, Refusal, Reservation
from dialer.errors import LeaseLost
from dialer.machine import CallTrace, Signal
from dialer.observer import AttemptObserver
from dialer.pacing import CampaignStats
from lifecycle.models import NewContact

START = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)   # 10:00 in Los Angeles, a Monday
LA = "America/Los_Angeles"


@pytest.fixture
async def app(aiohttp_client, settings):
    clock = ManualClock(START)
    client = await aiohttp_client(init_app(settings, clock=clock, with_pbx=False))
    return client.server.app


async def campaign_with(app, phones: list[str], zones=(LA,), **settings) -> tuple[int, list[int]]:
    svc, lifecycle = app[keys.DIALER], app[keys.LIFECYCLE]
    ids = [(await lifecycle.create(NewContact((p,), time_zones=tuple(zones)))).id for p in phones]
    campaign = await svc.create("gate", "progressive", {"max_attempts": 3, "max_attempts_per_day": 2, **settings})
    await svc.add_leads(campaign.id, {"contact_ids": ids})
    await svc.control(campaign.id, "start", "test")
    async with app[keys.DB].acquire() as conn:
        leads = [r["id"] for r in await conn.fetch("SELECT id FROM dialer_leads WHERE campaign_id = $1 ORDER BY "
                                                   "contact_id", campaign.id)]
    return campaign.id, leads


async def dialing_for(app, campaign_id: int, holder: str = "test-holder") -> Dialing:
    async with app[keys.DB].acquire() as conn:
        token = await repo.raise_fence(conn, campaign_id, holder)
        campaign = await repo.get_campaign(conn, campaign_id)
    deps = Deps(app[keys.DB], app[keys.LIFECYCLE], None, AttemptObserver(), DialerSettings(),  # type: ignore[arg-type]
                app[keys.CLOCK], holder)
    return Dialing(deps, campaign, token, CampaignStats())


async def end_attempt(app, dialing: Dialing, attempt_id: str, *signals: Signal) -> None:
    t = CallTrace(attempt_id, 0.0, originate_reason="busy")
    for s in signals or (Signal.RING, Signal.END):
        t.signal(s, 1.0)
    await dialing.record(attempt_id, t)


async def abandon_one_and_reach_a_machine_on_the_other(app, dialing: Dialing, lead: int, lead2: int) -> None:
    r1, r2 = await dialing.reserve(lead), await dialing.reserve(lead2)
    await end_attempt(app, dialing, r1.attempt_id, Signal.ANSWER, Signal.QUEUE, Signal.ABANDON, Signal.END)
    await end_attempt(app, dialing, r2.attempt_id, Signal.ANSWER, Signal.MACHINE, Signal.END)


async def lead_row(app, lead_id: int):
    async with app[keys.DB].acquire() as conn:
        return await conn.fetchrow("SELECT * FROM dialer_leads WHERE id = $1", lead_id)


async def test_a_clean_lead_is_reserved_with_the_record_of_why_it_was_allowed(app):
    cid, (lead,) = await campaign_with(app, ["+14155550123"])
    dialing = await dialing_for(app, cid)
    reserved = await dialing.reserve(lead)
    assert isinstance(reserved, Reservation)
    assert reserved.request.channel == "PJSIP/+14155550123@carrier"
    assert reserved.request.attempt_id.startswith(f"d{cid}-{lead}-")
    assert reserved.request.variables["CALLCYCLE_CONTACT_ID"] and reserved.request.timeout_s == 20
    async with app[keys.DB].acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM dialer_attempts WHERE id = $1", reserved.attempt_id)
    rules = row["allowed_by"]["rules"]
    assert rules["dnc"]["listed"] is False and rules["window"]["ok"] is True
    assert rules["window"]["local"] == {LA: "2026-01-05T10:00:00-08:00"}
    assert rules["caps"]["attempts"] == 0 and rules["caps"]["max_attempts"] == 3
    assert (await lead_row(app, lead))["state"] == "dialing"
    assert await dialing.reserve(lead) is None   # already dialing: never twice at once


async def test_caps_hold_when_many_workers_reserve_the_same_lead_at_once(app):
    cid, (lead,) = await campaign_with(app, ["+14155550124"])
    workers = [await dialing_for(app, cid)]
    reservations = []
    for day in range(3):
        for _ in range(3):
            results = await asyncio.gather(*(workers[0].reserve(lead) for _ in range(12)))
            won = [r for r in results if isinstance(r, Reservation)]
            assert len(won) <= 1
            for r in won:
                reservations.append(r)
                await end_attempt(app, workers[0], r.attempt_id)
            async with app[keys.DB].acquire() as conn:   # retry now rather than in 10 minutes
                await conn.execute("UPDATE dialer_leads SET next_at = $2 WHERE id = $1 AND state = 'ready'",
                                   lead, app[keys.CLOCK].now())
        app[keys.CLOCK].advance(timedelta(days=1))
        workers[0].campaign = (await app[keys.DIALER].get(cid))
    row = await lead_row(app, lead)
    assert len(reservations) == 3 == row["attempts"]          # lifetime cap
    per_day = {}
    async with app[keys.DB].acquire() as conn:
        for r in await conn.fetch("SELECT created_at FROM dialer_attempts WHERE lead_id = $1", lead):
            per_day[r["created_at"].date()] = per_day.get(r["created_at"].date(), 0) + 1
    assert max(per_day.values()) == 2                         # daily cap
    assert row["state"] == "done" and row["final_reason"] == "max_attempts"


async def test_the_daily_cap_refuses_until_the_callees_next_day(app):
    cid, (lead,) = await campaign_with(app, ["+14155550125"], max_attempts=5, max_attempts_per_day=1)
    dialing = await dialing_for(app, cid)
    first = await dialing.reserve(lead)
    await end_attempt(app, dialing, first.attempt_id)
    async with app[keys.DB].acquire() as conn:
        await conn.execute("UPDATE dialer_leads SET next_at = $2 WHERE id = $1", lead, app[keys.CLOCK].now())
        refused = await dialing.reserve(lead)
        assert isinstance(refused, Refusal) and refused.rule == "max_attempts_per_day"
        row = await conn.fetchrow("SELECT * FROM dialer_refusals WHERE lead_id = $1", lead)
    next_day = datetime(2026, 1, 6, 16, 0, tzinfo=timezone.utc)   # 08:00 in Los Angeles
    assert row["retry_at"] == next_day == (await lead_row(app, lead))["next_at"]


@pytest.mark.parametrize("setup, rule", [
    ("dnc", "dnc"), ("crm_dnc", "dnc"), ("no_consent", "no_consent"), ("premium", "premium"),
    ("night", "calling_window"), ("no_zone", "unknown_time_zone"), ("injection", "dial_string"),
    ("letters", "dial_string"), ("abroad", "destination"),
])
async def test_leads_the_gate_must_refuse_are_never_reserved_and_the_reason_is_kept(app, setup, rule):
    phone = {"premium": "+19005550123", "abroad": "+33612345678"}.get(setup, "+14155550126")
    zones = {"night": ("Asia/Tokyo",), "no_zone": (), "abroad": ("Europe/Paris",)}.get(setup, (LA,))
    cid, (lead,) = await campaign_with(app, [phone], zones=zones)
    lifecycle = app[keys.LIFECYCLE]
    async with app[keys.DB].acquire() as conn:
        if setup == "dnc":
            await lifecycle.add_dnc(phone, "own-list")
        elif setup == "crm_dnc":
            await lifecycle.apply_crm_event("wh-1", "dnc.added", {"phone": phone})
        elif setup == "no_consent":
            await conn.execute("UPDATE contacts SET consent = false")
        elif setup in ("injection", "letters"):   # a row written around the API
            bad = "+14155550126&Local/1@default" if setup == "injection" else "+1415555ABCD"
            await conn.execute("UPDATE dialer_leads SET phone = $2 WHERE id = $1", lead, bad)
    dialing = await dialing_for(app, cid)
    refused = await dialing.reserve(lead)
    assert isinstance(refused, Refusal) and refused.rule == rule
    async with app[keys.DB].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM dialer_attempts") == 0
        row = await conn.fetchrow("SELECT rule, record FROM dialer_refusals WHERE lead_id = $1", lead)
    assert row["rule"] == rule and row["record"]["refused_by"] == rule


async def test_a_number_added_to_do_not_call_after_the_reservation_is_not_dialed(app):
    cid, (lead,) = await campaign_with(app, ["+14155550127"])
    dialing = await dialing_for(app, cid)
    reserved = await dialing.reserve(lead)
    await app[keys.LIFECYCLE].add_dnc("+14155550127", "crm")
    assert await dialing.originate(reserved) is None    # re-checked under the contact's lock
    row = await lead_row(app, lead)
    assert (row["state"], row["final_disposition"], row["final_reason"]) == ("done", "refused", "dnc")
    async with app[keys.DB].acquire() as conn:
        attempt = await conn.fetchrow("SELECT * FROM dialer_attempts WHERE id = $1", reserved.attempt_id)
        assert attempt["dialed_at"] is None and attempt["disposition"] == "refused"
        assert await conn.fetchval("SELECT count(*) FROM calls") == 0


async def test_a_stale_leader_can_neither_reserve_nor_record(app):
    cid, (lead, other) = await campaign_with(app, ["+14155550128", "+14155550129"])
    old = await dialing_for(app, cid, "old-leader")
    reserved = await old.reserve(lead)
    new = await dialing_for(app, cid, "new-leader")           # the fence moves on
    with pytest.raises(LeaseLost):
        await old.reserve(other)
    with pytest.raises(LeaseLost):
        await end_attempt(app, old, reserved.attempt_id)
    await end_attempt(app, new, reserved.attempt_id)          # the new leader records it, once
    await end_attempt(app, new, reserved.attempt_id)
    async with app[keys.DB].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM calls WHERE attempt_id = $1", reserved.attempt_id) == 1


async def test_two_recorders_of_one_attempt_at_once_store_one_call(app):
    # the line that dialed it and a sweep that adopted it may both end it (seen in CI)
    cid, (lead,) = await campaign_with(app, ["+14155550133"])
    dialing = await dialing_for(app, cid)
    reserved = await dialing.reserve(lead)
    assert reserved.attempt_id in dialing.claimed                # the sweep leaves it to its line
    assert await dialing.reserve(lead) is None and dialing.claimed == {reserved.attempt_id}
    await asyncio.gather(*(end_attempt(app, dialing, reserved.attempt_id) for _ in range(4)))
    async with app[keys.DB].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM calls WHERE attempt_id = $1", reserved.attempt_id) == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox_events WHERE event_type = 'call.completed' "
                                   "AND payload->'call'->>'attempt_id' = $1", reserved.attempt_id) == 1


async def test_a_number_live_in_another_campaign_waits(app):
    cid, (lead,) = await campaign_with(app, ["+14155550130"])
    svc = app[keys.DIALER]
    contact_id = (await lead_row(app, lead))["contact_id"]
    second = await svc.create("second", "progressive", {})
    await svc.add_leads(second.id, {"contact_ids": [contact_id]})
    await svc.control(second.id, "start", "test")
    first = await (await dialing_for(app, cid)).reserve(lead)
    assert isinstance(first, Reservation)
    other_lead = (await svc.leads(second.id, None, 10, 0))[0].id
    refused = await (await dialing_for(app, second.id)).reserve(other_lead)
    assert isinstance(refused, Refusal) and refused.rule == "in_call"


async def test_an_abandoned_number_rests_72_hours_and_a_machine_the_rest_of_the_day(app):
    cid, (lead, lead2) = await campaign_with(app, ["+14155550131", "+14155550132"], max_attempts=5,
                                             max_attempts_per_day=5)
    dialing = await dialing_for(app, cid)
    await abandon_one_and_reach_a_machine_on_the_other(app, dialing, lead, lead2)
    async with app[keys.DB].acquire() as conn:
        await conn.execute("UPDATE dialer_leads SET next_at = $1", app[keys.CLOCK].now())
    assert (await dialing.reserve(lead)).rule == "abandon_rest"
    assert (await dialing.reserve(lead2)).rule == "machine_today"
    assert (await lead_row(app, lead))["next_at"] == START + timedelta(hours=72)


async def test_an_agent_approving_a_resting_number_in_preview_does_not_lift_the_rest(app):
    # without [dialer] agent_endpoint the answered preview call joins the shared queue under
    # the 2 s rule: no agent is guaranteed, so the 72 h rest and the machine rule hold for it too
    cid, (lead, lead2) = await campaign_with(app, ["+14155550134", "+14155550135"], max_attempts=5,
                                             max_attempts_per_day=5)
    dialing = await dialing_for(app, cid)
    await abandon_one_and_reach_a_machine_on_the_other(app, dialing, lead, lead2)
    svc = app[keys.DIALER]
    preview = await svc.create("preview", "preview", {"max_attempts": 5, "max_attempts_per_day": 5})
    contacts = [(await lead_row(app, x))["contact_id"] for x in (lead, lead2)]
    await svc.add_leads(preview.id, {"contact_ids": contacts})
    await svc.control(preview.id, "start", "test")
    pdialing = await dialing_for(app, preview.id)
    refused = []
    for contact_id in contacts:
        plead = next(x.id for x in await svc.leads(preview.id, None, 10, 0) if x.contact_id == contact_id)
        await svc.approve(preview.id, plead, "agent-7")
        refused.append((await pdialing.reserve(plead)).rule)
    assert refused == ["abandon_rest", "machine_today"]


async def test_a_pause_between_the_reservation_and_the_originate_dials_nothing(app):
    cid, (lead,) = await campaign_with(app, ["+14155550136"])
    dialing = await dialing_for(app, cid)
    reserved = await dialing.reserve(lead)
    await app[keys.DIALER].control(cid, "pause", "supervisor-1")
    assert await dialing.originate(reserved) is None          # nothing reaches Asterisk
    row = await lead_row(app, lead)
    assert (row["state"], row["attempts"]) == ("ready", 0)      # dialed on resume, not used up
    async with app[keys.DB].acquire() as conn:
        attempt = await conn.fetchrow("SELECT * FROM dialer_attempts WHERE id = $1", reserved.attempt_id)
    assert attempt["dialed_at"] is None and attempt["detail"]["not_dialed"] == "campaign_paused"
