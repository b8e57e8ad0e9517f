"""IVR use cases: load and reload flows, claim calls that enter ``AGI(agi:async)`` with a
``CALLCYCLE_FLOW``, run a :class:`~ivr.session.Session` per call, and record its end.

    ivr = IvrService(settings, lifecycle, clock)   # loads and checks every flow, or raises
    ivr.register(pbx)                              # a call factory on every server's router
    ivr.reload()                                   # new calls use the new flows; calls in
                                                   # progress finish on the flow they began with

The dialer hands answered press-1 calls to the IVR by sending them to the dialplan's
``callcycle-outbound,ivr`` with ``CALLCYCLE_FLOW`` (and ``CALLCYCLE_CONTACT_ID``,
``CALLCYCLE_CAMPAIGN_ID``); if it owns the call's handler it forwards the call's events
to :meth:`IvrService.handler_for`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from callcycle.clock import Clock
from callcycle.errors import decimal_id
from callcycle.logs import get_logger
from ivr import calendar, loader, recorder, repository, sounds
from ivr.config import IvrSettings
from ivr.errors import FlowProblem, FlowsInvalid
from ivr.interpreter import State
from ivr.models import FlowSet
from ivr.session import Session
from lifecycle.errors import InvalidPhone
from lifecycle.models import Direction, Snapshot
from lifecycle.service import LifecycleService
from pbx import events as ev
from pbx.calls import UP, Call
from pbx.service import Pbx, PbxServer

log = get_logger(__name__)
Observer = Callable[[str, Session, float, dict[str, Any]], None]


def load_flows(settings: IvrSettings) -> FlowSet:
    """Every flow of ``settings.flows_dir``, checked; raises FlowsInvalid (file, line, reason)."""
    catalogue = None
    if settings.check_sounds:
        try:
            catalogue = sounds.scan(settings.sounds_dir, settings.sounds_chroot)
        except (FileNotFoundError, OSError) as exc:
            raise FlowsInvalid([FlowProblem(settings.sounds_dir, 0, f"cannot list the sound files ({exc}); "
                                            "set [ivr] check_sounds = false when Asterisk runs on another host")]) from exc
    return loader.load_dir(settings.flows_dir, catalogue)


class IvrService:
    def __init__(self, settings: IvrSettings, lifecycle: LifecycleService, clock: Clock,
                 flows: FlowSet | None = None) -> None:
        self.settings, self.lifecycle, self.clock = settings, lifecycle, clock
        self.calendar = calendar.parse(settings.business_hours, settings.time_zone, settings.holidays)
        self.flows = flows or load_flows(settings)
        self.sessions: dict[tuple[str, str], Session] = {}
        self.observers: list[Observer] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._retries: set[asyncio.Task[None]] = set()   # outcomes waiting for the database
        self._region = settings.default_region or lifecycle.settings.default_region
        self.stopping = False

    # -- flows ---------------------------------------------------------------------------------

    def reload(self) -> FlowSet:
        """Load the flows again; on any problem the current set stays (FlowsInvalid raised)."""
        fresh = load_flows(self.settings)
        self.flows = fresh
        log.info("ivr_flows_reloaded", flows={f.name: f.version for f in fresh.flows.values()})
        return fresh

    # -- claiming calls ------------------------------------------------------------------------

    def register(self, pbx: Pbx) -> None:
        for server in pbx.servers.values():
            server.router.add_call_factory(self._factory(server))

    def _factory(self, server: PbxServer) -> Callable[[Call, Any], Any]:
        def factory(call: Call, event: Any) -> Any:
            if not isinstance(event, ev.AsyncAGIStart) or "CALLCYCLE_FLOW" not in call.variables:
                return None   # not ours: someone else's call, or not in the IVR (yet)
            if call.variables.get("CALLCYCLE_IVR_OWNER", "") != self.settings.owner:
                return None   # another deployment's (see [ivr] owner)
            return self.handler_for(server, call)   # the router hands it this event, then the rest
        return factory

    def handler_for(self, server: PbxServer, call: Call) -> Callable[[Call, Any], None]:
        """A router handler for ``call``: every AsyncAGIStart of a channel starts a session
        on it; the call's other events go to its running sessions."""
        return _CallHandler(self, server, call)

    def _start(self, server: PbxServer, call: Call, event: ev.AsyncAGIStart) -> Session | None:
        name = call.variables.get("CALLCYCLE_FLOW", "")
        flow = None if self.stopping else self.flows.get(name)
        if flow is None:
            # Nobody would drive this channel: let the dialplan go on (it hangs up).
            log.error("ivr_call_refused", flow=name, linkedid=call.linkedid,
                      reason="shutting down" if self.stopping else "unknown flow")
            self._spawn(server.actions.agi(event.channel, "ASYNCAGI BREAK", timeout=10))
            return None
        chan = call.channels.get(event.uniqueid)
        session = Session(self, server, flow, call.linkedid, event.channel, dict(event.env), dict(call.variables),
                          answered=chan is None or chan.state == UP)
        self.sessions[(server.name, event.channel)] = session
        session.task = asyncio.create_task(session.run(), name=f"ivr:{event.channel}")
        self.observe("started", session, flow=flow.name)
        return session

    def forget(self, session: Session) -> None:
        key = (session.server.name, session.channel_name)
        if self.sessions.get(key) is session:
            del self.sessions[key]

    # -- what sessions need ----------------------------------------------------------------------

    async def find_contact(self, session: Session) -> Snapshot | None:
        """The contact of the call: CALLCYCLE_CONTACT_ID (the dialer's calls), else the
        caller's number (any format, E.164 match), created in acquisition if new; read with
        its version and the ids the session's commit will need (recorder.commit's ``seen``)."""
        contact_id = session.variables.get("CALLCYCLE_CONTACT_ID", "")
        try:
            if (known := decimal_id(contact_id)) is not None:
                return await self.lifecycle.snapshot(known, recorder.RESERVE)
            number = session.env.get("agi_callerid", "")
            if not number or number == "unknown":
                return None
            return await self.lifecycle.snapshot_by_phone(number, self._region, recorder.RESERVE)
        except InvalidPhone:
            log.info("ivr_caller_without_contact", reason="caller number is not a phone number")
            return None

    async def commit(self, session: Session, state: State) -> recorder.Committed:
        seen = None
        if session.contact_task is not None:
            try:
                seen = await asyncio.shield(session.contact_task)
            except Exception:
                # The look-up failed (the database was away?): once more, now.
                session.contact_task = asyncio.ensure_future(self.find_contact(session))
                seen = await session.contact_task
        contact_id = seen.contact.id if seen else None
        v = session.variables
        outbound = v.get("CALLCYCLE_DIRECTION") == "outbound" or bool(v.get("CALLCYCLE_CAMPAIGN_ID"))
        committed = await recorder.commit(self.lifecycle, recorder.Ended(
            server=session.server.name, linkedid=session.linkedid, channel=session.channel_name,
            flow=session.flow.name, flow_version=session.flow.version,
            direction=Direction.OUTBOUND if outbound else Direction.INBOUND,
            campaign_id=v.get("CALLCYCLE_CAMPAIGN_ID") or None,
            attempt_id=v.get("CALLCYCLE_ATTEMPT_ID") if outbound else None,
            contact_id=contact_id, state=state, stamps=tuple(session.stamps),
            started_at=session.started_at, ended_at=session.ended_at or self.clock.now(), error=session.error), seen)
        log.info("ivr_session_recorded", flow=session.flow.name, outcome=state.outcome, node=state.node,
                 call_id=committed.call_id, contact_id=contact_id)
        return committed

    async def note_error(self, committed: recorder.Committed | None, error: str) -> None:
        if committed is None:
            return
        async with self.lifecycle.pool.acquire() as conn:
            await repository.add_error(conn, committed.session_id, error)

    def commit_later(self, session: Session, state: State) -> None:
        """Keep trying to commit an outcome the database refused (it is restarting), with
        back-off, until it is recorded or the server stops (then it is logged as lost)."""
        async def retry() -> None:
            delay, tries = 1.0, 0
            try:
                while True:
                    await asyncio.sleep(delay)
                    tries += 1
                    try:
                        await self.commit(session, state)
                    except Exception as exc:  # noqa: BLE001 - the database is still away
                        log.warning("ivr_commit_retry_failed", flow=session.flow.name, linkedid=session.linkedid,
                                    tries=tries, error=f"{type(exc).__name__}: {exc}"[:300])
                        delay = min(delay * 2, 30.0)
                        continue
                    self.observe("committed", session, outcome=state.outcome)
                    log.info("ivr_commit_recovered", flow=session.flow.name, linkedid=session.linkedid, tries=tries)
                    return
            except asyncio.CancelledError:
                log.error("ivr_outcome_not_recorded", flow=session.flow.name, linkedid=session.linkedid,
                          outcome=state.outcome, node=state.node, reason="server stopped with the database away")
                raise
        self._spawn(retry(), self._retries)

    @property
    def pending_commits(self) -> int:
        """Outcomes waiting for the database to come back."""
        return len(self._retries)

    def hang_up_later(self, session: Session) -> None:
        """Hang up a channel we stopped driving (now, or once AMI is back): a channel parked
        in AsyncAGI with nobody sending commands would wait forever."""
        async def hang_up() -> None:
            client = session.server.client
            deadline = time.monotonic() + 600
            while not client.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            try:
                await session.server.actions.hangup(session.channel_name)
                log.info("ivr_channel_hung_up", channel=session.channel_name)
            except Exception as exc:  # noqa: BLE001 - the channel may be gone already
                log.info("ivr_hangup_not_needed", channel=session.channel_name, reason=str(exc))
        self._spawn(hang_up())

    def _spawn(self, work: Any, into: set[asyncio.Task[Any]] | None = None) -> None:
        """Run ``work`` in the background, kept in ``into`` (the background tasks) until done."""
        tasks = self._background if into is None else into
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # -- observing (benchmarks, metrics) -----------------------------------------------------------

    def observe(self, kind: str, session: Session, **data: Any) -> None:
        if self.observers:
            now = time.perf_counter()
            for observer in self.observers:
                observer(kind, session, now, data)

    def live(self) -> list[dict[str, Any]]:
        return [{"server": s.server.name, "linkedid": s.linkedid, "channel": s.channel_name, "flow": s.flow.name,
                 "flow_version": s.flow.version, "age_s": round(s.age, 1)} for s in self.sessions.values()]

    async def stop(self, grace: float = 0.0) -> None:
        """Shutdown: take no new calls, give the running ones ``grace`` s to finish, then end
        the rest (recorded as ivr_failed, "server shutting down", and hung up: a channel left
        in AsyncAGI without us would wait forever)."""
        self.stopping = True
        running = {s.task for s in self.sessions.values() if s.task is not None}
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)
        if self._retries:   # a last chance for outcomes waiting for the database
            await asyncio.wait(set(self._retries), timeout=grace or 5)
            for task in set(self._retries):
                task.cancel()
            await asyncio.gather(*self._retries, return_exceptions=True)


class _CallHandler:
    """The router's handler of one call claimed by the IVR (sync, never blocks)."""

    def __init__(self, service: IvrService, server: PbxServer, call: Call) -> None:
        self.service, self.server, self.call = service, server, call
        self.sessions: list[Session] = []

    def __call__(self, _call: Call, event: Any) -> None:
        if isinstance(event, ev.AsyncAGIStart):
            session = self.service._start(self.server, self.call, event)
            if session is not None:
                self.sessions = [s for s in self.sessions if not s.finished] + [session]
            return
        for session in self.sessions:
            if not session.finished:
                session.on_event(event)
