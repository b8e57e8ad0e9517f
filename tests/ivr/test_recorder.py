"""What a finished session commits, against a real PostgreSQL (no Asterisk): the shipped
csat_survey and churn_recall flows walked through the interpreter and recorded; every
outbox row matches the event catalogue; the whole outcome commits at once, by either path:
one locked transaction, or one statement checked against the contact's version."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from callcycle.clock import ManualClock
from callcycle.db import create_pool
from crm_sync import catalogue
from ivr import interpreter as it, recorder
from ivr.loader import load_dir
from ivr.models import Keys, NeedFacts, Silence
from lifecycle.config import LifecycleSettings
from lifecycle.models import Direction
from lifecycle.service import LifecycleService
from tests.conftest import ROOT

NOW = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
FLOWS = load_dir(ROOT / "flows", None).flows


@pytest.fixture
def lifecycle(db_pool) -> LifecycleService:
    return LifecycleService(db_pool, ManualClock(NOW), LifecycleSettings())


def walk(name: str, *answers, contact=None):
    """Run a flow through the interpreter with the given answers (Keys/Silence) in order."""
    flow = FLOWS[name]
    facts = it.Facts(str(contact.stage) if contact else "acquisition", frozenset(contact.tags if contact else ()),
                     contact.score if contact else 0, {}, NOW, True)
    s, io = it.start(flow)
    answers = list(answers)
    while not s.ended:
        if isinstance(io, NeedFacts):
            s, io = it.resume(flow, s, facts)
        else:
            s, io = it.feed(flow, s, answers.pop(0))
    assert not answers
    return flow, s


_CALLS = itertools.count(1)


async def _record(lifecycle, flow, state, contact_id, seen=None, **changes):
    """Record one session; each is a call of its own unless ``linkedid`` says otherwise."""
    fields = dict(server="main", linkedid=f"{next(_CALLS)}.1", channel="Local/x;1", flow=flow.name,
                  flow_version=flow.version, direction=Direction.INBOUND, campaign_id=None, attempt_id=None,
                  contact_id=contact_id, state=state, stamps=(NOW,) * len(state.records), started_at=NOW - timedelta(seconds=30), ended_at=NOW)
    return await recorder.commit(lifecycle, recorder.Ended(**{**fields, **changes}), seen)


@pytest.fixture(params=["locked", "unlocked"])
def record(request):
    """Record a session by either path, with the same outcome expected of both: the
    transaction that locks the contact, or the one statement from the snapshot a session
    takes when it begins (taken here just before)."""
    async def record(lifecycle, flow, state, contact_id, **changes):
        seen = None
        if request.param == "unlocked" and contact_id is not None:
            seen = await lifecycle.snapshot(contact_id, recorder.RESERVE)
        return await _record(lifecycle, flow, state, contact_id, seen, **changes)
    return record


async def outbox(pool, contact_id):
    rows = await pool.fetch("SELECT event_type, payload, schema_version FROM outbox_events "
                            "WHERE ordering_key = $1 ORDER BY seq", f"contact:{contact_id}")
    for r in rows:
        catalogue.validate(r["event_type"], r["payload"], r["schema_version"])
    return [(r["event_type"], r["payload"]) for r in rows]


async def test_satisfied_survey_is_stored_on_the_call_and_makes_a_referral_candidate(record, lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550111")
    await lifecycle.change_stage(c.id, "growth", "test")
    await lifecycle.change_stage(c.id, "maturity", "test")
    flow, s = walk("csat_survey", Silence(), Keys("5"))   # intro played, then 5
    assert (s.satisfaction, s.outcome, s.path) == (5, "completed", ("intro", "rate", "judge", "thanks"))
    done = await record(lifecycle, flow, s, c.id)
    call = await db_pool.fetchrow("SELECT * FROM calls WHERE id = $1", done.call_id)
    assert (call["satisfaction"], call["disposition"], call["digits"]) == (5, "completed", "5")
    assert "referral_candidate" in done.contact.tags
    assert [t["rule"] for t in await db_pool.fetch("SELECT rule FROM tasks WHERE contact_id = $1", c.id)] == \
        ["referral_follow_up"]
    await outbox(db_pool, c.id)


async def test_unhappy_survey_moves_a_customer_to_decline_and_books_the_call_back_they_asked_for(
        record, lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550112")
    await lifecycle.change_stage(c.id, "growth", "test")
    flow, s = walk("csat_survey", Silence(), Keys("2"), Keys("1"))
    done = await record(lifecycle, flow, s, c.id)
    assert (done.contact.stage, done.refused) == ("decline", ())
    assert {"dissatisfied"} <= set(done.contact.tags) and "referral_candidate" not in done.contact.tags
    call = await db_pool.fetchrow("SELECT digits, satisfaction FROM calls WHERE id = $1", done.call_id)
    assert (call["digits"], call["satisfaction"]) == ("21", 2)
    tasks = await db_pool.fetch("SELECT kind, rule FROM tasks WHERE contact_id = $1 ORDER BY id", c.id)
    assert ("complaint_call", "ivr:csat_survey:call_back") in [(t["kind"], t["rule"]) for t in tasks]
    types = [t for t, _d in await outbox(db_pool, c.id)]
    assert "contact.stage_changed" in types and "task.created" in types
    steps = await db_pool.fetch("SELECT kind, node, digits FROM ivr_steps WHERE session_id = $1 ORDER BY seq",
                                done.session_id)
    assert [tuple(r) for r in steps if r["kind"] == "keys"] == [("keys", "rate", "2"), ("keys", "offer_callback", "1")]


async def test_a_survey_score_of_1_is_not_read_as_the_screening_menus_high_intent(record, lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550116")
    flow, s = walk("csat_survey", Silence(), Keys("1"), Silence())
    done = await record(lifecycle, flow, s, c.id)
    call = await db_pool.fetchrow("SELECT digits, satisfaction FROM calls WHERE id = $1", done.call_id)
    assert (call["digits"], call["satisfaction"]) == (None, 1)   # the key stays in ivr_steps/ivr_sessions
    assert "high_intent" not in done.contact.tags
    assert await db_pool.fetchval("SELECT digits FROM ivr_sessions WHERE id = $1", done.session_id) == "1"


async def test_a_stage_change_the_lifecycle_refuses_is_recorded_and_skipped(record, lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550113")   # acquisition: no way to decline
    flow, s = walk("csat_survey", Silence(), Keys("2"), Silence())
    done = await record(lifecycle, flow, s, c.id)
    assert (done.contact.stage, done.refused) == ("acquisition", ("unhappy",))
    kinds = await db_pool.fetch("SELECT kind, node FROM ivr_steps WHERE session_id = $1 AND kind = 'refused'",
                                done.session_id)
    assert [tuple(k) for k in kinds] == [("refused", "unhappy")]


@pytest.mark.parametrize("key, reason", [("1", "price"), ("2", "service"), ("3", "needs_changed")])
async def test_churn_recall_sends_the_reason_to_the_crm_and_an_interested_customer_is_recalled(
        record, lifecycle, db_pool, key, reason):
    c = await lifecycle.find_or_create_by_phone("+14155550114")
    for stage in ("growth", "decline", "churned"):
        await lifecycle.change_stage(c.id, stage, "test")
    flow, s = walk("churn_recall", Keys(key), Keys("1"))
    done = await record(lifecycle, flow, s, c.id)
    assert {f"churn_reason_{reason}", "recall_candidate", "recall_interested"} <= set(done.contact.tags)
    assert done.contact.stage == "growth"   # lifecycle's rule: tag recall_interested recalls a churned contact
    events = await outbox(db_pool, c.id)
    custom = [d for t, d in events if t == "ivr.custom_event"]
    assert [(d["name"], d["data"], d["node"], d["call_id"]) for d in custom] == \
        [("churn_reason", {"reason": reason}, f"reason_{'needs' if key == '3' else reason}", done.call_id)]
    intents = [d for t, d in events if t == "ivr.intent_tagged"]
    assert [(d["intent"], d["node"], d["digits"], d["flow"]) for d in intents] == \
        [("recall_interested", "interested", "1", "churn_recall")]


async def test_outcome_tags_stage_and_outbox_commit_together_or_not_at_all(record, lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550115")
    flow, s = walk("screening", Keys("1"))
    before = await db_pool.fetchval("SELECT count(*) FROM outbox_events")
    # The session row is written last, after lifecycle's; a bad one fails the whole transaction.
    with pytest.raises(asyncpg.NotNullViolationError):
        await record(lifecycle, flow, s, c.id, server=None)
    assert await db_pool.fetchval("SELECT count(*) FROM calls") == 0
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == before
    assert (await lifecycle.get(c.id)).tags == ()
    done = await record(lifecycle, flow, s, c.id)
    assert done.contact.tags == ("high_intent",) and done.priority == 5
    types = [t for t, _d in await outbox(db_pool, c.id)]
    assert types[-4:] == ["call.completed", "contact.tagged", "contact.score_changed", "ivr.intent_tagged"]


@pytest.mark.parametrize("path", ["locked", "unlocked"])
async def test_a_commit_retried_after_its_reply_was_lost_records_the_session_once(path, lifecycle, db_pool):
    """The connection dropped after COMMIT reached the server: the session retries the same
    outcome (with the snapshot it took when it began) and gets the first record back."""
    c = await lifecycle.find_or_create_by_phone("+14155550119")
    flow, s = walk("screening", Keys("1"))
    seen = await lifecycle.snapshot(c.id, recorder.RESERVE) if path == "unlocked" else None
    first = await _record(lifecycle, flow, s, c.id, seen, linkedid="7.1")
    events = await outbox(db_pool, c.id)
    again = await _record(lifecycle, flow, s, c.id, seen, linkedid="7.1")
    assert (again.session_id, again.call_id, again.priority) == (first.session_id, first.call_id, 5)
    assert await db_pool.fetchval("SELECT count(*) FROM ivr_sessions") == 1
    assert await db_pool.fetchval("SELECT count(*) FROM calls") == 1
    assert await outbox(db_pool, c.id) == events
    assert (await lifecycle.get(c.id)).score == first.contact.score
    # another session of the same call (the caller sent back to the menu) is its own record
    later = await _record(lifecycle, flow, s, c.id, linkedid="7.1", started_at=NOW - timedelta(seconds=5))
    assert later.session_id != first.session_id
    assert await db_pool.fetchval("SELECT count(*) FROM calls") == 2


async def test_a_caller_without_a_usable_number_is_recorded_without_a_contact(record, lifecycle, db_pool):
    flow, s = walk("screening", Keys("2"))
    done = await record(lifecycle, flow, s, None)
    row = await db_pool.fetchrow("SELECT * FROM ivr_sessions WHERE id = $1", done.session_id)
    assert (row["call_id"], row["contact_id"], row["outcome"], row["intent"]) == (None, None, "completed",
                                                                                  "low_intent")
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == 0


SCREENING_EVENTS = [
    ("1", "high_intent", ["call.completed", "contact.tagged", "contact.score_changed", "ivr.intent_tagged"]),
    ("2", "low_intent", ["call.completed", "contact.tagged", "ivr.intent_tagged"])]


async def _statements_of(pool, service, key, snapshot: bool):
    """The statements one screening commit sends, on a connection that has learnt its types
    and statements, and what it committed."""
    flow, s = walk("screening", Keys(key))
    warm = await service.find_or_create_by_phone("+14155550118")
    seen = await service.snapshot(warm.id, recorder.RESERVE) if snapshot else None
    await _record(service, flow, s, warm.id, seen)
    c = await service.find_or_create_by_phone("+14155550117")
    seen = await service.snapshot(c.id, recorder.RESERVE) if snapshot else None
    statements: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda q: statements.append(q.query))
    done = await _record(service, flow, s, c.id, seen)
    return statements, c, done


@pytest.mark.parametrize("key, tag, events", SCREENING_EVENTS)
async def test_a_screening_keypress_commits_in_a_handful_of_round_trips(db_url, key, tag, events):
    """Each statement is a round trip that waits for a scheduler slot on a loaded machine:
    BEGIN, the contact's lock (with the call's and session's ids), every write, COMMIT."""
    pool = await create_pool(db_url, min_size=1, max_size=1)   # the server's pool: no reset query
    try:
        service = LifecycleService(pool, ManualClock(NOW), LifecycleSettings())
        statements, c, done = await _statements_of(pool, service, key, snapshot=False)
        sent = statements[statements.index("BEGIN;"):statements.index("COMMIT;") + 1]
        assert len(sent) <= 4, "\n".join(q.split("\n")[0][:80] for q in sent)
        assert done.contact.tags == (tag,) and (await service.get(c.id)).tags == (tag,)
        assert [t for t, _d in await outbox(pool, c.id)] == ["contact.created", *events]
    finally:
        await pool.close()


