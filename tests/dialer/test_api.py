"""The dialer API: campaigns, their settings' limits, controls with their CRM events,
leads from segments, tasks and callbacks, preview choices, figures, do-not-call imports."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from callcycle import keys
from callcycle.app import init_app
from callcycle.clock import ManualClock
from crm_sync import catalogue
from lifecycle.models import CallOutcome, Direction, NewContact
from tests.conftest import auth

START = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(init_app(settings, clock=ManualClock(START), with_pbx=False))


async def call(client, method: str, path: str, body=None, role: str = "supervisor"):
    resp = await client.request(method, path, json=body, headers=auth(role))
    return resp.status, await resp.json()


async def contacts(client, n: int, tag: str = "spring", first: int = 2000) -> list[int]:
    lifecycle = client.server.app[keys.LIFECYCLE]
    ids = []
    for i in range(n):
        c = await lifecycle.create(NewContact((f"+1415555{first + i:04d}",), time_zones=("America/Los_Angeles",),
                                              tags=(tag,)))
        ids.append(c.id)
    return ids


async def test_a_campaign_is_created_read_and_listed_with_its_settings(client):
    status, body = await call(client, "POST", "/dialer/campaigns", {
        "name": "Spring renewals", "mode": "predictive",
        "settings": {"queue": "sales", "caller_id": "+14155550000", "amd": True, "max_lines": 20,
                     "retry_delays": {"busy": 120}, "local_presence": {"+1212": "+12125550000"}}})
    assert status == 201, body
    assert body["state"] == "draft" and body["settings"]["retry_delays"]["busy"] == 120
    assert body["settings"]["retry_delays"]["no_answer"] == 3600   # the other defaults stay
    status, got = await call(client, "GET", f"/dialer/campaigns/{body['id']}")
    assert status == 200 and got["name"] == "Spring renewals" and got["figures"]["leads"]["ready"] == 0
    status, listed = await call(client, "GET", "/dialer/campaigns?state=draft")
    assert [c["id"] for c in listed["campaigns"]] == [body["id"]]


async def test_settings_outside_the_rules_are_refused_with_422_naming_the_field(client):
    status, body = await call(client, "POST", "/dialer/campaigns",
                              {"name": "x", "mode": "predictive", "settings": {"no_answer_timeout_s": 10}})
    assert status == 422 and body == {"error": "invalid-campaign",
                                      "detail": {"field": "no_answer_timeout_s",
                                                 "problem": "15-120 s (ring at least 15 s)"}}
    status, body = await call(client, "POST", "/dialer/campaigns",
                              {"name": "x", "mode": "predictive", "settings": {"ring_timeout_override_s": 1}})
    assert status == 422 and body["detail"]["field"] == "ring_timeout_override_s"   # a server-only setting


async def test_controls_follow_the_state_table_and_each_change_is_an_outbox_event(client):
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "c", "mode": "progressive"})
    path = f"/dialer/campaigns/{c['id']}"
    assert (await call(client, "POST", f"{path}/resume"))[0] == 409
    for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running"), ("stop", "stopped")):
        status, body = await call(client, "POST", f"{path}/{action}")
        assert (status, body["state"]) == (200, state)
    status, body = await call(client, "POST", f"{path}/start")
    assert status == 409 and body["error"] == "campaign-state-conflict"
    async with client.server.app[keys.DB].acquire() as conn:
        rows = await conn.fetch("SELECT event_type, payload, ordering_key FROM outbox_events "
                                "WHERE event_type LIKE 'campaign.%' ORDER BY occurred_at, event_type")
    assert [r["event_type"] for r in rows].count("campaign.started") == 1
    assert {r["event_type"] for r in rows} == {"campaign.started", "campaign.paused", "campaign.resumed",
                                                 "campaign.finished"}
    for r in rows:
        catalogue.validate(r["event_type"], r["payload"])
        assert r["payload"]["by"] == "test-supervisor" and r["ordering_key"] == f"campaign:{c['id']}"


async def test_settings_change_only_while_draft_or_paused(client):
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "c", "mode": "progressive"})
    path = f"/dialer/campaigns/{c['id']}"
    status, body = await call(client, "PATCH", path, {"settings": {"max_lines": 7}})
    assert status == 200 and body["settings"]["max_lines"] == 7
    await call(client, "POST", f"{path}/start")
    assert (await call(client, "PATCH", path, {"settings": {"max_lines": 8}}))[0] == 409
    await call(client, "POST", f"{path}/pause")
    assert (await call(client, "PATCH", path, {"settings": {"no_answer_timeout_s": 3}}))[0] == 422


async def test_leads_come_from_segments_due_tasks_contacts_and_callbacks_without_repeats(client):
    app = client.server.app
    ids = await contacts(client, 4)
    other = await contacts(client, 1, tag="autumn", first=3000)
    lifecycle = app[keys.LIFECYCLE]
    # an undecided answered call creates a due "call" task for the autumn contact
    await lifecycle.record_call(CallOutcome(other[0], Direction.OUTBOUND, "answered", START - timedelta(minutes=2),
                                            START - timedelta(minutes=1), talk_seconds=30))
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "c", "mode": "progressive"})
    path = f"/dialer/campaigns/{c['id']}/leads"
    assert (await call(client, "POST", path, {"segment": {"tag": "spring"}}))[1] == {"added": 4, "offered": 4}
    assert (await call(client, "POST", path, {"segment": {"tag": "spring"}}))[1]["added"] == 0
    status, body = await call(client, "POST", path, {"tasks": {"kind": "call"}})
    assert status == 201 and body["added"] == 1
    later = (START + timedelta(hours=2)).isoformat()
    status, body = await call(client, "POST", path, {"callbacks": [{"contact_id": ids[0], "at": later}]})
    assert status == 201
    _, listed = await call(client, "GET", path)
    by_contact = {lead["contact_id"]: lead for lead in listed["leads"]}
    assert by_contact[other[0]]["source"] == "task" and by_contact[other[0]]["task_id"] is not None
    assert by_contact[ids[0]]["source"] == "callback" and by_contact[ids[0]]["next_at"].startswith("2026-01-05T20:00") \
        or by_contact[ids[0]]["next_at"].startswith("2026-01-05 20:00")
    assert by_contact[other[0]]["priority"] > by_contact[ids[1]]["priority"]
    assert (await call(client, "POST", path, {"nothing": 1}))[0] == 422


async def test_preview_shows_the_best_lead_and_an_agent_chooses_it(client):
    ids = await contacts(client, 2)
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "p", "mode": "preview"})
    await call(client, "POST", f"/dialer/campaigns/{c['id']}/leads", {"contact_ids": ids})
    status, body = await call(client, "GET", f"/dialer/campaigns/{c['id']}/preview", role="agent")
    assert status == 200 and body["contact"]["id"] in ids
    lead_id = body["lead"]["id"]
    status, _ = await call(client, "POST", f"/dialer/campaigns/{c['id']}/leads/{lead_id}/dial", role="agent")
    assert status == 202
    _, listed = await call(client, "GET", f"/dialer/campaigns/{c['id']}/leads")
    assert {lead["id"]: lead["approved_by"] for lead in listed["leads"]}[lead_id] == "test-agent"
    assert (await call(client, "POST", f"/dialer/campaigns/{c['id']}/leads/999/dial", role="agent"))[0] == 404


async def test_figures_explain_an_idle_campaign(client):
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "f", "mode": "predictive"})
    status, body = await call(client, "GET", f"/dialer/campaigns/{c['id']}/figures")
    assert status == 200
    assert {"dial_rate_per_min", "lines_in_use", "answer_rate_1h", "abandon_rate_24h", "abandon_rate_30d",
            "agent_occupancy", "hopper_size", "pacing", "leads"} <= set(body)
    assert body["abandon_rate_30d"] == 0.0 and body["leader"] is None


async def test_an_imported_do_not_call_list_flags_contacts_and_counts_bad_lines(client):
    ids = await contacts(client, 1)
    status, body = await call(client, "POST", "/dialer/dnc", {"phones": ["+14155552000", "(415) 555-2999", "x"],
                                                               "source": "state-list-2026"}, role="crm")
    assert status == 201 and body == {"added": 2, "invalid": [2]}
    assert (await client.server.app[keys.LIFECYCLE].get(ids[0])).do_not_call
    assert await client.server.app[keys.LIFECYCLE].is_dnc("+14155552999")


async def test_agents_cannot_run_campaigns(client):
    assert (await call(client, "POST", "/dialer/campaigns", {"name": "x", "mode": "progressive"}, role="agent"))[0] == 403


async def test_bad_ids_and_lead_sources_are_4xx_naming_the_field(client):
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "c", "mode": "progressive"})
    path = f"/dialer/campaigns/{c['id']}"
    for bad in ("%C2%B2", "99999999999999999999"):          # "²".isdigit() is true; past bigint
        assert (await call(client, "GET", f"/dialer/campaigns/{bad}"))[0] == 404
    assert (await call(client, "GET", f"{path}/leads?limit=%C2%B2"))[0] == 400
    for body, field in (({"tasks": {"limit": "abc"}}, "tasks.limit"), ({"tasks": {"limit": -5}}, "tasks.limit"),
                        ({"segment": {"min_score": "50"}}, "segment.min_score"),
                        ({"callbacks": [{"contact_id": 1, "at": "2026-01-05T20:00"}]}, "callbacks[0]")):
        status, got = await call(client, "POST", f"{path}/leads", body)
        assert (status, got["detail"]["field"]) == (422, field), body
    status, got = await call(client, "PATCH", path, {"name": "x" * 201})
    assert (status, got["detail"]["field"]) == (422, "name")


async def test_a_callback_reopens_a_finished_lead_and_says_which_it_could_not_schedule(client):
    ids = await contacts(client, 2)
    _, c = await call(client, "POST", "/dialer/campaigns", {"name": "c", "mode": "progressive"})
    path = f"/dialer/campaigns/{c['id']}/leads"
    await call(client, "POST", path, {"contact_ids": ids})
    async with client.server.app[keys.DB].acquire() as conn:
        await conn.execute("UPDATE dialer_leads SET state = 'done', final_disposition = 'answered' "
                           "WHERE contact_id = $1", ids[0])
        await conn.execute("UPDATE dialer_leads SET state = 'dialing' WHERE contact_id = $1", ids[1])
    later = (START + timedelta(hours=2)).isoformat()
    status, body = await call(client, "POST", path, {"callbacks": [{"contact_id": i, "at": later} for i in ids]})
    assert status == 201 and body["callbacks_scheduled"] == 1 and body["callbacks_not_scheduled"] == [ids[1]]
    _, listed = await call(client, "GET", path)
    reopened = next(lead for lead in listed["leads"] if lead["contact_id"] == ids[0])
    assert (reopened["state"], reopened["source"], reopened["final_disposition"]) == ("ready", "callback", None)
