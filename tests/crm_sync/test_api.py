"""The webhook API through the real app: endpoints, secrets shown once, rotation with two
signatures, SSRF refusal, the delivery log, dead letters, and replay keeping the webhook-id."""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from callcycle import keys
from callcycle.app import init_app
from callcycle.settings import with_changes
from crm_sync import outbox
from tests.conftest import auth
from tests.crm_sync.conftest import Received, contact, crm_settings, wait_for

ADMIN = auth("admin")


async def _client(aiohttp_client, settings, clock, **crm):
    features = {**settings.features, "crm_sync": crm_settings(**crm)}
    app = init_app(with_changes(settings, features=features), clock=clock, with_pbx=False)
    return app, await aiohttp_client(app)


async def _emit(app: web.Application, event_type: str, data: dict, key: str | None = None) -> uuid.UUID:
    async with app[keys.DB].acquire() as conn, conn.transaction():
        return await outbox.enqueue(conn, event_type, data, ordering_key=key)


async def test_an_endpoint_on_loopback_is_refused_unless_the_deployment_allows_it(aiohttp_client, settings, clock):
    _app, client = await _client(aiohttp_client, settings, clock, allow_private_destinations=False)
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest",
                "http://10.1.2.3/x", "http://[::1]/x", "ftp://example.com/x"):
        resp = await client.post("/api/webhooks/endpoints", json={"url": url}, headers=ADMIN)
        assert resp.status == 422, url
        assert (await resp.json())["error"] == "webhook-destination-refused"
    _app, client = await _client(aiohttp_client, settings, clock, allow_private_destinations=True)
    resp = await client.post("/api/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=ADMIN)
    assert resp.status == 201


async def test_endpoint_crud_shows_the_secret_only_on_create_and_rotate(aiohttp_client, settings, clock):
    _app, client = await _client(aiohttp_client, settings, clock)
    resp = await client.post("/api/webhooks/endpoints", headers=ADMIN, json={
        "url": "http://127.0.0.1:9/a", "event_types": ["call.completed"], "description": "CRM"})
    created = await resp.json()
    assert resp.status == 201 and created["secret"].startswith("whsec_")
    eid = created["id"]
    shown = await (await client.get(f"/api/webhooks/endpoints/{eid}", headers=ADMIN)).json()
    listed = await (await client.get("/api/webhooks/endpoints", headers=ADMIN)).json()
    assert "secret" not in shown and created["secret"] not in str(listed)
    resp = await client.patch(f"/api/webhooks/endpoints/{eid}", headers=ADMIN,
                              json={"event_types": ["nope.never"]})
    assert resp.status == 422 and (await resp.json())["error"] == "invalid-webhook-endpoint"
    resp = await client.patch(f"/api/webhooks/endpoints/{eid}", headers=ADMIN, json={"event_types": [{}]})
    assert resp.status == 422 and "event_types" in (await resp.json())["detail"]
    resp = await client.patch(f"/api/webhooks/endpoints/{eid}", headers=ADMIN, json={"state": "disabled"})
    assert (await resp.json())["state"] == "disabled"
    rotated = await (await client.post(f"/api/webhooks/endpoints/{eid}/rotate-secret", headers=ADMIN)).json()
    assert rotated["secret"] != created["secret"] and rotated["secret_rotating"]
    assert (await client.delete(f"/api/webhooks/endpoints/{eid}", headers=ADMIN)).status == 204
    resp = await client.get(f"/api/webhooks/endpoints/{eid}", headers=ADMIN)
    assert resp.status == 404 and (await resp.json())["error"] == "no-such-webhook-endpoint"


async def test_after_rotation_requests_carry_both_signatures_until_the_overlap_ends(
        aiohttp_client, settings, clock, receiver):
    app, client = await _client(aiohttp_client, settings, clock)
    created = await (await client.post("/api/webhooks/endpoints", headers=ADMIN,
                                       json={"url": receiver.url()})).json()
    old = created["secret"]
    new = (await (await client.post(f"/api/webhooks/endpoints/{created['id']}/rotate-secret",
                                    headers=ADMIN)).json())["secret"]
    await _emit(app, "contact.created", {"contact": contact(1), "source": "x"})
    await wait_for(lambda: receiver.requests, what="delivery during the overlap")
    during = receiver.requests[0]
    assert len(during.headers["webhook-signature"].split()) == 2
    assert Webhook(old).verify(during.body, during.headers) and Webhook(new).verify(during.body, during.headers)
    clock.advance(timedelta(days=1, seconds=1))
    await _emit(app, "contact.created", {"contact": contact(2), "source": "x"})
    await wait_for(lambda: len(receiver.requests) == 2, what="delivery after the overlap")
    after = receiver.requests[1]
    assert len(after.headers["webhook-signature"].split()) == 1
    assert Webhook(new).verify(after.body, after.headers)


async def test_delivery_log_and_replay_of_one_event_and_of_a_time_range_keep_the_webhook_id(
        aiohttp_client, settings, clock, receiver):
    app, client = await _client(aiohttp_client, settings, clock)
    await client.post("/api/webhooks/endpoints", headers=ADMIN, json={"url": receiver.url()})
    event_id = await _emit(app, "call.completed", _call_completed(), "contact:5")
    await wait_for(lambda: receiver.requests, what="first delivery")
    sup = auth("supervisor")
    log = await (await client.get(f"/api/webhooks/deliveries?event_id={event_id}", headers=sup)).json()
    [delivery] = log["deliveries"]
    await wait_for(lambda: _state(client, event_id, "delivered"), what="delivered in the log")
    attempts = await (await client.get(f"/api/webhooks/deliveries/{delivery['id']}/attempts", headers=sup)).json()
    assert [(a["attempt"], a["status"], a["outcome"]) for a in attempts["attempts"]] == [(1, 200, "succeeded")]
    resp = await client.post("/api/webhooks/replay", headers=ADMIN, json={"event_id": str(event_id)})
    assert resp.status == 202 and (await resp.json())["deliveries_created"] == 1
    await wait_for(lambda: len(receiver.requests) == 2, what="replayed")
    start = (clock.now() - timedelta(hours=1)).isoformat()
    end = (clock.now() + timedelta(hours=1)).isoformat()
    resp = await client.post("/api/webhooks/replay", headers=ADMIN, json={"from": start, "to": end})
    assert (await resp.json())["deliveries_created"] == 1
    await wait_for(lambda: len(receiver.requests) == 3, what="range replayed")
    assert {r.msg_id for r in receiver.requests} == {f"msg_{event_id.hex}"}
    assert len({r.body for r in receiver.requests}) == 1
    resp = await client.post("/api/webhooks/replay", headers=ADMIN, json={"event_id": str(uuid.uuid4())})
    assert resp.status == 404 and (await resp.json())["error"] == "no-such-event"
    resp = await client.post("/api/webhooks/replay", headers=ADMIN, json={"from": end, "to": start})
    assert resp.status == 422 and (await resp.json())["error"] == "invalid-replay"


async def _state(client, event_id, state: str) -> bool:
    log = await (await client.get(f"/api/webhooks/deliveries?event_id={event_id}", headers=auth("supervisor"))).json()
    return bool(log["deliveries"]) and all(d["state"] == state for d in log["deliveries"])


def _call_completed() -> dict:
    return {"contact": contact(5), "call": {
        "id": "c-1", "direction": "outbound", "campaign_id": 3, "attempt_id": 9, "disposition": "answered",
        "intent": "high_intent", "digits": "1", "ivr_path": ["welcome", "screen"], "satisfaction": 5,
        "talk_seconds": 62.5, "ring_seconds": 7, "agent": "alice", "started_at": "2026-01-05T09:00:00+00:00",
        "ended_at": "2026-01-05T09:01:10+00:00"}}


async def test_dead_letters_are_listed_for_supervisors(aiohttp_client, settings, clock, receiver):
    async def broken(_r: Received, _n: int) -> web.StreamResponse:
        return web.Response(status=500)

    receiver.behaviour["/hook"] = broken
    app, client = await _client(aiohttp_client, settings, clock, retry_schedule=(0.0,))
    await client.post("/api/webhooks/endpoints", headers=ADMIN,
                      json={"url": receiver.url(), "event_types": ["task.due"]})
    event_id = await _emit(app, "task.due", {"contact": contact(1), "task": {
        "id": 1, "kind": "call", "due_at": "2026-01-05T09:00:00+00:00", "reason": "renewal", "rule": "r1"}})
    letters = await wait_for(lambda: _dead_letters(client), what="a dead letter")
    assert [(d["event_id"], d["event_type"], d["attempts"], d["last_status"]) for d in letters] == [
        (str(event_id), "task.due", 1, 500)]
    types = await (await client.get("/api/webhooks/event-types", headers=auth("crm"))).json()
    assert {"call.completed", "webhook.exhausted", "campaign.resumed"} <= {t["type"] for t in types["event_types"]}


async def _dead_letters(client) -> list:
    return (await (await client.get("/api/webhooks/dead-letters", headers=auth("supervisor"))).json())["dead_letters"]


async def test_cli_replays_an_event_with_its_original_id(db_pool, db_url, tmp_path, monkeypatch, capsys):
    import asyncio

    from callcycle import cli
    from tests.crm_sync.conftest import add_endpoint, emit

    await add_endpoint(db_pool, "http://127.0.0.1:9/hook")
    [event_id] = await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, None)])
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CALLCYCLE_SERVER_DATA_DIR", str(tmp_path))
    assert await asyncio.to_thread(cli.main, ["webhooks", "replay", "--event-id", str(event_id)]) == 0
    assert "1 deliveries queued again" in capsys.readouterr().out
    rows = await db_pool.fetch("SELECT event_id, replayed FROM webhook_deliveries ORDER BY id")
    assert [(r["event_id"], r["replayed"]) for r in rows] == [(event_id, False), (event_id, True)]
    assert await asyncio.to_thread(cli.main, ["webhooks", "replay", "--event-id", str(uuid.uuid4())]) == 1


async def test_an_id_or_paging_value_that_is_not_a_bigint_in_ascii_digits_is_a_422_naming_it(
        aiohttp_client, settings, clock):
    _app, client = await _client(aiohttp_client, settings, clock)
    # int() takes "١٢" (Arabic-Indic digits) and "1_000"; a 20-digit id overflows bigint
    for path, name in (("/api/webhooks/endpoints/99999999999999999999", "endpoint_id"),
                       ("/api/webhooks/endpoints/%D9%A1%D9%A2", "endpoint_id"),
                       ("/api/webhooks/deliveries?endpoint_id=1_000", "endpoint_id"),
                       ("/api/webhooks/deliveries?before=-5", "before"),
                       ("/api/webhooks/dead-letters?limit=99999999999999999999", "limit")):
        resp = await client.get(path, headers=ADMIN)
        assert resp.status == 422, path
        body = await resp.json()
        assert body["error"] == "invalid-parameter" and name in body["detail"], (path, body)
