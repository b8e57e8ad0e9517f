"""Test tools for the real sandbox: a TCP proxy we can cut, the Asterisk CLI, an event log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SANDBOX_ROOT = Path(os.environ.get("CALLCYCLE_SANDBOX_ROOT", "/var/cache/callcycle/asterisk-sid"))


def asterisk_cli(command: str) -> str:
    """Run an Asterisk CLI command in the sandbox (as `asterisk -rx` would)."""
    out = subprocess.run(["chroot", str(SANDBOX_ROOT), "/usr/sbin/asterisk", "-rx", command],
                         capture_output=True, text=True, timeout=30)
    return out.stdout


def asterisk_pid() -> int:
    return int((SANDBOX_ROOT.parent / f"{SANDBOX_ROOT.name}.pid").read_text().strip())


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
                     what: str = "condition") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


class EventLog:
    """A router listener that records every (call, event)."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any]] = []

    def __call__(self, call: Any, event: Any) -> None:
        self.items.append((call, event))

    def of(self, linkedid: str) -> list[Any]:
        return [e for c, e in self.items if getattr(e, "linkedid", None) == linkedid]

    def find(self, kind: type, **attrs: Any) -> list[Any]:
        return [e for _c, e in self.items
                if isinstance(e, kind) and all(getattr(e, k) == v for k, v in attrs.items())]


class TcpProxy:
    """A loopback TCP proxy in front of Asterisk's AMI port that a test can cut or block,
    to make the network fail the way it does in production."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.blocked = False
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._server: asyncio.base_events.Server | None = None
        self.port = 0
        self.connections = 0
        # the next this-many connections are cut when Asterisk's answer holds cut_on
        self.cut_on: bytes = b""
        self.cut_times = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every open connection (new ones are accepted unless blocked)."""
        for a, b in self._pairs:
            a.transport.abort()
            b.transport.abort()
        self._pairs.clear()

    def block(self) -> None:
        self.blocked = True
        self.cut()

    def unblock(self) -> None:
        self.blocked = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.connections += 1
        self._pairs.append((writer, up_writer))
        cut = b""
        if self.cut_times > 0 and self.cut_on:
            self.cut_times -= 1
            cut = self.cut_on
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer, cut),
                             return_exceptions=True)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: bytes = b"") -> None:
        try:
            while data := await reader.read(65536):
                if cut and cut in data:
                    writer.write(data[:data.index(cut)])
                    return
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
