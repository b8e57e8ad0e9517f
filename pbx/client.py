"""One AMI connection to one Asterisk: login, a keep-alive that must be answered,
reconnection with exponential back-off and jitter, and a resync after every reconnect.

panoramisk's Manager keeps the connection and its Login; our actions are written and
matched to their answers by ``FastAMIProtocol.request``. Three of the Manager's habits are
switched off here because they lose calls (see ../shared/ASTERISK.md): its fixed 2 s
reconnect, its keep-alive that never checks for an answer, and its re-sending of
unanswered actions after a reconnect.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from panoramisk import Manager

from callcycle.logs import get_logger
from callcycle.settings import AsteriskServer
from pbx.calls import AGENT_FIRST_VARIABLE, ATTEMPT_VARIABLE, status_variables
from pbx.errors import ActionFailed, AmiAuthError, AmiConnectionLost, AmiNotConnected
from pbx.parsing import KNOWN_EVENTS
from pbx.protocol import FastAMIProtocol
from pbx.router import Outage, Resync, ResyncStart, Router

log = get_logger(__name__)
_NEVER = 10**9  # seconds: panoramisk's own pinger must not fire
_BOOT_TIMEOUT = 120.0  # seconds from login to FullyBooted before trying another connection


class _Manager(Manager):
    """panoramisk's Manager without its own reconnect and keep-alive."""

    on_lost: Callable[[Exception | None], None] = staticmethod(lambda exc: None)

    def connection_made(self, f: asyncio.Future) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # AmiClient awaits the same future and owns the retry
        super().connection_made(f)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.on_lost(exc)

    def ping(self) -> None:
        """Disabled: AmiClient's watchdog pings and waits for the answer."""


