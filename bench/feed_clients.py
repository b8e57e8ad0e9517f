"""The feed clients of bench/monitor_fanout.py, run as their own processes:

    python bench/feed_clients.py <ws url> <clients>

They connect, print "ready" once every client has its snapshot, and on a line on stdin
close and print one JSON line: each delta's latency (receive time - its "at"), at the
socket and as read by the process, and per-client counts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
import sys
import time

TOKEN = "bench-supervisor-token-0123456789"   # the server's supervisor token (monitor_fanout)
# Deltas caused by an AMI event (calls, agents, queues) end with "at": <number>; the others
# (reconcile ticks, campaigns) with "at": null. A linear scan, no JSON parsing.
_AT = re.compile(rb'"at":([0-9.]+)\}')


# 200 clients share one process and one core here, so each is as cheap as a client can be:
# a raw non-blocking socket that does the WebSocket handshake, splits server frames (never
# masked), answers pings, and finds the "at" stamps with a regex on the bytes. Each read
# gives two receive times: the kernel's (SO_TIMESTAMPNS: when the bytes reached the
# client's socket, as they would reach a console on a machine of its own) and the
# process's (when this process got to them: 200 consoles here share the two cores with the
# server and Asterisk, and a console waiting for a core is this benchmark's artefact).

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux; the module lacks the name
_ANCILLARY = socket.CMSG_SPACE(16)                      # one struct timespec


class FeedClient:
    def __init__(self, sock: socket.socket, path: str, host: str, on_ready) -> None:
        self.sock, self.on_ready = sock, on_ready
        self.buf = bytearray()
        self.upgraded = False
        self.snapshot_seen = False
        self.latencies: list[float] = []          # process receive time - at
        self.kernel_latencies: list[float] = []   # kernel receive time - at
        self.frames = 0
        self.unstamped = 0   # frames the kernel gave no receive time for (counted at the process's)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self.readable)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    def readable(self) -> None:
        """Read frame by frame, never past the end of one: the kernel stamps a read with its
        newest bytes, so a read that took two frames would date the first by the second."""
        sock = self.sock
        while True:
            try:
                if not self.upgraded:
                    self._handshake()
                    continue
                want = self._wanted()
                data, ancillary, _flags, _addr = sock.recvmsg(want, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                asyncio.get_running_loop().remove_reader(sock.fileno())
                return
            self.buf += data
            if len(data) == want and self._wanted() == 0:
                self._frame(time.time(), _kernel_stamp(ancillary))

    def _handshake(self) -> None:
        head = self.sock.recv(4096, socket.MSG_PEEK)
        end = head.find(b"\r\n\r\n")
        if not head or end < 0:
            raise BlockingIOError   # the rest of the response is still to come
        response = self.sock.recv(end + 4)
        assert response.startswith(b"HTTP/1.1 101"), response[:80]
        self.upgraded = True

    def _wanted(self) -> int:
        """Bytes still missing from the frame being read (0: it is complete)."""
        buf = self.buf
        if len(buf) < 2:
            return 2 - len(buf)
        length = buf[1] & 0x7F
        head = 2 if length < 126 else 4 if length == 126 else 10
        if len(buf) < head:
            return head - len(buf)
        if length >= 126:
            length = int.from_bytes(buf[2:head], "big")
        return head + length - len(buf)

    def _frame(self, now: float, kernel: float | None) -> None:
        buf = self.buf
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        payload = bytes(buf[2 if length < 126 else 4 if length == 126 else 10:])
        buf.clear()
        if opcode == 9:  # ping: pong with the same payload (client frames are masked)
            self.sock.send(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        elif opcode in (1, 0):
            if not self.snapshot_seen:
                self.snapshot_seen = True
                self.on_ready()
                return
            self.frames += 1
            ats = [float(at) for at in _AT.findall(payload)]
            self.latencies.extend(now - at for at in ats)
            if kernel is None:
                self.unstamped += 1
                kernel = now
            self.kernel_latencies.extend(kernel - at for at in ats)


def _kernel_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return None


async def run_clients(url: str, n: int) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = f"{parts.path}?access_token={TOKEN}"
    ready, connected = asyncio.Event(), [0]

    def one_ready() -> None:
        connected[0] += 1
        if connected[0] == n:
            ready.set()

    clients = [FeedClient(socket.create_connection((parts.hostname, parts.port)), path, parts.netloc, one_ready)
               for _ in range(n)]
    await asyncio.wait_for(ready.wait(), 100)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for c in clients:
        c.close()
    print(json.dumps({"latencies": [x for c in clients for x in c.latencies],
                      "kernel_latencies": [x for c in clients for x in c.kernel_latencies],
                      "per_client": [len(c.latencies) for c in clients],
                      "frames": [c.frames for c in clients], "unstamped": [c.unstamped for c in clients]}), flush=True)


if __name__ == "__main__":
    asyncio.run(run_clients(sys.argv[1], int(sys.argv[2])))
