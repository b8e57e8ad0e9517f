"""The lifecycle service against a real PostgreSQL: records, transitions, outbox rows."""

import asyncio

import pytest

from callcycle.db import create_pool
from lifecycle.config import LifecycleSettings
from lifecycle.errors import DuplicateContact, InvalidPhone, TransitionRefused
from lifecycle.models import NewContact
from lifecycle.service import LifecycleService
from tests.lifecycle.conftest import events, outcome

CONTACT_KEYS = {"id", "external_id", "phone", "stage"}


async def test_find_or_create_normalises_any_format_and_derives_country_and_zones(service, db_pool):
    created = await service.find_or_create_by_phone("(415) 555-0123", "US")
    assert created.phones == ("+14155550123",) and created.country == "US"
    assert created.time_zones == ("America/Los_Angeles",) and created.stage == "acquisition"
    again = await service.find_or_create_by_phone("+1 415-555-0123")
    assert again.id == created.id
    [ev] = await events(db_pool, created.id)
    assert ev["type"] == "contact.created"
    assert ev["data"] == {"contact": {"id": created.id, "external_id": None, "phone": "+14155550123",
                                      "stage": "acquisition"}, "source": "call"}
    [hist] = await service.history(created.id)
    assert hist["from_stage"] is None and hist["to_stage"] == "acquisition"


async def test_a_snapshot_by_phone_finds_a_known_number_in_one_read_and_creates_a_new_one_in_three(db_url, clock):
    pool = await create_pool(db_url, min_size=1, max_size=1)   # one connection: the logger sees every statement
    try:
        service = LifecycleService(pool, clock, LifecycleSettings())
        statements: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda q: statements.append(q.query))
        created = await service.snapshot_by_phone("(415) 555-0123", "US", ("calls", "ivr_sessions"))
        await asyncio.sleep(0)   # asyncpg calls query loggers soon after the statement
        assert len(statements) == 3, statements   # the miss, the new id and checks, every write at once
        assert created.contact.stage == "acquisition" and created.reserved["calls"] > 0
        assert created.reserved["ivr_sessions"] > 0
        async with pool.acquire() as conn:   # the snapshot is the row as stored
            row = await conn.fetchrow("SELECT version, score_at FROM contacts WHERE id = $1", created.contact.id)
        assert created.contact == await service.get(created.contact.id)
        assert (created.version, created.score_at) == (row["version"], row["score_at"])
        statements.clear()
        again = await service.snapshot_by_phone("+1 415-555-0123", reserve=("calls",))
        await asyncio.sleep(0)
        assert again.contact.id == created.contact.id and again.reserved["calls"] != created.reserved["calls"]
        assert len(statements) == 1, statements
    finally:
        await pool.close()


async def test_a_caller_created_outside_a_transaction_is_recorded_as_one_created_inside(service, db_pool):
    alone = (await service.snapshot_by_phone("+14155550123")).contact
    inside = await service.find_or_create_by_phone("+14155550124")
    assert (alone, inside) == (await service.get(alone.id), await service.get(inside.id))   # as stored
    differs = {"id", "phones"}
    assert {k: v for k, v in vars(alone).items() if k not in differs} == \
        {k: v for k, v in vars(inside).items() if k not in differs}
    for contact in (alone, inside):
        [ev] = await events(db_pool, contact.id)
        assert ev == {"type": "contact.created", "data": {"contact": contact.ref(), "source": "call"}}
        [hist] = await service.history(contact.id)
        assert (hist["from_stage"], hist["to_stage"], hist["reason"]) == (None, "acquisition", "created")


async def test_a_new_caller_on_the_do_not_call_list_is_created_marked(service):
    await service.add_dnc("+14155550123", "crm")
    seen = await service.snapshot_by_phone("+14155550123")
    assert seen.contact.do_not_call and (await service.get(seen.contact.id)).do_not_call


async def test_two_calls_from_one_new_number_at_once_make_one_contact(service, db_pool):
    async with db_pool.acquire(), db_pool.acquire():   # two open connections: the calls overlap
        pass
    before = await db_pool.fetchval("SELECT nextval('contacts_id_seq')")
    first, second = await asyncio.gather(service.snapshot_by_phone("+14155550123", reserve=("calls",)),
                                         service.snapshot_by_phone("+14155550123", reserve=("calls",)))
    assert first.contact.id == second.contact.id
    assert first.reserved["calls"] != second.reserved["calls"]
    assert await db_pool.fetchval("SELECT count(*) FROM contacts") == 1
    assert [e["type"] for e in await events(db_pool)] == ["contact.created"]
    # both set out to create it (each took a contact id): one insert lost, and read the winner's
    assert await db_pool.fetchval("SELECT last_value FROM contacts_id_seq") == before + 2


async def test_a_bad_number_is_refused_naming_the_field(service, db_pool):
    with pytest.raises(InvalidPhone) as exc:
        await service.find_or_create_by_phone("12")
    assert exc.value.detail["field"] == "phone"
    assert await db_pool.fetchval("SELECT count(*) FROM contacts") == 0


async def test_a_phone_belongs_to_one_contact(service):
    await service.create(NewContact(("+14155550123",), external_id="crm-1"))
    with pytest.raises(DuplicateContact) as exc:
        await service.create(NewContact(("+14155550124", "+14155550123")))
    assert exc.value.detail["field"] == "phones[1]"