@pytest.mark.parametrize("key, tag, events", SCREENING_EVENTS)
async def test_from_the_sessions_snapshot_a_screening_keypress_commits_in_one_statement(db_url, key, tag, events):
    pool = await create_pool(db_url, min_size=1, max_size=1)   # the server's pool: no reset query
    try:
        service = LifecycleService(pool, ManualClock(NOW), LifecycleSettings())
        statements, c, done = await _statements_of(pool, service, key, snapshot=True)
        assert len(statements) == 1 and "BEGIN;" not in statements, statements
        other = await service.find_or_create_by_phone("+14155550124")
        await _record(service, *walk("screening", Keys(key)), other.id, await service.snapshot(other.id, recorder.RESERVE))
        unlocked = [q for q in statements if "guard" in q]
        assert len(unlocked) == 2 and unlocked[1] == unlocked[0]   # one text for every contact: prepared once
        after = await service.snapshot(c.id)
        assert done.contact.tags == (tag,) == after.contact.tags and after.version == 1
        assert [t for t, _d in await outbox(pool, c.id)] == ["contact.created", *events]
        assert await pool.fetchval("SELECT count(*) FROM calls WHERE contact_id = $1", c.id) == 1
    finally:
        await pool.close()


async def test_a_contact_changed_since_the_session_read_it_is_recorded_against_its_new_state(
        lifecycle, db_pool):
    """As if the session had locked the contact at its end: the same result as another
    contact's, changed the same way, recorded by the locked path."""
    c, twin = [await lifecycle.find_or_create_by_phone(p) for p in ("+14155550119", "+14155550122")]
    seen = await lifecycle.snapshot(c.id, recorder.RESERVE)
    for contact in (c, twin):
        await lifecycle.tag(contact.id, ["vip"], "crm")          # meanwhile, the CRM tags the caller
    flow, s = walk("screening", Keys("1"))
    done = await _record(lifecycle, flow, s, c.id, seen)
    expected = await _record(lifecycle, flow, s, twin.id)
    assert done.contact.tags == ("vip", "high_intent") == (await lifecycle.get(c.id)).tags
    assert done.contact.score == expected.contact.score == (await lifecycle.get(c.id)).score
    assert await db_pool.fetchval("SELECT count(*) FROM calls WHERE contact_id = $1", c.id) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM ivr_sessions WHERE contact_id = $1", c.id) == 1
    types = [t for t, _d in await outbox(db_pool, c.id)]
    assert types == [t for t, _d in await outbox(db_pool, twin.id)]
    assert types[:3] == ["contact.created", "contact.tagged", "call.completed"]


