"""Supervisor actions: listen, whisper, barge, hang up a call, pause an agent, pause or
resume a campaign. Every one is audited (who, what, which, when, how it ended), and the
audit entry appears on every console.

An action runs on this instance when it is connected to the call's Asterisk (or, for a
campaign, holds the campaign's pause control); otherwise it is forwarded over the bus to
the instance that publishes the entity.

Listen/whisper/barge ring the supervisor's own phone (``[monitor] supervisor_endpoint``)
and run ``ChanSpy`` on the call with the ``d`` option, so the mode can be switched during
the spy: by the supervisor pressing 4 (listen), 5 (whisper), 6 (barge) on the phone, or by
clicking another mode on the console, which plays that digit into the spy channel as if
received (AMI ``PlayDTMF`` with ``Receive``) — no second ring. The spy leg carries
``CALLCYCLE_SPY_*`` variables, so every instance shows who spies on what, in which mode.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from callcycle.auth import Principal
from callcycle.logs import get_logger
from monitor import repository
from monitor.errors import ActionRefused, NoSuchEntity, NotConnectedHere
from monitor.models import SpyMode
from monitor.service import Monitor
from monitor.views import SPY_CALL, SPY_MODE, SPY_PREFIX, SPY_SUPERVISOR
from pbx.errors import ActionFailed, AmiNotConnected, PbxError

log = get_logger(__name__)
SPY_DIGITS = {SpyMode.LISTEN: "4", SpyMode.WHISPER: "5", SpyMode.BARGE: "6"}


class SupervisorActions:
    def __init__(self, monitor: Monitor, pbx: Any, pool: asyncpg.Pool) -> None:
        self.monitor = monitor
        self.pbx = pbx
        self.pool = pool
        monitor.commands.update({"spy": self._spy, "hangup": self._hangup, "agent_pause": self._agent_pause})

    # -- entry points (each audited) -----------------------------------------------------

    async def spy(self, who: Principal, call_id: str, mode: str, endpoint: str) -> dict[str, Any]:
        if mode not in SPY_DIGITS:
            raise ActionRefused(f"mode must be one of {sorted(SPY_DIGITS)}", error_id="invalid-mode")
        return await self._audited(who, mode, "call", call_id, {"endpoint": endpoint},
                                   lambda: self._route("call", call_id, "spy", call_id=call_id, mode=mode,
                                                       supervisor=who.subject, endpoint=endpoint))

    async def hangup(self, who: Principal, call_id: str) -> dict[str, Any]:
        return await self._audited(who, "hangup", "call", call_id, {},
                                   lambda: self._route("call", call_id, "hangup", call_id=call_id))

    async def pause_agent(self, who: Principal, agent_id: str, paused: bool, reason: str) -> dict[str, Any]:
        return await self._audited(
            who, "agent_pause" if paused else "agent_resume", "agent", agent_id, {"reason": reason},
            lambda: self._route("agent", agent_id, "agent_pause", agent_id=agent_id, paused=paused, reason=reason))

    async def pause_campaign(self, who: Principal, campaign_id: str, paused: bool) -> dict[str, Any]:
        async def run() -> None:
            if self.monitor.campaigns.controls(campaign_id):
                await self.monitor.campaigns.set_paused(campaign_id, paused)
                return
            origin = self.monitor.board.origin_of("campaign", campaign_id)
            if origin is None or origin == self.monitor.instance:
                raise ActionRefused(f"campaign {campaign_id} has no pause control", error_id="not-controllable")
            await self.monitor.remote(origin, "campaign_pause", campaign_id=campaign_id, paused=paused)

        if self.monitor.board.get("campaign", campaign_id) is None:
            raise NoSuchEntity(f"no live campaign {campaign_id!r}")
        return await self._audited(who, "campaign_pause" if paused else "campaign_resume", "campaign",
                                   campaign_id, {}, run)

    async def _audited(self, who: Principal, action: str, kind: str, target: str, detail: dict[str, Any],
                       run: Any) -> dict[str, Any]:
        error: Exception | None = None
        try:
            await run()
        except Exception as exc:  # recorded, then raised to the caller
            error = exc
        entry = await repository.record(
            self.pool, subject=who.subject, role=who.role, action=action, target_kind=kind, target_id=target,
            detail=detail, outcome="failed" if error else "ok", error=str(error) if error else None,
            instance=self.monitor.instance)
        self.monitor.publish("audit", str(entry.id), entry.to_json())
        log.info("monitor_action", subject=who.subject, action=action, target=target, ok=error is None)
        if error is not None:
            if isinstance(error, (PbxError, ActionFailed)):
                raise ActionRefused(str(error)) from error
            raise error
        return entry.to_json()

    # -- routing -------------------------------------------------------------------------

    async def _route(self, kind: str, eid: str, command: str, **args: Any) -> None:
        entity = self.monitor.board.get(kind, eid)
        if entity is None:
            raise NoSuchEntity(f"no live {kind} {eid!r}")
        if self._server(entity["server"]) is not None:
            await self.monitor.commands[command](**args)
            return
        origin = self.monitor.board.origin_of(kind, eid)
        if origin is None or origin == self.monitor.instance:
            raise NotConnectedHere(f"no instance is connected to Asterisk {entity['server']!r}")
        await self.monitor.remote(origin, command, **args)

    def _server(self, name: str) -> Any:
        if self.pbx is None or name not in self.pbx.servers:
            return None
        server = self.pbx[name]
        return server if server.client.connected else None

    def _target(self, kind: str, eid: str) -> tuple[dict[str, Any], Any]:
        entity = self.monitor.board.get(kind, eid)
        if entity is None:
            raise NoSuchEntity(f"no live {kind} {eid!r}")
        server = self._server(entity["server"])
        if server is None:
            raise AmiNotConnected(entity["server"])
        return entity, server

    # -- what runs on the instance connected to the Asterisk ---------------------------------

    async def _spy(self, call_id: str, mode: str, supervisor: str, endpoint: str) -> None:
        call, server = self._target("call", call_id)
        if call["direction"] == "spy":
            raise ActionRefused("that is a spy leg", error_id="cannot-spy-on-spy")
        leg = self._spy_leg(supervisor)
        if leg is not None and leg["spy"]["call_id"] == call_id:
            # Already on this call: switch mode in place, as if the supervisor pressed the key.
            # as_list=False: Asterisk answers "DTMF successfully queued", which panoramisk
            # otherwise takes for an async Originate's reply and then looks up an Async
            # header the action lacks, an error that drops the whole AMI connection.
            await server.client.send({"Action": "PlayDTMF", "Channel": leg["channel"], "Digit": SPY_DIGITS[SpyMode(mode)],
                                      "Duration": "120", "Receive": "true"}, as_list=False)
            await server.actions.setvar(leg["channel"], SPY_MODE, mode)
            return
        if leg is not None:  # spying elsewhere: leave that call first
            await self._hangup_channels(server, [leg["channel"]])
        target = call.get("agent_channel") or call.get("channel")
        if not target:
            raise ActionRefused("the call has no channel to spy on", error_id="no-channel")
        result = await server.actions.spy(target, endpoint, mode, f"{SPY_PREFIX}{uuid.uuid4().hex[:16]}")
        if not result.success or not result.channel:
            raise ActionRefused(f"the supervisor phone {endpoint} did not answer ({result.reason})",
                                error_id="supervisor-not-reached")
        for name, value in ((SPY_SUPERVISOR, supervisor), (SPY_MODE, mode), (SPY_CALL, call_id)):
            await server.actions.setvar(result.channel, name, value)

    def _spy_leg(self, supervisor: str) -> dict[str, Any] | None:
        for call in self.monitor.board.entities["call"].values():
            spy = call.get("spy")
            if spy and spy.get("supervisor") == supervisor and call.get("channel"):
                return call
        return None

    async def _hangup(self, call_id: str) -> None:
        call, server = self._target("call", call_id)
        await self._hangup_channels(server, call["channels"])

    async def _hangup_channels(self, server: Any, channels: list[str]) -> None:
        hung = 0
        for channel in channels:
            try:
                await server.actions.hangup(channel)
                hung += 1
            except ActionFailed:
                pass  # that channel is already gone
        if channels and not hung:
            raise ActionRefused("the call's channels are already gone", error_id="call-gone")

    async def _agent_pause(self, agent_id: str, paused: bool, reason: str) -> None:
        agent, server = self._target("agent", agent_id)
        # An empty Queue pauses the member in every queue it belongs to.
        await server.actions.queue_pause("", agent["interface"], paused, reason)
