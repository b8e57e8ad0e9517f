"""What a finished session commits, against a real PostgreSQL (no Asterisk): the shipped
csat_survey and churn_recall flows walked through the interpreter and recorded; every
outbox row matches the event catalogue; the whole outcome commits in one transaction."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from callcycle.clock import ManualClock
from callcycle.db import _init_connection
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


async def record(lifecycle, flow, state, contact_id, **changes):
    fields = dict(server="main", linkedid="1.1", channel="Local/x;1", flow=flow.name, flow_version=flow.version,
                  direction=Direction.INBOUND, campaign_id=None, attempt_id=None, contact_id=contact_id, state=state,
                  stamps=(NOW,) * len(state.records), started_at=NOW - timedelta(seconds=30), ended_at=NOW)
    return await recorder.commit(lifecycle, recorder.Ended(**{**fields, **changes}))


async def outbox(pool, contact_id):
    rows = await pool.fetch("SELECT event_type, payload, schema_version FROM outbox_events "
                            "WHERE ordering_key = $1 ORDER BY seq", f"contact:{contact_id}")
    for r in rows:
        catalogue.validate(r["event_type"], r["payload"], r["schema_version"])
    return [(r["event_type"], r["payload"]) for r in rows]


async def test_satisfied_survey_is_stored_on_the_call_and_makes_a_referral_candidate(lifecycle, db_pool):
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
        lifecycle, db_pool):
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


async def test_a_survey_score_of_1_is_not_read_as_the_screening_menus_high_intent(lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550116")
    flow, s = walk("csat_survey", Silence(), Keys("1"), Silence())
    done = await record(lifecycle, flow, s, c.id)
    call = await db_pool.fetchrow("SELECT digits, satisfaction FROM calls WHERE id = $1", done.call_id)
    assert (call["digits"], call["satisfaction"]) == (None, 1)   # the key stays in ivr_steps/ivr_sessions
    assert "high_intent" not in done.contact.tags
    assert await db_pool.fetchval("SELECT digits FROM ivr_sessions WHERE id = $1", done.session_id) == "1"


async def test_a_stage_change_the_lifecycle_refuses_is_recorded_and_skipped(lifecycle, db_pool):
    c = await lifecycle.find_or_create_by_phone("+14155550113")   # acquisition: no way to decline
    flow, s = walk("csat_survey", Silence(), Keys("2"), Silence())
    done = await record(lifecycle, flow, s, c.id)
    assert (done.contact.stage, done.refused) == ("acquisition", ("unhappy",))
    kinds = await db_pool.fetch("SELECT kind, node FROM ivr_steps WHERE session_id = $1 AND kind = 'refused'",
                                done.session_id)
    assert [tuple(k) for k in kinds] == [("refused", "unhappy")]


@pytest.mark.parametrize("key, reason", [("1", "price"), ("2", "service"), ("3", "needs_changed")])
async def test_churn_recall_sends_the_reason_to_the_crm_and_an_interested_customer_is_recalled(
        lifecycle, db_pool, key, reason):
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


async def test_outcome_tags_stage_and_outbox_commit_together_or_not_at_all(lifecycle, db_pool):
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


async def test_a_caller_without_a_usable_number_is_recorded_without_a_contact(lifecycle, db_pool):
    flow, s = walk("screening", Keys("2"))
    done = await record(lifecycle, flow, s, None)
    row = await db_pool.fetchrow("SELECT * FROM ivr_sessions WHERE id = $1", done.session_id)
    assert (row["call_id"], row["contact_id"], row["outcome"], row["intent"]) == (None, None, "completed",
                                                                                  "low_intent")
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == 0


@pytest.mark.parametrize("key, tag, events", [
    ("1", "high_intent", ["call.completed", "contact.tagged", "contact.score_changed", "ivr.intent_tagged"]),
    ("2", "low_intent", ["call.completed", "contact.tagged", "ivr.intent_tagged"])])
async def test_a_screening_keypress_commits_in_a_handful_of_round_trips(db_url, key, tag, events):
    """Each statement is a round trip that waits for a scheduler slot on a loaded machine:
    BEGIN, the contact's lock (with the call's and session's ids), every write, COMMIT."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1, init=_init_connection)
    try:
        service = LifecycleService(pool, ManualClock(NOW), LifecycleSettings())
        flow, s = walk("screening", Keys(key))
        warm = await service.find_or_create_by_phone("+14155550118")
        await record(service, flow, s, warm.id)   # the connection has learnt its types and statements
        c = await service.find_or_create_by_phone("+14155550117")
        statements: list[str] = []
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda q: statements.append(q.query))
        done = await record(service, flow, s, c.id)
        sent = statements[statements.index("BEGIN;"):statements.index("COMMIT;") + 1]
        assert len(sent) <= 4, "\n".join(q.split("\n")[0][:80] for q in sent)
        assert done.contact.tags == (tag,) and (await service.get(c.id)).tags == (tag,)
        assert [t for t, _d in await outbox(pool, c.id)] == ["contact.created", *events]
    finally:
        await pool.close()