async def test_an_outcome_that_needs_a_statement_of_its_own_takes_the_locked_path(lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550120")
    await lifecycle.change_stage(c.id, "growth", "test")
    seen = await lifecycle.snapshot(c.id, recorder.RESERVE)
    flow, s = walk("csat_survey", Silence(), Keys("2"), Keys("1"))   # books a call back: a task
    done = await _record(lifecycle, flow, s, c.id, seen)
    assert done.contact.stage == "decline"
    tasks = await db_pool.fetch("SELECT rule FROM tasks WHERE contact_id = $1", c.id)
    assert "ivr:csat_survey:call_back" in [t["rule"] for t in tasks]
    assert await db_pool.fetchval("SELECT count(*) FROM calls WHERE contact_id = $1", c.id) == 1


async def test_two_sessions_of_one_contact_committing_at_once_are_both_recorded(lifecycle, db_pool):
    """Both read the contact at version 0; one statement commits, the other finds the row
    moved (or waits for its lock, then finds it moved) and takes the locked path: the same
    result as the two recorded one after the other, in the order they committed."""
    c, twin = [await lifecycle.find_or_create_by_phone(p) for p in ("+14155550121", "+14155550123")]
    walks = {"high_intent": walk("screening", Keys("1")), "low_intent": walk("screening", Keys("2"))}
    seen = [await lifecycle.snapshot(c.id, recorder.RESERVE) for _ in range(2)]
    done = await asyncio.gather(*(_record(lifecycle, *w, c.id, v, linkedid=f"{i}.1")
                                  for i, (w, v) in enumerate(zip(walks.values(), seen, strict=True))))
    assert len({d.call_id for d in done}) == 2
    events = await outbox(db_pool, c.id)
    order = [d["intent"] for t, d in events if t == "ivr.intent_tagged"]
    for intent in order:
        await _record(lifecycle, *walks[intent], twin.id)
    final, expected = await lifecycle.get(c.id), await lifecycle.get(twin.id)
    assert sorted(order) == ["high_intent", "low_intent"]
    assert (final.tags, final.score) == (expected.tags, expected.score)
    calls = await db_pool.fetch("SELECT intent FROM calls WHERE contact_id = $1", c.id)
    assert sorted(r["intent"] for r in calls) == ["high_intent", "low_intent"]
    assert [t for t, _d in events] == [t for t, _d in await outbox(db_pool, twin.id)]
