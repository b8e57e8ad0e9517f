"""A real SIP caller: SIPp against the sandbox's loopback PJSIP endpoint, pressing 1 as
RFC 2833 DTMF (the pcap Debian's sip-tester ships), is tagged high intent and transferred
to the sales queue."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket

import pytest

from pbx import events as ev
from tests.conftest import ROOT
from tests.ivr.conftest import poll

pytestmark = pytest.mark.asterisk
SCENARIO = ROOT / "scripts" / "sipp" / "dtmf_caller.xml"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sip_caller_pressing_1_over_rfc2833_is_tagged_high_intent_and_transferred_to_sales(make_ivr):
    if shutil.which("sipp") is None:   # scripts/asterisk-sandbox installs it with the sandbox
        (pytest.fail if os.environ.get("CI") else pytest.skip)("sipp (Debian's sip-tester) is not installed")
    ivr = await make_ivr()
    # Dialling ivr-<owner> pins the call to this app (the sandbox is shared; see [ivr] owner).
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIO), "-s", f"ivr-{ivr.owner}", "127.0.0.1:5060", "-i", "127.0.0.1",
        "-p", str(_free_udp_port()), "-mi", "127.0.0.1", "-mp", str(random.randrange(20000, 30000, 2)),
        "-m", "1", "-nostdin", "-timeout", "30s",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    row = await poll(lambda: ivr.pool.fetchrow("SELECT * FROM ivr_sessions WHERE channel LIKE 'PJSIP/sipp-%'"),
                     10, "the SIP caller's session")
    assert (row["outcome"], row["intent"], row["digits"], row["transfer_to"]) == \
        ("transferred", "high_intent", "1", "sales")
    contact = await ivr.contact(row["contact_id"])
    phones = [r["phone"] for r in await ivr.pool.fetch("SELECT phone FROM contact_phones WHERE contact_id = $1",
                                                      row["contact_id"])]
    assert phones == ["+14155550100"] and "high_intent" in contact["tags"]   # From: +14155550100
    joined = ivr.events.find(ev.QueueCallerJoin, linkedid=row["linkedid"])
    connected = ivr.events.find(ev.AgentConnect, linkedid=row["linkedid"])
    assert joined and {(j.queue, j.channel) for j in joined} == {("sales", row["channel"])}
    assert all(c.queue == "sales" for c in connected)
    assert ivr.service.sessions == {}
