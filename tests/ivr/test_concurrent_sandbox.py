"""100 simulated callers through flows/screening.yaml at once, with a mix of answers:
every one is recorded with the right outcome, intent and keys, for its own contact."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.ivr.conftest import caller_number, poll

pytestmark = pytest.mark.asterisk

# (variables of the simulated caller, expected outcome, intent, digits)
MIX = [
    ({"SIM_DIGIT": "1", "SIM_TALK": "2"}, "transferred", "high_intent", "1"),
    ({"SIM_DIGIT": "2", "SIM_TALK": "4"}, "completed", "low_intent", "2"),
    ({"SIM_DIGIT": "2", "SIM_TALK": "4"}, "completed", "low_intent", "2"),
    ({"SIM_DIGITS": "98", "SIM_DIGIT_GAP": "2", "SIM_TALK": "5"}, "undecided", "undecided", "98"),
    ({"SIM_DIGIT": "", "SIM_TALK": "1"}, "abandoned_in_ivr", None, ""),
]


async def test_100_concurrent_callers_through_the_screening_flow_are_each_recorded_correctly(make_ivr):
    ivr = await make_ivr(CALLCYCLE_DATABASE_POOL_MAX="20")
    started = time.monotonic()
    plan = [(caller_number(), *MIX[i % len(MIX)]) for i in range(100)]
    linkedids: list[str] = []
    for batch in range(0, 100, 25):   # 25 originates at a time: Asterisk's knee is far above
        linkedids += await asyncio.gather(*[
            ivr.call(number, SIM_DIGIT_DELAY="1", **sim) for number, sim, *_ in plan[batch:batch + 25]])
    assert len(set(linkedids)) == 100
    await poll(lambda: ivr.pool.fetchval("SELECT count(*) FROM ivr_sessions WHERE linkedid = ANY($1)",
                                         linkedids), 45, "100 recorded sessions")
    await poll(lambda: _count(ivr, linkedids), 45, "all 100 sessions")
    rows = {r["linkedid"]: r for r in await ivr.pool.fetch(
        """SELECT s.*, p.phone FROM ivr_sessions s JOIN contact_phones p ON p.contact_id = s.contact_id
           WHERE s.linkedid = ANY($1)""", linkedids)}
    assert len(rows) == 100
    for linkedid, (number, _sim, outcome, intent, digits) in zip(linkedids, plan, strict=True):
        r = rows[linkedid]
        assert (r["phone"], r["outcome"], r["intent"], r["digits"]) == (number, outcome, intent, digits), linkedid
    calls = await ivr.pool.fetch("SELECT c.disposition, c.contact_id FROM calls c JOIN ivr_sessions s "
                                 "ON s.call_id = c.id WHERE s.linkedid = ANY($1)", linkedids)
    assert len(calls) == 100 and len({c["contact_id"] for c in calls}) == 100
    completed = await ivr.pool.fetchval("SELECT count(*) FROM outbox_events WHERE event_type = 'call.completed'")
    assert completed == 100
    await poll(lambda: ivr.service.sessions == {}, 10, "no session left")
    assert time.monotonic() - started < 60


async def _count(ivr, linkedids: list[str]) -> bool:
    return await ivr.pool.fetchval("SELECT count(*) FROM ivr_sessions WHERE linkedid = ANY($1)", linkedids) == 100
