"""Delivery against a real local receiver: signatures, masking, CRM outages, and how each
kind of answer (410, 429, 3xx, slow, 5xx until exhausted) is handled."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from callcycle.logs import mask_phone
from crm_sync import catalogue, outbox
from tests.crm_sync.conftest import (Received, add_endpoint, contact, count, crm_settings, emit,
                                     running_workers, stage_changed, wait_for)


async def test_requests_carry_standard_webhook_signatures_and_mask_phones_unless_allowed(db_pool, receiver, clock):
    masked_id, masked_secret = await add_endpoint(db_pool, receiver.url("/masked"))
    _full_id, full_secret = await add_endpoint(db_pool, receiver.url("/full"), allow_full_phone=True)
    data = {"contact": contact(7, phone="+14155550123"), "source": "import"}
    [event_id] = await emit(db_pool, [("contact.created", data, "contact:7")])
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: len(receiver.requests) == 2, what="both endpoints")
    masked, full = receiver.at("/masked")[0], receiver.at("/full")[0]
    assert Webhook(masked_secret).verify(masked.body, masked.headers)["id"] == str(event_id)
    assert Webhook(full_secret).verify(full.body, full.headers)
    assert masked.msg_id == full.msg_id == f"msg_{event_id.hex}"
    assert masked.headers["content-type"] == "application/json"
    envelope = masked.json
    assert (envelope["type"], envelope["version"]) == ("contact.created", 1)
    assert envelope["data"]["contact"]["phone"] == mask_phone("+14155550123") != "+14155550123"
    assert full.json["data"]["contact"]["phone"] == "+14155550123"
    assert envelope["timestamp"] and envelope["data"]["source"] == "import"
    assert await count(db_pool, "state = 'delivered' AND attempts = 1") == 2
    attempts = await db_pool.fetch("SELECT status, outcome, response_body FROM webhook_attempts")
    assert [(a["status"], a["outcome"], a["response_body"]) for a in attempts] == [(200, "succeeded", "ok")] * 2
    assert masked_id


async def test_rolled_back_transaction_leaves_no_event_and_nothing_is_sent(db_pool, receiver, clock):
    await add_endpoint(db_pool, receiver.url())
    async with db_pool.acquire() as conn:
        try:
            async with conn.transaction():
                await outbox.enqueue(conn, "contact.created", {"contact": contact(1), "source": "x"})
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    [kept] = await emit(db_pool, [("contact.created", {"contact": contact(2), "source": "x"}, None)])
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: receiver.requests, what="the committed event")
        await wait_for(lambda: count(db_pool, "state = 'delivered'"), what="delivered")
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == 1
    assert [r.json["id"] for r in receiver.requests] == [str(kept)]


async def test_crm_down_while_1000_outcomes_are_recorded_all_1000_arrive_once_in_order_after_it_returns(
        db_pool, receiver, clock):
    await add_endpoint(db_pool, receiver.url())
    await receiver.stop()  # the CRM is down: connections are refused
    events = [("contact.stage_changed", stage_changed(c, seq), f"contact:{c}")
              for seq in range(5) for c in range(200)]
    ids = await emit(db_pool, events)
    async with running_workers(db_pool, crm_settings(), clock, n=2):
        # Each contact's first event fails; the other four wait behind it.
        await wait_for(lambda: count(db_pool, "state = 'retry_wait'"), what="first failures")
        await wait_for(lambda: _attempts(db_pool, 200), what="200 failed first attempts")
        assert await count(db_pool, "state = 'delivered'") == 0
        await receiver.start()
        clock.advance(timedelta(seconds=6))  # past the 5 s retry
        await wait_for(lambda: _delivered(db_pool, 1000), timeout=60, what="1000 delivered")
    got = [r.json for r in receiver.requests]
    assert len(got) == 1000 and {g["id"] for g in got} == {str(i) for i in ids}
    for c in range(200):
        steps = [g["data"]["reason"] for g in got if g["data"]["contact"]["id"] == c]
        assert steps == [f"step {s}" for s in range(5)], c


async def _attempts(pool, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM webhook_attempts") >= n


async def _delivered(pool, n: int) -> bool:
    return await count(pool, "state = 'delivered'") >= n


async def test_410_disables_the_endpoint_and_nothing_more_is_sent_to_it(db_pool, receiver, clock):
    async def gone(_r: Received, _n: int) -> web.StreamResponse:
        return web.Response(status=410)

    receiver.behaviour["/gone"] = gone
    gone_id, _ = await add_endpoint(db_pool, receiver.url("/gone"))
    await add_endpoint(db_pool, receiver.url("/fine"))
    await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, "contact:1")])
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: _endpoint_state(db_pool, gone_id, "disabled"), what="endpoint disabled")
        await emit(db_pool, [("contact.created", {"contact": contact(2), "source": "x"}, "contact:2")])
        await wait_for(lambda: len(receiver.at("/fine")) == 2, what="the healthy endpoint")
        clock.advance(timedelta(hours=1))
        await _let_workers_poll(db_pool)
    assert len(receiver.at("/gone")) == 1
    row = await db_pool.fetchrow("SELECT state, disabled_reason FROM webhook_endpoints WHERE id = $1", gone_id)
    assert row["state"] == "disabled" and "410" in row["disabled_reason"]
    assert await count(db_pool, "endpoint_id = $1", gone_id) == 1  # no fan-out to a disabled endpoint


async def _endpoint_state(pool, endpoint_id: int, state: str) -> bool:
    return await pool.fetchval("SELECT state FROM webhook_endpoints WHERE id = $1", endpoint_id) == state


async def _let_workers_poll(pool) -> bool:
    await asyncio.sleep(0.2)  # several 50 ms poll cycles: proof of absence needs some time
    return True


async def test_429_retry_after_is_honoured_before_the_next_attempt(db_pool, receiver, clock):
    async def throttled(_r: Received, n: int) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "120"}) if n == 1 else web.Response()

    receiver.behaviour["/hook"] = throttled
    await add_endpoint(db_pool, receiver.url())
    await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, "contact:1")])
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: count(db_pool, "state = 'retry_wait'"), what="throttled")
        due = await db_pool.fetchval("SELECT due_at FROM webhook_deliveries")
        assert due == clock.now() + timedelta(seconds=120)  # not the schedule's 5 s
        clock.advance(timedelta(seconds=60))
        await _let_workers_poll(db_pool)
        assert len(receiver.requests) == 1
        clock.advance(timedelta(seconds=61))
        await wait_for(lambda: count(db_pool, "state = 'delivered'"), what="delivered after Retry-After")
    first, second = receiver.requests
    assert first.msg_id == second.msg_id
    statuses = await db_pool.fetch("SELECT status FROM webhook_attempts ORDER BY id")
    assert [s["status"] for s in statuses] == [429, 200]


async def test_a_redirect_is_a_failed_attempt_and_is_never_followed(db_pool, receiver, clock):
    async def moved(_r: Received, _n: int) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": receiver.url("/elsewhere")})

    receiver.behaviour["/hook"] = moved
    await add_endpoint(db_pool, receiver.url())
    await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, None)])
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: count(db_pool, "state = 'retry_wait' AND last_status = 302"), what="302 recorded")
    assert receiver.at("/elsewhere") == []
    assert await db_pool.fetchval("SELECT outcome FROM webhook_attempts") == "failed"


async def test_a_slow_receiver_times_out_and_does_not_hold_up_another_endpoint(db_pool, receiver, clock):
    async def slow(_r: Received, n: int) -> web.StreamResponse:
        if n == 1:
            await asyncio.sleep(3)
        return web.Response()

    receiver.behaviour["/slow"] = slow
    slow_id, _ = await add_endpoint(db_pool, receiver.url("/slow"))
    fast_id, _ = await add_endpoint(db_pool, receiver.url("/fast"))
    await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, "contact:1")])
    async with running_workers(db_pool, crm_settings(total_timeout=0.5), clock):
        await wait_for(lambda: count(db_pool, "endpoint_id = $1 AND state = 'delivered'", fast_id), what="fast")
        assert await count(db_pool, "endpoint_id = $1 AND state = 'in_flight'", slow_id) == 1
        await wait_for(lambda: count(db_pool, "endpoint_id = $1 AND state = 'retry_wait'", slow_id), what="timeout")
        clock.advance(timedelta(seconds=6))
        await wait_for(lambda: count(db_pool, "endpoint_id = $1 AND state = 'delivered'", slow_id), what="retried")
    first = await db_pool.fetchrow("SELECT error, latency_ms FROM webhook_attempts WHERE delivery_id = "
                                   "(SELECT id FROM webhook_deliveries WHERE endpoint_id = $1) ORDER BY id LIMIT 1",
                                   slow_id)
    assert first["error"] == "timeout" and 400 <= first["latency_ms"] < 2000


async def test_the_next_event_of_a_contact_waits_for_the_one_before_it(db_pool, receiver, clock):
    async def fail_first(r: Received, n: int) -> web.StreamResponse:
        return web.Response(status=500 if n == 1 else 200)

    receiver.behaviour["/hook"] = fail_first
    await add_endpoint(db_pool, receiver.url())
    first, second, other = await emit(db_pool, [
        ("contact.created", {"contact": contact(1), "source": "x"}, "contact:1"),
        ("contact.updated", {"contact": contact(1), "changed": ["stage"]}, "contact:1"),
        ("contact.created", {"contact": contact(2), "source": "x"}, "contact:2")], per_transaction=1)
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: count(db_pool, "state = 'delivered'"), what="the other contact")
        await _let_workers_poll(db_pool)
        assert [r.json["id"] for r in receiver.requests] == [str(first), str(other)]
        clock.advance(timedelta(seconds=6))
        await wait_for(lambda: _delivered(db_pool, 3), what="all three")
    assert [r.json["id"] for r in receiver.requests] == [str(first), str(other), str(first), str(second)]


async def test_exhausted_delivery_is_a_dead_letter_and_announced_as_webhook_exhausted(db_pool, receiver, clock):
    async def broken(_r: Received, _n: int) -> web.StreamResponse:
        return web.Response(status=500, text="x" * 5000)

    receiver.behaviour["/broken"] = broken
    broken_id, _ = await add_endpoint(db_pool, receiver.url("/broken"), event_types=["contact.created"])
    await add_endpoint(db_pool, receiver.url("/ops"), event_types=["webhook.exhausted"])
    [event_id] = await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, "contact:1")])
    settings = crm_settings(retry_schedule=(0.0, 5.0, 300.0))
    async with running_workers(db_pool, settings, clock):
        for attempt in (1, 2):
            await wait_for(lambda: _attempts(db_pool, attempt), what=f"attempt {attempt}")
            await wait_for(lambda: count(db_pool, "state = 'retry_wait'"), what="waiting")
            clock.advance(timedelta(seconds=301))
        await wait_for(lambda: receiver.at("/ops"), what="webhook.exhausted delivered")
    assert len(receiver.at("/broken")) == 3
    dead = await db_pool.fetchrow("SELECT * FROM webhook_dead_letters")
    assert (dead["event_id"], dead["endpoint_id"], dead["attempts"], dead["last_status"]) == (
        event_id, broken_id, 3, 500)
    assert await count(db_pool, "state = 'dead'") == 1
    notice = receiver.at("/ops")[0].json
    assert notice["type"] == "webhook.exhausted"
    assert notice["data"] == {"event_id": str(event_id), "event_type": "contact.created",
                              "endpoint_id": broken_id, "attempts": 3, "last_status": 500}
    catalogue.validate("webhook.exhausted", notice["data"])
    bodies = await db_pool.fetch("SELECT length(response_body) AS n FROM webhook_attempts WHERE status = 500")
    assert {b["n"] for b in bodies} == {1024}  # truncated


async def test_without_listen_polling_alone_delivers_and_with_listen_a_notify_wakes_workers(db_pool, db_url, receiver,
                                                                                           clock):
    await add_endpoint(db_pool, receiver.url())
    slow_poll = crm_settings(poll_interval=30.0)
    async with running_workers(db_pool, slow_poll, clock, db_url=db_url):
        await asyncio.sleep(0.3)  # let the LISTEN connection come up (it is not awaited)
        await emit(db_pool, [("contact.created", {"contact": contact(1), "source": "x"}, None)])
        await wait_for(lambda: receiver.requests, timeout=5, what="woken by NOTIFY, not the 30 s poll")
    async with running_workers(db_pool, crm_settings(poll_interval=0.05), clock):
        await emit(db_pool, [("contact.created", {"contact": contact(2), "source": "x"}, None)])
        await wait_for(lambda: len(receiver.requests) == 2, what="found by polling, with no LISTEN")
    assert uuid.UUID(receiver.requests[1].json["id"])


async def _deliver_three(db_pool, receiver, clock, answer) -> None:
    """Three contacts' events to one endpoint answering with ``answer``, until all are delivered."""
    receiver.behaviour["/hook"] = answer
    await add_endpoint(db_pool, receiver.url())
    await emit(db_pool, [("contact.created", {"contact": contact(i), "source": "x"}, f"contact:{i}")
                         for i in range(3)])
    async with running_workers(db_pool, crm_settings(), clock):
        await wait_for(lambda: _delivered(db_pool, 3), what="all three delivered")


