"""The composition root: health, readiness, and the token/role gate on every endpoint."""

from callcycle.app import init_app
from callcycle.auth import PUBLIC, roles_of
from tests.conftest import ROLE_TOKENS, auth


async def test_health_needs_no_token_and_ready_reports_each_part(aiohttp_client, settings):
    client = await aiohttp_client(init_app(settings, with_pbx=False))
    assert (await client.get("/health")).status == 200
    resp = await client.get("/ready", headers=auth("supervisor"))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


async def test_every_endpoint_refuses_no_token_a_bad_token_and_the_wrong_role(aiohttp_client, settings):
    app = init_app(settings, with_pbx=False)
    client = await aiohttp_client(app)
    checked = 0
    for route in app.router.routes():
        allowed = roles_of(route.handler)
        if allowed == PUBLIC or route.method == "HEAD":
            continue
        path = route.resource.canonical.replace("{", "").replace("}", "")
        resp = await client.request(route.method, path)
        assert resp.status == 401, (route.method, path)
        assert (await resp.json())["error"] == "token-required"
        resp = await client.request(route.method, path, headers={"Authorization": "Bearer not-a-token"})
        assert resp.status == 401, (route.method, path)
        for role in ROLE_TOKENS:
            if role not in allowed:
                resp = await client.request(route.method, path, headers=auth(role))
                assert resp.status == 403, (route.method, path, role)
                assert (await resp.json())["error"] == "role-forbidden"
        checked += 1
    assert checked >= 1


async def test_unknown_path_is_401_without_token_and_404_with_one(aiohttp_client, settings):
    client = await aiohttp_client(init_app(settings, with_pbx=False))
    assert (await client.get("/nope")).status == 401
    resp = await client.get("/nope", headers=auth("agent"))
    assert resp.status == 404
    assert (await resp.json())["error"] == "not-found"


async def test_a_token_in_the_url_is_taken_only_by_the_live_feed(aiohttp_client, settings):
    client = await aiohttp_client(init_app(settings, with_pbx=False))
    resp = await client.get("/contacts", params={"access_token": ROLE_TOKENS["admin"]})
    assert resp.status == 401 and (await resp.json())["error"] == "token-required"


def test_a_token_that_is_not_valid_utf_8_is_unknown_not_an_error():
    # aiohttp decodes header bytes with surrogateescape: "Bearer \xff\xfe" arrives like this
    from callcycle.auth import TokenStore
    from callcycle.settings import ApiToken

    store = TokenStore([ApiToken("alice", "agent", "a-token-of-16-chars")])
    assert store.lookup("\udcff\udcfe") is None and store.lookup("a-token-of-16-chars").subject == "alice"
