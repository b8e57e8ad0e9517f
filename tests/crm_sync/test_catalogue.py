"""The event catalogue: a JSON Schema per type, samples of the contract, and the real rows
the lifecycle package writes to the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm_sync import catalogue
from crm_sync.errors import InvalidEvent, UnknownEventType
from tests.crm_sync.conftest import contact

TASK = {"id": 3, "kind": "follow_up", "due_at": "2026-01-08T09:00:00+00:00", "reason": "2 touches / 3 days",
        "rule": "acquisition.undecided"}
CAMPAIGN = {"campaign": {"id": 4, "name": "Renewals", "mode": "predictive"}, "by": "supervisor-1"}
SAMPLES = {
    "contact.created": {"contact": contact(1), "source": "import"},
    "contact.updated": {"contact": contact(1), "changed": ["name"]},
    "contact.stage_changed": {"contact": contact(1, stage="growth"), "from_stage": "acquisition",
                              "to_stage": "growth", "reason": "needs captured", "cause": "call"},
    "contact.score_changed": {"contact": contact(1), "old_score": 40, "new_score": 85, "band": "hot",
                              "reason": "pressed 1"},
    "contact.tagged": {"contact": contact(1), "added": ["high_intent"], "removed": [], "source": "ivr"},
    "task.created": {"contact": contact(1), "task": TASK},
    "task.due": {"contact": contact(1), "task": TASK},
    "task.completed": {"contact": contact(1), "task": TASK},
    "call.completed": {"contact": contact(1), "call": {
        "id": "1700000000.42", "direction": "inbound", "campaign_id": None, "attempt_id": None,
        "disposition": "answered", "intent": "high_intent", "digits": "1", "ivr_path": ["menu"],
        "satisfaction": None, "talk_seconds": 60, "ring_seconds": 4, "agent": "alice",
        "started_at": "2026-01-05T09:00:00+00:00", "ended_at": "2026-01-05T09:01:04+00:00"}},
    "contact.dnc_added": {"contact": None, "phone": "+14155550123"},
    "ivr.intent_tagged": {"contact": contact(1), "call_id": "1700000000.42", "flow": "screening",
                          "node": "menu", "intent": "high_intent", "digits": "1"},
    "ivr.custom_event": {"contact": contact(1), "call_id": 42, "flow": "churn_recall", "node": "reason_price",
                         "name": "churn_reason", "data": {"reason": "price"}},
    "campaign.started": CAMPAIGN, "campaign.paused": CAMPAIGN, "campaign.resumed": CAMPAIGN,
    "campaign.finished": {**CAMPAIGN, "by": None},
    "webhook.exhausted": {"event_id": "6f1c2a57-8f0e-4a39-9a55-0d1f6a1c9b11", "event_type": "task.due",
                          "endpoint_id": 2, "attempts": 10, "last_status": 503},
}


def test_every_event_type_of_the_contract_has_a_schema_and_its_sample_validates():
    cat = catalogue.load()
    assert set(cat.types()) == set(SAMPLES)
    for event_type, data in SAMPLES.items():
        cat.validate(event_type, data)


@pytest.mark.parametrize("event_type, data, field", [
    ("contact.created", {"contact": {**contact(1), "phone": "0415 555"}, "source": "x"}, "contact/phone"),
    ("contact.score_changed", {**SAMPLES["contact.score_changed"], "band": "warm"}, "band"),
    ("call.completed", {"contact": contact(1), "call": {}}, "call"),
    ("task.due", {"task": TASK}, "contact"),
])
def test_data_that_breaks_its_schema_is_refused_naming_the_field(event_type, data, field):
    with pytest.raises(InvalidEvent) as err:
        catalogue.validate(event_type, data)
    assert field in str(err.value)


def test_an_unknown_type_or_version_is_refused():
    with pytest.raises(UnknownEventType):
        catalogue.validate("contact.exploded", {})
    with pytest.raises(UnknownEventType):
        catalogue.validate("contact.created", SAMPLES["contact.created"], version=2)


async def test_rows_the_lifecycle_package_writes_match_the_catalogue(db_pool):
    service_mod = pytest.importorskip("lifecycle.service")
    from callcycle.clock import ManualClock
    from lifecycle.config import LifecycleSettings
    from lifecycle.models import CallOutcome, Direction

    clock = ManualClock()
    svc = service_mod.LifecycleService(db_pool, clock, LifecycleSettings())
    created = await svc.find_or_create_by_phone("+14155550123")
    await svc.tag(created.id, ["vip"], "api")
    await svc.record_call(CallOutcome(created.id, Direction.INBOUND, "answered", clock.now() - timedelta(minutes=1),
                                      clock.now(), intent="high_intent", digits="1", talk_seconds=50))
    await svc.change_stage(created.id, "growth", "needs captured")
    await svc.add_dnc("+14155550199", "crm")
    clock.advance(timedelta(days=4))
    await svc.emit_due_tasks()
    rows = await db_pool.fetch("SELECT event_type, schema_version, payload FROM outbox_events ORDER BY seq")
    assert len({r["event_type"] for r in rows}) >= 4
    for row in rows:
        catalogue.validate(row["event_type"], row["payload"], row["schema_version"])
