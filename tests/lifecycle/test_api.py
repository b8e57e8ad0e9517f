"""The HTTP API: the OpenAPI document against the real routes, roles, CRUD, errors."""

import pytest
from jsonschema import Draft202012Validator

from callcycle.auth import PUBLIC, roles_of
from crm_sync import inbound
from lifecycle import api
from lifecycle.openapi import SCHEMAS, document
from tests.conftest import ROLE_TOKENS, auth


def _routes(app):
    """This feature's routes as registered in the real app (other features document their own)."""
    ours = {(d.method.lower(), d.path) for d in [*api.routes(), *inbound.routes()]} - {("get", "/openapi.json")}
    served = {(r.method.lower(), r.resource.canonical): r.handler for r in app.router.routes()}
    assert ours <= set(served)
    return {k: served[k] for k in ours}


async def test_openapi_documents_exactly_the_routes_and_their_roles(client):
    resp = await client.get("/openapi.json")
    doc = await resp.json()
    assert resp.status == 200 and doc["openapi"].startswith("3.")
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    routes = _routes(client.app)
    assert documented == set(routes)
    for (method, path), handler in routes.items():
        op = doc["paths"][path][method]
        if roles_of(handler) == PUBLIC:
            assert op["security"] == []
        else:
            assert set(op["x-roles"]) == roles_of(handler), (method, path)
    for schema in SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    assert document()["components"]["schemas"] is SCHEMAS  # handlers validate with these


async def test_every_role_gets_past_the_gate_exactly_where_the_document_allows(client):
    doc = document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "x-roles" not in op:
                continue
            url = path.replace("{id}", "999999")
            for role in ROLE_TOKENS:
                resp = await client.request(method, url, headers=auth(role), json={})
                if role in op["x-roles"]:
                    assert resp.status not in (401, 403), (method, path, role, await resp.text())
                else:
                    assert resp.status == 403, (method, path, role)


async def test_create_read_update_search_delete_a_contact(client):
    body = {"phones": ["(415) 555-0123", "+44 20 7946 0000"], "external_id": "crm-1", "name": "Ann",
            "attributes": {"plan": "payroll"}}
    resp = await client.post("/contacts", json=body, headers=auth("crm"))
    created = await resp.json()
    assert resp.status == 201, created
    assert created["phones"] == ["+14155550123", "+442079460000"] and created["country"] == "US"
    cid = created["id"]
    got = await (await client.get(f"/contacts/{cid}", headers=auth("agent"))).json()
    assert got["history"][0]["to_stage"] == "acquisition"
    resp = await client.patch(f"/contacts/{cid}", json={"name": "Ann B", "time_zones": ["America/Denver"]},
                              headers=auth("supervisor"))
    assert (await resp.json())["time_zones"] == ["America/Denver"]
    found = await (await client.get("/contacts", params={"phone": "4155550123"}, headers=auth("agent"))).json()
    assert [c["id"] for c in found["contacts"]] == [cid]
    assert (await client.delete(f"/contacts/{cid}", headers=auth("supervisor"))).status == 204
    assert (await client.get(f"/contacts/{cid}", headers=auth("agent"))).status == 404


async def test_a_bad_phone_names_the_field_and_writes_nothing(client, db_pool):
    resp = await client.post("/contacts", json={"phones": ["+14155550123", "nope"]}, headers=auth("supervisor"))
    assert resp.status == 422
    assert await resp.json() == {"error": "invalid-phone",
                                 "detail": {"field": "phones[1]", "reason": "not a phone number: The string "
                                            "supplied did not seem to be a phone number."}}
    assert await db_pool.fetchval("SELECT count(*) FROM contacts") == 0
    assert await db_pool.fetchval("SELECT count(*) FROM outbox_events") == 0


