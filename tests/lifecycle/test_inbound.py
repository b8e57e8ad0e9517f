"""POST /crm/events: Standard Webhooks signatures, idempotency, each event type."""

import json

import pytest

from callcycle.app import init_app
from crm_sync.signing import headers, new_secret
from tests.lifecycle.conftest import events

OLD, NEW = new_secret(), new_secret()


@pytest.fixture
async def crm(aiohttp_client, make_settings, clock):
    settings = make_settings(CALLCYCLE_CRM_INBOUND_SECRETS=f"{OLD}, {NEW}")
    client = await aiohttp_client(init_app(settings, clock=clock, with_pbx=False))
    counter = iter(range(1, 10_000))

    async def send(event_type, data, *, msg_id=None, secrets=(NEW,), ts=None):
        body = json.dumps({"type": event_type, "data": data}).encode()
        msg_id = msg_id or f"msg_{next(counter)}"
        hdrs = headers(secrets, msg_id, body, int(clock.now().timestamp()) if ts is None else ts)
        resp = await client.post("/crm/events", data=body, headers={**hdrs, "Content-Type": "application/json"})
        return resp.status, await resp.json()

    send.client = client
    return send


async def test_a_lead_is_upserted_once_per_webhook_id_and_by_external_id(crm, db_pool):
    status, body = await crm("lead.upserted", {"external_id": "crm-9", "phones": ["415 555 0123"], "name": "Bo"},
                             msg_id="msg_a")
    assert status == 200 and body["duplicate"] is False
    status, again = await crm("lead.upserted", {"external_id": "crm-9", "phones": ["415 555 0123"]}, msg_id="msg_a")
    assert status == 200 and again["duplicate"] is True
    await crm("lead.upserted", {"external_id": "crm-9", "name": "Bo Li", "tags": ["downloaded_material"]})
    row = await db_pool.fetchrow("SELECT name, score, tags FROM contacts WHERE external_id = 'crm-9'")
    assert tuple(row) == ("Bo Li", 15, ["downloaded_material"])
    assert await db_pool.fetchval("SELECT count(*) FROM contacts") == 1
    types = [e["type"] for e in await events(db_pool, body["contact_id"])]
    assert types == ["contact.created", "contact.updated", "contact.tagged", "contact.score_changed"]


async def test_either_secret_of_a_rotation_is_accepted_and_a_bad_signature_stores_nothing(crm, db_pool, clock):
    assert (await crm("dnc.added", {"phone": "+14155550123"}, secrets=(OLD,)))[0] == 200
    status, body = await crm("dnc.added", {"phone": "+14155550124"}, secrets=(new_secret(),))
    assert (status, body["error"]) == (401, "bad-signature")
    status, body = await crm("dnc.added", {"phone": "+14155550125"}, ts=int(clock.now().timestamp()) - 301)
    assert (status, body["error"]) == (401, "webhook-timestamp-out-of-tolerance")
    resp = await crm.client.post("/crm/events", json={"type": "dnc.added", "data": {"phone": "+14155550126"}})
    assert resp.status == 401
    assert [r["phone"] for r in await db_pool.fetch("SELECT phone FROM dnc_numbers")] == ["+14155550123"]
    assert await db_pool.fetchval("SELECT count(*) FROM crm_inbound_events") == 1


async def test_stage_purchase_complaint_and_risk_events_drive_the_lifecycle(crm, db_pool):
    _, lead = await crm("lead.upserted", {"external_id": "crm-1", "phones": ["+14155550123"]})
    status, body = await crm("contact.stage_changed", {"external_id": "crm-1", "stage": "decline"})
    assert status == 409 and body["error"] == "transition-refused"
    assert await db_pool.fetchval("SELECT count(*) FROM crm_inbound_events") == 1  # refused: not remembered
    assert (await crm("contact.stage_changed", {"external_id": "crm-1", "stage": "growth", "reason": "demo"}))[0] == 200
    await crm("purchase.recorded", {"external_id": "crm-1", "amount": 150000.0, "renewal_date": "2027-01-05"})
    await crm("complaint.opened", {"phone": "(415) 555-0123", "ref": "T-7"})
    _, risk = await crm("risk.signal", {"contact_id": lead["contact_id"], "kind": "asked_competitor"})
    assert risk["stage"] == "decline"
    changes = [(e["data"]["from_stage"], e["data"]["to_stage"], e["data"]["cause"])
               for e in await events(db_pool, lead["contact_id"], "contact.stage_changed")]
    assert changes == [("acquisition", "growth", "crm:stage_changed"), ("growth", "maturity", "rule:first_purchase"),
                       ("maturity", "decline", "rule:risk_detected")]
    rules = sorted(r["rule"] for r in await db_pool.fetch("SELECT rule FROM tasks"))
    assert rules == ["complaint_weekly", "renewal_reminder", "risk_follow_up"]
    await crm("complaint.resolved", {"external_id": "crm-1", "ref": "T-7"})
    assert await db_pool.fetchval("SELECT state FROM tasks WHERE rule = 'complaint_weekly'") == "cancelled"


async def test_an_invalid_event_body_is_422_naming_the_field(crm):
    status, body = await crm("purchase.recorded", {"external_id": "x", "amount": "lots"})
    assert status == 422 and body["detail"]["field"] == "data.amount"


@pytest.mark.parametrize("bad", [{"purchased_at": "garbage"}, {"purchased_at": "2026-01-05T10:00"},
                                 {"renewal_date": "next spring"}])
async def test_a_purchase_with_a_bad_time_is_422_naming_the_field_and_stores_nothing(crm, db_pool, bad):
    await crm("lead.upserted", {"external_id": "crm-2", "phones": ["+14155550124"]})
    status, body = await crm("purchase.recorded", {"external_id": "crm-2", **bad})
    assert status == 422 and body["detail"]["field"] == f"data.{next(iter(bad))}"
    assert await db_pool.fetchval("SELECT count(*) FROM purchases") == 0
