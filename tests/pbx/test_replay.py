"""Replays of AMI transcripts recorded from the sandbox Asterisk (tests/fixtures/ami,
see its README), sent over a real loopback socket in reads of different sizes."""

from __future__ import annotations

import asyncio
import gzip
from collections import deque
from pathlib import Path

import pytest
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from pbx import events as ev
from pbx.parsing import KNOWN_EVENTS, MalformedEvent, parse
from pbx.protocol import FastAMIProtocol, split_headers
from pbx.router import Router

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"


def transcript(name: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


async def replay(data: bytes, read_size: int) -> tuple[Router, list]:
    """Serve ``data`` over TCP in ``read_size`` pieces into our protocol and router."""
    async def serve(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(0, len(data), read_size):
            writer.write(data[i:i + read_size])
            await writer.drain()
            if read_size < 64:
                await asyncio.sleep(0)  # force separate TCP segments for tiny pieces
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    router = Router("replay", high_water=10**9)
    delivered: list = []
    router.add_call_factory(lambda call, event: lambda c, e: delivered.append((c.linkedid, e)))
    closed = asyncio.get_running_loop().create_future()

    class Proto(FastAMIProtocol):
        def connection_lost(self, exc):  # no Manager behind this one
            closed.set_result(None)

    proto = Proto()
    proto.sink = router.feed
    proto.wanted = KNOWN_EVENTS
    await asyncio.get_running_loop().create_connection(lambda: proto, "127.0.0.1", port)
    await asyncio.wait_for(closed, 30)
    router.drain()
    server.close()
    return router, delivered


def reference_order(data: bytes) -> dict[str, list[str]]:
    """Per call, the names of the events we type, in transcript order."""
    order: dict[str, list[str]] = {}
    for raw in data.decode("utf-8").split("\r\n\r\n"):
        headers = split_headers(raw)
        name = headers.get("Event")
        if name in KNOWN_EVENTS:
            try:
                event = parse(headers)
            except MalformedEvent:
                continue
            if isinstance(event, ev.CallEvent):
                order.setdefault(event.linkedid, []).append(name)
    return order


@pytest.mark.parametrize("read_size", [1, 7, 1500, 65536])
async def test_recorded_calls_are_typed_and_routed_in_order_whatever_the_read_size(read_size):
    data = transcript("small.ami")
    router, delivered = await replay(data, read_size)
    assert router.stats["malformed"] == 0
    expected = reference_order(data)
    got: dict[str, list[str]] = {}
    for linkedid, e in delivered:
        if isinstance(e, ev.CallEvent | ev.CallEnded):
            got.setdefault(linkedid, []).append(type(e).__name__)
    ended = {linkedid for linkedid, names in got.items() if names[-1] == "CallEnded"}
    assert len(ended) >= 20, "the recording holds 24 complete calls"
    for linkedid in expected:
        assert [n for n in got[linkedid] if n != "CallEnded"] == expected[linkedid], linkedid
    events = [e for _l, e in delivered]
    assert {"1", "2"} <= {e.digit for e in events if isinstance(e, ev.DTMFEnd)}
    assert any(isinstance(e, ev.AgentConnect) for e in events)
    assert any(isinstance(e, ev.AsyncAGIExec) and e.result.startswith("200") for e in events)
    # an Originate's result reaches the call it created
    assert any(isinstance(e, ev.OriginateResponse) and e.success for e in events)


async def test_a_non_ascii_caller_name_split_across_reads_survives_where_panoramisk_drops_it():
    data = transcript("utf8_callerid.ami")
    name = "Zoë Müller 张伟"
    router, delivered = await replay(data, 1)
    names = {e.callerid_name for _l, e in delivered if isinstance(e, (ev.Newchannel, ev.Newstate))}
    assert name in names

    # panoramisk 1.4 decodes each read on its own with errors ignored
    seen: list[str] = []
    manager = Manager(loop=asyncio.get_running_loop())
    manager.register_event("*", lambda _m, msg: seen.append(msg.get("CallerIDName", "")))
    proto = AMIProtocol()
    proto.connection_made(_Null())
    proto.factory, proto.encoding, proto.queue = manager, "utf8", deque()
    for i in range(len(data)):
        proto.data_received(data[i:i + 1])
    assert name not in seen and any(s.startswith("Zo") and "ller" in s for s in seen)


class _Null:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


async def test_the_large_recording_leaves_no_call_behind():
    data = transcript("large.ami.gz")
    router, delivered = await replay(data, 8192)
    assert router.stats["malformed"] == 0
    assert router.stats["typed"] > 7_000  # of 13,116: the rest are events nobody uses
    ended = sum(1 for _l, e in delivered if isinstance(e, ev.CallEnded))
    assert ended >= 480
    assert len(router.calls) <= 3, "calls still up when the recording stopped, at most"