@pytest.mark.parametrize("body,field", [
    ({"phones": []}, "phones"),
    ({"phones": ["+14155550123"], "colour": "red"}, "body"),
    ({"phones": ["+14155550123"], "consent": "yes"}, "consent"),
    ({"name": "no phones"}, "phones"),                     # a missing field is named, not "body"
])
async def test_bodies_that_break_the_schema_are_422_naming_the_field(client, body, field):
    resp = await client.post("/contacts", json=body, headers=auth("supervisor"))
    detail = await resp.json()
    assert resp.status == 422 and detail["error"] == "validation-failed" and detail["detail"]["field"] == field


async def test_tags_stage_claim_tasks_and_kpis_over_http(client):
    cid = (await (await client.post("/contacts", json={"phones": ["+14155550123"]}, headers=auth("crm"))).json())["id"]
    resp = await client.post(f"/contacts/{cid}/tags", json={"add": ["high_intent"]}, headers=auth("agent"))
    assert (await resp.json())["score"] == 50
    resp = await client.post(f"/contacts/{cid}/stage", json={"to": "churned", "reason": "x"}, headers=auth("supervisor"))
    refused = await resp.json()
    assert resp.status == 409 and refused["error"] == "transition-refused" and "allowed" in refused["detail"]["reason"]
    resp = await client.post(f"/contacts/{cid}/stage", json={"to": "growth", "reason": "need"}, headers=auth("supervisor"))
    assert (await resp.json())["stage"] == "growth"
    claimed = await (await client.post(f"/contacts/{cid}/claim", headers=auth("agent"))).json()
    assert claimed["owner_agent"] == "test-agent"
    tasks = (await (await client.get("/tasks", params={"due": "true"}, headers=auth("agent"))).json())["tasks"]
    assert [t["rule"] for t in tasks] == ["claim_follow_up"]
    done = await (await client.post(f"/tasks/{tasks[0]['id']}/complete", headers=auth("agent"))).json()
    assert done["state"] == "done"
    again = await client.post(f"/tasks/{tasks[0]['id']}/complete", headers=auth("agent"))
    assert again.status == 409 and (await again.json())["error"] == "task-closed"
    kpis = await (await client.get("/kpis", params={"from": "2026-01-01T00:00:00+00:00",
                                                     "to": "2026-02-01T00:00:00+00:00"}, headers=auth("supervisor"))).json()
    assert kpis["stages"]["acquisition"]["entered"] == 1 and kpis["stages"]["acquisition"]["conversion_rate"] == 1.0
    bad = await client.get("/kpis", params={"from": "yesterday"}, headers=auth("supervisor"))
    assert bad.status == 422 and (await bad.json())["detail"]["field"] == "from"


async def test_a_patch_replaces_the_phone_list_and_the_crm_hears_it(client, db_pool):
    cid = (await (await client.post("/contacts", json={"phones": ["+14155550123"]}, headers=auth("crm"))).json())["id"]
    resp = await client.patch(f"/contacts/{cid}", json={"phones": ["+1 415 555 0199", "+14155550123"]},
                              headers=auth("supervisor"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["phones"] == ["+14155550199", "+14155550123"]
    got = await (await client.get(f"/contacts/{cid}", headers=auth("agent"))).json()
    assert got["phones"] == ["+14155550199", "+14155550123"]
    [payload] = await db_pool.fetch("SELECT payload FROM outbox_events WHERE event_type = 'contact.updated'")
    assert payload["payload"]["changed"] == ["phones"] and payload["payload"]["contact"]["phone"] == "+14155550199"


async def test_query_numbers_and_ids_out_of_range_are_4xx_not_a_database_error(client):
    for params, field in (({"limit": "-1"}, "limit"), ({"offset": "-3"}, "offset"),
                          ({"min_score": "99999999999"}, "min_score"), ({"limit": "²"}, "limit")):
        resp = await client.get("/contacts", params=params, headers=auth("agent"))
        assert resp.status == 422 and (await resp.json())["detail"]["field"] == field, params
    assert (await client.get("/contacts/%C2%B2", headers=auth("agent"))).status == 404
    assert (await client.get("/contacts/99999999999999999999", headers=auth("agent"))).status == 404
    resp = await client.post("/tasks/abc/complete", headers=auth("agent"))
    assert resp.status == 404 and (await resp.json())["error"] == "no-such-task"
