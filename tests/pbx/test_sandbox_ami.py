"""The AMI core against the real sandbox Asterisk: typed events of real calls, and
recovery from a kicked session, a frozen Asterisk, a cut network and a restart."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid

import pytest

from pbx import events as ev
from pbx.actions import OriginateRequest
from pbx.errors import ActionFailed, OriginateOutcomeUnknown
from tests.pbx.tools import EventLog, asterisk_cli, asterisk_pid, eventually

pytestmark = pytest.mark.asterisk


def customer(attempt: str, **sim: str) -> OriginateRequest:
    """A simulated customer (Local/s@sim-customer) whose other half enters the IVR,
    where it waits in AGI(agi:async) until we send it commands."""
    return OriginateRequest(attempt_id=attempt, channel="Local/s@sim-customer", context="callcycle-ivr",
                            exten="s", timeout_s=15, variables=sim)


async def start_call(pbx, log: EventLog, **sim: str) -> tuple[str, ev.AsyncAGIStart]:
    attempt = f"t-{uuid.uuid4().hex[:10]}"
    result = await pbx.default.actions.originate(customer(attempt, **sim))
    assert result.success, result
    agi = await eventually(lambda: [e for e in log.find(ev.AsyncAGIStart) if e.channel == result.channel])
    return attempt, agi[0]


async def test_a_simulated_customer_pressing_1_arrives_as_typed_events_in_order(make_pbx):
    log = EventLog()
    pbx = await make_pbx(log=log)
    _attempt, agi = await start_call(pbx, log, SIM_DIGIT="1", SIM_DIGIT_DELAY="2", SIM_TALK="2")
    result = await pbx.default.actions.agi(agi.channel, "WAIT FOR DIGIT 8000")
    assert result.digit == "1"
    # the customer hangs up after talking 2 s: Normal Clearing on both halves
    await eventually(lambda: log.find(ev.CallEnded, linkedid=agi.linkedid))

    events = log.of(agi.linkedid)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "Newchannel" and kinds[-1] == "CallEnded"
    assert kinds.index("AsyncAGIStart") < kinds.index("DTMFEnd") < kinds.index("AsyncAGIEnd")
    dtmf = [e for e in events if isinstance(e, ev.DTMFEnd) and e.channel == agi.channel]
    assert [(e.digit, e.direction) for e in dtmf] == [("1", "Received")]
    hangups = [e for e in events if isinstance(e, ev.Hangup)]
    assert len(hangups) == 2 and all(h.cause == 16 for h in hangups)
    assert events[-1].reason == "hangup"
    assert pbx.default.router.stats["malformed"] == 0
    assert pbx.default.router.calls.get(agi.linkedid) is None


async def test_a_non_ascii_caller_name_survives_the_wire(make_pbx):
    log = EventLog()
    pbx = await make_pbx(log=log)
    attempt = f"t-{uuid.uuid4().hex[:10]}"
    req = OriginateRequest(attempt_id=attempt, channel="Local/s@sim-customer", context="callcycle-ivr", exten="s",
                           caller_id='"Zoë Müller 张伟" <+14155550123>', timeout_s=15)
    result = await pbx.default.actions.originate(req)
    names = await eventually(lambda: {e.callerid_name for e in log.find(ev.Newstate) if e.callerid_name})
    assert "Zoë Müller 张伟" in names
    await pbx.default.actions.hangup(result.channel)


def _our_session_fds() -> list[str]:
    out = asterisk_cli("manager show connected")
    return [m.group(1) for m in re.finditer(r"^\s*callcycle\s+\S+\s+\d+\s+\d+\s+(\d+)", out, re.M)]


async def test_a_kicked_session_is_reconnected_and_resynced_and_the_live_call_kept(make_pbx):
    log = EventLog()
    pbx = await make_pbx(log=log)
    client = pbx.default.client
    _attempt, agi = await start_call(pbx, log)
    fds = _our_session_fds()
    assert fds, "our AMI session is not listed by 'manager show connected'"
    for fd in fds:
        asterisk_cli(f"manager kick session {fd}")
    await eventually(lambda: client.stats["disconnects"] >= 1 and client.connected and client.stats["connects"] >= 2)
    await eventually(lambda: pbx.default.router.calls.generation >= 1 and not pbx.default.router.backlog)
    await asyncio.sleep(0.2)  # let the router process the Resync item
    assert pbx.default.router.calls.get(agi.linkedid) is not None, "a live call must survive the resync"
    assert not log.find(ev.CallEnded, linkedid=agi.linkedid)
    await pbx.default.actions.hangup(agi.channel)
    ended = await eventually(lambda: log.find(ev.CallEnded, linkedid=agi.linkedid))
    assert ended[0].reason == "hangup"


async def test_a_call_that_ends_while_we_are_cut_off_is_ended_at_resync(make_pbx, ami_proxy):
    log = EventLog()
    pbx = await make_pbx(port=ami_proxy.port, log=log)
    _attempt, agi = await start_call(pbx, log)
    ami_proxy.block()
    await eventually(lambda: not pbx.default.client.connected)
    asterisk_cli(f"channel request hangup {agi.channel}")
    await asyncio.sleep(1.0)
    ami_proxy.unblock()
    ended = await eventually(lambda: log.find(ev.CallEnded, linkedid=agi.linkedid), timeout=15)
    assert ended[0].reason == "vanished_during_ami_outage"
    assert pbx.default.router.calls.get(agi.linkedid) is None


async def test_a_session_lost_before_fully_booted_is_retried_at_once(make_pbx, ami_proxy):
    # an Asterisk restarting accepts the login and may drop the session before FullyBooted;
    # waiting for the boot timeout (120 s) would leave IVR callers without AMI meanwhile
    ami_proxy.cut_on, ami_proxy.cut_times = b"Event: FullyBooted", 2
    started = time.monotonic()
    pbx = await make_pbx(port=ami_proxy.port)
    assert pbx.default.client.connected and ami_proxy.connections == 3
    assert time.monotonic() - started < 10


async def test_an_originate_in_flight_when_the_connection_drops_is_never_dialed_twice(make_pbx, ami_proxy):
    log = EventLog()
    pbx = await make_pbx(port=ami_proxy.port, log=log)
    attempt = f"t-{uuid.uuid4().hex[:10]}"
    # rings 4 s before answering, so the OriginateResponse is still outstanding when we cut
    task = asyncio.create_task(pbx.default.actions.originate(customer(attempt, SIM_RING="4", SIM_TALK="20")))
    await eventually(lambda: log.find(ev.VarSet, variable="CALLCYCLE_ATTEMPT_ID", value=attempt))
    ami_proxy.cut()
    with pytest.raises(OriginateOutcomeUnknown):
        await task
    await pbx.default.client.wait_connected(15)
    await asyncio.sleep(6)  # long enough for a re-sent Originate to have rung and answered
    live = await pbx.default.actions.live_attempts()
    channels = live.get(attempt, [])
    pairs = {c.rsplit(";", 1)[0] for c in channels}
    assert len(pairs) == 1, f"attempt {attempt} dialed {len(pairs)} times: {channels}"
    await pbx.default.actions.hangup(channels[0])  # one half takes the other with it


async def test_a_frozen_asterisk_is_detected_within_5_seconds_and_recovered(make_pbx):
    pbx = await make_pbx()
    client = pbx.default.client
    pid = asterisk_pid()
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        await eventually(lambda: client.stats["keepalive_timeouts"] >= 1, timeout=8)
        detected = time.monotonic() - t0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert detected <= 5.0, f"a frozen Asterisk took {detected:.1f} s to notice"
    await client.wait_connected(20)
    assert client.stats["connects"] >= 2


async def test_asterisk_restarted_the_server_recovers_by_itself(make_pbx):
    log = EventLog()
    pbx = await make_pbx(log=log)
    client = pbx.default.client
    asterisk_cli("core restart now")
    await eventually(lambda: client.stats["disconnects"] >= 1, timeout=15)
    await eventually(lambda: client.connected and client.stats["connects"] >= 2, timeout=60)
    assert log.find(ev.Shutdown) or client.stats["disconnects"] >= 1
    _attempt, agi = await start_call(pbx, log)
    await pbx.default.actions.hangup(agi.channel)
    await eventually(lambda: log.find(ev.CallEnded, linkedid=agi.linkedid))


async def test_replies_worded_like_lists_do_not_hang_or_drop_the_connection(make_pbx):
    """QueueAdd answers "Added interface to queue"; panoramisk alone takes that for the start of
    an event list and waits forever."""
    pbx = await make_pbx()
    iface = f"Local/agent{uuid.uuid4().int % 1000 + 100}@sim-agent"
    await pbx.default.client.send({"Action": "QueueAdd", "Queue": "support", "Interface": iface}, timeout=5)
    await eventually(lambda: iface in pbx.default.router.queues.queue("support").members)
    await pbx.default.client.send({"Action": "QueueRemove", "Queue": "support", "Interface": iface}, timeout=5)
    await eventually(lambda: iface not in pbx.default.router.queues.queue("support").members)
    assert pbx.default.client.stats["disconnects"] == 0


def waiting(pbx) -> set[str]:
    """The names of the actions the connection still waits an answer for (the watchdog's
    Ping may be one)."""
    return {getattr(a, "name", "") for a in pbx.default.client._protocol.responses.values()}


async def test_an_event_list_refused_by_asterisk_fails_at_once(make_pbx):
    """An event list answered ``Response: Error`` fails with Asterisk's message; panoramisk
    alone waits for list events that never come, until the timeout."""
    pbx = await make_pbx()
    started = time.monotonic()
    with pytest.raises(ActionFailed, match="No such channel"):
        await pbx.default.client.send({"Action": "Status", "Channel": "PJSIP/nobody-00000000"}, as_list=True,
                                      timeout=10)
    assert time.monotonic() - started < 2
    assert "Status" not in waiting(pbx)   # nothing left waiting


async def test_a_header_value_with_a_line_break_is_refused_before_anything_is_written(make_pbx):
    pbx = await make_pbx()
    log = EventLog()
    pbx.default.router.add_listener(log)
    smuggled = "x\r\nAction: Originate\r\nChannel: Local/s@sim-customer\r\nApplication: Wait"
    with pytest.raises(ValueError, match="line break"):
        await pbx.default.client.send({"Action": "Setvar", "Variable": "CALLCYCLE_X", "Value": smuggled})
    assert "Setvar" not in waiting(pbx)
    # the connection still answers, in order, and nothing was dialed
    assert (await pbx.default.client.send({"Action": "Ping"}))["Response"] == "Success"
    await asyncio.sleep(1)
    assert not log.find(ev.Newchannel)