async def test_a_binary_answer_is_logged_and_does_not_stall_the_worker(db_pool, receiver, clock):
    # PostgreSQL text cannot hold NUL; a receiver answering in binary once failed every write
    async def binary(_r: Received, _n: int) -> web.StreamResponse:
        return web.Response(body=b"\x1f\x8b\x08\x00ok\x00\xff", content_type="application/octet-stream")

    await _deliver_three(db_pool, receiver, clock, binary)
    assert len(receiver.requests) == 3 and receiver.requests[0].headers["accept-encoding"] == "identity"
    body = await db_pool.fetchval("SELECT response_body FROM webhook_attempts LIMIT 1")
    assert "\x00" not in body and "ok" in body


async def test_a_result_the_database_refuses_is_recorded_without_it_and_holds_up_no_other(
        db_pool, receiver, clock, monkeypatch):
    """Whatever else PostgreSQL may refuse in a receiver's answer (here: the NUL the
    sanitizer above removes, let through), the batch is recorded result by result; the
    refused one without its answer, the others as they are."""
    from crm_sync import worker

    async def answer(r: Received, _n: int) -> web.StreamResponse:
        bad = r.json["data"]["contact"]["id"] == 1
        return web.Response(text="bin\x00ary" if bad else "fine")

    monkeypatch.setattr(worker, "_loggable", lambda text: text)
    await _deliver_three(db_pool, receiver, clock, answer)
    rows = await db_pool.fetch("SELECT response_body, error FROM webhook_attempts ORDER BY response_body")
    assert len(rows) == 3 and sorted(r["response_body"] or "" for r in rows) == ["", "fine", "fine"]
    refused = next(r for r in rows if r["response_body"] is None)
    assert refused["error"].startswith("answer not recordable")