async def test_keypress_1_tags_high_intent_scores_and_routes_hot(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.tag(c.id, ["asked_core_product"], "agent")
    call_id = await service.record_call(outcome(c.id, clock, digits="1", ivr_path=("menu", "screen"),
                                                campaign_id="cmp-1"))
    after = await service.get(c.id)
    assert "high_intent" in after.tags and after.score == 25 + 50 + 5
    types = [e["type"] for e in await events(db_pool, c.id)]
    assert types == ["contact.created", "contact.tagged", "contact.score_changed", "call.completed",
                     "contact.tagged", "contact.score_changed"]
    evs = await events(db_pool, c.id)
    call = evs[3]["data"]["call"]
    assert call["id"] == call_id and call["digits"] == "1" and call["ivr_path"] == ["menu", "screen"]
    assert evs[5]["data"]["band"] == "hot" and evs[5]["data"]["new_score"] == 80
    assert all(set(e["data"]["contact"]) == CONTACT_KEYS for e in evs)
    row = await db_pool.fetchrow("SELECT stage, digits, campaign_id FROM calls WHERE id = $1", call_id)
    assert tuple(row) == ("acquisition", "1", "cmp-1")


async def test_keypress_2_tags_low_intent_and_puts_the_lead_in_the_nurture_band(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.record_call(outcome(c.id, clock, digits="2"))
    after = await service.get(c.id)
    assert "low_intent" in after.tags and after.score == 0
    assert [e for e in await events(db_pool, c.id, "contact.score_changed")] == []  # 0 -> 0: no change


async def test_a_confirmed_need_moves_the_lead_to_growth_by_rule(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    call_id = await service.record_call(outcome(c.id, clock, disposition="need_confirmed"))
    assert (await service.get(c.id)).stage == "growth"
    [ev] = await events(db_pool, c.id, "contact.stage_changed")
    assert ev["data"]["from_stage"] == "acquisition" and ev["data"]["to_stage"] == "growth"
    assert ev["data"]["cause"] == "rule:qualified" and ev["data"]["contact"]["stage"] == "growth"
    hist = await service.history(c.id)
    assert hist[-1]["cause"] == "rule:qualified" and hist[-1]["reason"]
    assert call_id


async def test_manual_change_records_why_and_invalid_ones_are_refused_with_nothing_written(service, db_pool):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.change_stage(c.id, "growth", "needs confirmed on call", "api")
    before = await db_pool.fetchval("SELECT count(*) FROM outbox_events")
    with pytest.raises(TransitionRefused) as exc:
        await service.change_stage(c.id, "churned", "test", "api")
    assert exc.value.detail["from"] == "growth" and "allowed stages are: maturity, decline" in exc.value.detail["reason"]
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == before
    hist = await service.history(c.id)
    assert [(h["from_stage"], h["to_stage"], h["reason"], h["cause"]) for h in hist][-1] == \
        ("acquisition", "growth", "needs confirmed on call", "api")


async def test_asking_about_competitors_is_a_risk_signal_that_moves_maturity_to_decline(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    await service.change_stage(c.id, "maturity", "bought", "api")
    await service.record_call(outcome(c.id, clock, disposition="asked_competitor"))
    assert (await service.get(c.id)).stage == "decline"
    [task] = await service.list_tasks(contact_id=c.id)
    assert task.rule == "risk_follow_up"


async def test_record_call_is_all_or_nothing(service, db_pool, clock):
    c = await service.find_or_create_by_phone("+14155550123")
    before = await db_pool.fetchval("SELECT count(*) FROM outbox_events")
    with pytest.raises(Exception):
        await service.record_call(outcome(c.id, clock, satisfaction=9))  # violates the CHECK
    assert await db_pool.fetchval("SELECT count(*) FROM calls") == 0
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == before


async def test_dnc_flags_the_contact_and_is_checked_in_any_format(service, db_pool):
    c = await service.find_or_create_by_phone("+14155550123")
    flagged = await service.add_dnc("415 555 0123", "crm")
    assert flagged.id == c.id and flagged.do_not_call
    assert await service.is_dnc("+1 (415) 555-0123") and not await service.is_dnc("+14155550199")
    await service.add_dnc("+14155550199", "api")
    [one, two] = await events(db_pool, event_type="contact.dnc_added")
    assert one["data"]["phone"] == "+14155550123" and two["data"] == {"contact": None, "phone": "+14155550199"}
    later = await service.find_or_create_by_phone("+14155550199")
    assert later.do_not_call


async def test_search_by_phone_stage_tag_and_score(service):
    a = await service.find_or_create_by_phone("+14155550123")
    b = await service.find_or_create_by_phone("+442079460000")
    await service.tag(a.id, ["high_intent"], "api")
    assert [c.id for c in await service.search(phone="(415) 555-0123")] == [a.id]
    assert [c.id for c in await service.search(tag="high_intent")] == [a.id]
    assert [c.id for c in await service.search(min_score=40)] == [a.id]
    assert [c.id for c in await service.search(max_score=10, stage="acquisition")] == [b.id]
    assert b.country == "GB"
