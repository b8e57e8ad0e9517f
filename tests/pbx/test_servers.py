"""Several named Asterisk servers: each its own AMI connection, router and actions."""

from __future__ import annotations

import uuid

import pytest

from callcycle import settings as settings_mod
from pbx import events as ev
from pbx.actions import OriginateRequest
from pbx.service import Pbx
from tests.pbx.tools import EventLog, eventually

pytestmark = pytest.mark.asterisk


async def test_two_configured_servers_connect_separately_and_route_their_own_calls(tmp_path, asterisk_env):
    port = asterisk_env.get("CALLCYCLE_ASTERISK_MAIN_PORT", "5038")
    cfg = tmp_path / "callcycle.toml"
    cfg.write_text(f"""
[asterisk]
default = "east"
[asterisk.servers.east]
host = "127.0.0.1"
port = {port}
[asterisk.servers.west]
host = "127.0.0.1"
port = {port}
""")
    secret = asterisk_env["CALLCYCLE_AMI_SECRET"]
    s = settings_mod.load(cfg, {"CALLCYCLE_AMI_SECRET": secret, "CALLCYCLE_ASTERISK_WEST_SECRET": secret})
    pbx = Pbx(s.asterisk)
    logs = {name: EventLog() for name in ("east", "west")}
    for name, log in logs.items():
        pbx[name].router.add_listener(log)
    await pbx.start()
    try:
        for name in ("east", "west"):
            await pbx[name].client.wait_connected(15)
        assert pbx.default.name == "east"
        assert {n for n, st in pbx.status().items() if st["ok"]} >= {"east", "west"}
        attempt = f"t-{uuid.uuid4().hex[:10]}"
        result = await pbx["west"].actions.originate(OriginateRequest(
            attempt_id=attempt, channel="Local/s@sim-customer", context="callcycle-ivr", exten="s", timeout_s=15))
        assert result.success
        # both connections see the call's events (same Asterisk), each in its own table
        for name in ("east", "west"):
            await eventually(lambda n=name: logs[n].find(ev.AsyncAGIStart))
        await pbx["east"].actions.hangup(result.channel)
        for name in ("east", "west"):
            await eventually(lambda n=name: [e for e in logs[n].find(ev.CallEnded)
                                             if pbx[n].router.calls.get(e.linkedid) is None])
        # Asterisk sends an OriginateResponse to every AMI session; each router types it
        for name in ("east", "west"):
            assert [e for _c, e in logs[name].items
                    if isinstance(e, ev.OriginateResponse) and e.action_id == f"originate-{attempt}"]
    finally:
        await pbx.stop()