def backoff(attempt: int, low: float, high: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential back-off with equal jitter: half fixed, half random, capped at ``high``."""
    ceiling = min(high, low * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + rng() * ceiling / 2


class AmiClient:
    """The connection to one named Asterisk server. Events go to ``router``."""

    def __init__(self, server: AsteriskServer, router: Router) -> None:
        self.server = server
        self.router = router
        self.state = "disconnected"
        self.version: str | None = None
        self.connected_since: float | None = None
        self.stats = {"connects": 0, "disconnects": 0, "keepalive_timeouts": 0, "auth_failures": 0}
        self.last_error: str | None = None
        self._manager: _Manager | None = None
        self._protocol: FastAMIProtocol | None = None
        self._lost: asyncio.Future[None] | None = None
        self._booted: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (the server runs while Asterisk is down)."""
        self._manager = _Manager(
            loop=asyncio.get_running_loop(), host=self.server.host, port=self.server.port,
            username=self.server.username, secret=self.server.secret, events="on",
            ping_delay=_NEVER, ping_interval=_NEVER, protocol_factory=self._make_protocol,
            forgetable_actions=(), encoding="utf8")
        self._manager.on_lost = self._on_lost
        self._task = asyncio.create_task(self._run(), name=f"ami:{self.server.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._protocol is not None:
            self._protocol.close()
        self.state = "stopped"
        self._connected.clear()

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _make_protocol(self) -> FastAMIProtocol:
        proto = FastAMIProtocol()
        booted = self._booted = asyncio.get_running_loop().create_future()

        def until_booted(batch: list[dict[str, Any]]) -> None:
            # Asterisk accepts AMI logins while it is still loading modules (after a restart,
            # an Originate then fails for want of a dialplan); it sends FullyBooted to each
            # session once it is ready. Then the protocol feeds the router directly.
            if any(h.get("Event") == "FullyBooted" for h in batch):
                if not booted.done():
                    booted.set_result(None)
                proto.sink = self.router.feed
            self.router.feed(batch)

        proto.sink = until_booted
        proto.wanted = KNOWN_EVENTS
        self._protocol = proto
        return proto

    def _on_lost(self, exc: Exception | None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self.state = "disconnected"
        self.router.pause_reading = None
        if was_connected:
            self.stats["disconnects"] += 1
            self.router.control(Outage(str(exc) if exc else "closed"))
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        booted = self._booted
        if booted is not None and not booted.done():
            # lost between login and FullyBooted (an Asterisk restarting): retry now, not
            # after _BOOT_TIMEOUT
            booted.set_exception(AmiConnectionLost("connection lost before FullyBooted"))
            booted.exception()   # retrieved: the session may not be waiting for it yet

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except AmiAuthError as exc:
                self.last_error = str(exc)
                self.stats["auth_failures"] += 1
                log.error("ami_login_refused", server=self.server.name, reason=str(exc))
                attempt = max(attempt, 8)  # wrong credentials: do not hammer
            except (OSError, asyncio.TimeoutError, AmiConnectionLost) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("ami_connect_failed", server=self.server.name, error=self.last_error)
            if time.monotonic() - started > 30:
                attempt = 0  # a session that lived a while starts the back-off afresh
            attempt += 1
            delay = backoff(attempt, self.server.reconnect_min, self.server.reconnect_max)
            log.info("ami_reconnect_scheduled", server=self.server.name, delay=round(delay, 2), attempt=attempt)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """Connect, log in, resync, then keep the connection alive until it is lost."""
        assert self._manager is not None
        self.state = "connecting"
        self._lost = asyncio.get_running_loop().create_future()
        connecting = self._manager.connect()
        try:
            await asyncio.wait_for(asyncio.shield(connecting), self.server.connect_timeout)
        except asyncio.TimeoutError:
            connecting.cancel()
            raise
        try:
            await self._login()
            await asyncio.wait_for(asyncio.shield(self._booted), _BOOT_TIMEOUT)
            await self._resync()
        except BaseException:
            self._abort()
            raise
        self.stats["connects"] += 1
        self.state = "connected"
        self.connected_since = time.time()
        self.last_error = None
        self._connected.set()
        log.info("ami_connected", server=self.server.name, version=self.version)
        watchdog = asyncio.create_task(self._watchdog())
        try:
            await self._lost
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        log.warning("ami_disconnected", server=self.server.name)

    async def _login(self) -> None:
        assert self._manager is not None and self._protocol is not None
        login = self._manager.authenticated_future
        if login is None:
            raise AmiConnectionLost("connected without a login action")
        resp = await asyncio.wait_for(login, self.server.connect_timeout)
        if not resp.success:
            raise AmiAuthError(resp.message or "login refused")
        self.version = self._protocol.version
        proto = self._protocol

        def pause(paused: bool) -> None:
            (proto.transport.pause_reading if paused else proto.transport.resume_reading)()

        self.router.pause_reading = pause

    async def _resync(self) -> None:
        self.router.control(ResyncStart())   # in order with the events: before any list is asked
        channels = await self._list({"Action": "CoreShowChannels"}, "CoreShowChannel")
        queues = await self._list({"Action": "QueueStatus"}, ("QueueParams", "QueueMember", "QueueEntry"))
        # the attempt ids of calls that began before we connected (their VarSet went to nobody)
        statuses = await self._list({"Action": "Status", "Variables": f"{ATTEMPT_VARIABLE},{AGENT_FIRST_VARIABLE}"},
                                    "Status")
        variables = {m.get("Uniqueid", ""): status_variables(m) for m in statuses}
        self.router.control(Resync(channels, queues, variables))

    async def _list(self, action: dict[str, str], kinds: str | tuple[str, ...]) -> list[dict[str, str]]:
        resp = await self._send_raw(action, timeout=self.server.connect_timeout * 2, as_list=True)
        messages = resp if isinstance(resp, list) else [resp]
        wanted = (kinds,) if isinstance(kinds, str) else kinds
        return [dict(m) for m in messages if m.get("Event") in wanted]

    async def _watchdog(self) -> None:
        """A Ping every ping_interval s that must be answered within ping_timeout s."""
        while True:
            await asyncio.sleep(self.server.ping_interval)
            try:
                await self._send_raw({"Action": "Ping"}, timeout=self.server.ping_timeout)
            except asyncio.TimeoutError:
                self.stats["keepalive_timeouts"] += 1
                log.error("ami_keepalive_timeout", server=self.server.name, timeout=self.server.ping_timeout)
                self._abort()
                return
            except AmiConnectionLost:
                return

    def _abort(self) -> None:
        proto = self._protocol
        if proto is not None and not proto.closed:
            proto.abort()

    # -- actions ------------------------------------------------------------------------------

    async def _send_raw(self, action: dict[str, Any], *, timeout: float, as_list: bool | None = None) -> Any:
        proto = self._protocol
        if self._manager is None or proto is None or proto.closed:
            raise AmiNotConnected(self.server.name)
        req = proto.request(action, as_list)
        try:
            async with asyncio.timeout(timeout):
                return await req.future
        except BaseException:
            proto.forget(req)
            raise

    async def send(self, action: dict[str, Any], *, timeout: float = 10.0, as_list: bool | None = None) -> Any:
        """Send an action once (never re-sent after a reconnect) and return its response:
        a dict of headers; a list of them for an event list (``as_list=True``), for an
        AGI command (the reply, then its ``AsyncAGIExec``) and for an async Originate (the
        reply, then its ``OriginateResponse``). Raises ActionFailed on ``Response: Error``."""
        if not self._connected.is_set():
            raise AmiNotConnected(f"AMI {self.server.name} is not connected")
        resp = await self._send_raw(action, timeout=timeout, as_list=as_list)
        first = resp[0] if isinstance(resp, list) else resp
        if first.get("Response") == "Error":
            raise ActionFailed(action.get("Action", "?"), first.get("Message", ""))
        return resp

    def status(self) -> dict[str, Any]:
        return {"ok": self.connected, "state": self.state, "host": self.server.host, "port": self.server.port,
                "version": self.version, "connected_since": self.connected_since, "last_error": self.last_error,
                "live_calls": len(self.router.calls), "backlog": self.router.backlog, **self.stats}
