"""One call through one flow: the interpreter decides, this class talks to the channel.

    AsyncAGIStart ─> Session.run():
        find/create the contact (in the background, while the first prompt plays)
        loop: interpreter step -> Prompt (STREAM FILE with escape keys, WAIT FOR DIGIT)
                               -> NeedFacts (await the contact, time, calendar)
                               -> Finish (commit; then goodbye + HANGUP, or Redirect to a queue)
              caller gone / AMI lost for good / a command unanswered -> commit the outcome
        the session leaves the service's table, whatever happened

The flow is the one the call began with: a reload swaps the service's set, not ours.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from callcycle.logs import bind_call, get_logger
from ivr import interpreter
from ivr.channel import AgiChannel, CallerGone, ChannelFailed
from ivr.interpreter import State
from ivr.models import CallerGone as Gone, Facts, Finish, Flow, Input, Keys, NeedFacts, Outcome, Prompt, Silence
from pbx import events as ev
from pbx.service import PbxServer

if TYPE_CHECKING:
    from ivr.service import IvrService
    from lifecycle.models import Snapshot

log = get_logger(__name__)
TRANSFER_CONTEXT = "callcycle-ivr-transfer"   # config/asterisk/extensions.conf, IVR section


@dataclass
class Session:
    service: IvrService
    server: PbxServer
    flow: Flow
    linkedid: str
    channel_name: str
    env: dict[str, str]
    variables: dict[str, str]
    answered: bool = True
    started_at: datetime | None = None
    state: State | None = None
    stamps: list[datetime] = field(default_factory=list)
    error: str | None = None
    contact_task: asyncio.Task[Snapshot | None] | None = None
    task: asyncio.Task[None] | None = None
    finished: bool = False
    committed: bool = False
    end_reason: str = ""
    ended_at: datetime | None = None

    def __post_init__(self) -> None:
        self.gone = asyncio.Event()
        self.channel = AgiChannel(self.server, self.linkedid, self.channel_name, self.gone,
                                  self.service.settings.command_grace, self.service.settings.reconnect_grace)
        self.started_at = self.started_at or self.service.clock.now()

    # -- events from the router (sync, never blocks) --------------------------------------------

    def on_event(self, event: Any) -> None:
        if isinstance(event, ev.CallEnded):
            self.end_reason = event.reason
            self.gone.set()
        elif isinstance(event, ev.AsyncAGIExec) and event.channel == self.channel_name:
            self.channel.on_exec(event)
        elif isinstance(event, ev.DTMFEnd) and event.channel == self.channel_name and event.direction == "Received":
            self.channel.on_dtmf(event)
        elif isinstance(event, ev.AsyncAGIEnd | ev.Hangup) and event.channel == self.channel_name:
            self.gone.set()

    # -- the conversation ----------------------------------------------------------------------

    async def run(self) -> None:
        bind_call(linkedid=self.linkedid, server=self.server.name)
        self.contact_task = asyncio.create_task(self.service.find_contact(self))
        state: State | None = None
        try:
            if not self.answered:
                await self.channel.answer()
            state, io = interpreter.start(self.flow)
            while True:
                self._stamp(state)
                if isinstance(io, NeedFacts):
                    state, io = interpreter.resume(self.flow, state, await self._facts(state))
                elif isinstance(io, Finish):
                    await self._finish(state, io)
                    return
                elif io is None:   # the caller went away: the interpreter set the outcome
                    if self.end_reason == "vanished_during_ami_outage":
                        state = interpreter.end(state, Outcome.AMI_OUTAGE)
                    await self._commit(state)
                    return
                else:
                    got = await self._prompt(io, state.node)
                    state, io = interpreter.feed(self.flow, state, got)
        except CallerGone:   # gone before the first prompt (the ANSWER failed)
            await self._commit(interpreter.end(state or State(self.flow.name, self.flow.start), Outcome.ABANDONED))
        except ChannelFailed as exc:
            await self._failed(state, str(exc))
        except asyncio.CancelledError:
            await self._failed(state, "server shutting down")
            raise
        except Exception as exc:
            log.exception("ivr_session_crashed", flow=self.flow.name)
            await self._failed(state, f"{type(exc).__name__}: {exc}")
        finally:
            self.finished = True
            self.service.forget(self)

    async def _prompt(self, p: Prompt, node: str) -> Input:
        """Play ``p.files`` (keys in ``p.escape`` stop them), then read up to ``p.max_digits``."""
        digits = p.typed
        try:
            if not digits:
                for i, sound in enumerate(p.files):
                    self.service.observe("prompt_sent", self, node=node, sound=sound)
                    if i == len(p.files) - 1 and p.max_digits and p.first_wait:
                        self.service.observe("waiting", self, node=node, seconds=p.first_wait)
                        key = await self.channel.get_option(sound, p.escape, p.first_wait)
                        if key is None:
                            return Silence()   # played, then no key within the wait
                    else:
                        key = await self.channel.stream(sound, p.escape)
                    if key:
                        digits = key
                        break
            if p.max_digits == 0:
                return Keys(digits) if digits else Silence()
            wait = p.inter_wait if digits else p.first_wait
            while len(digits) < p.max_digits and not (p.terminator and digits.endswith(p.terminator)):
                self.service.observe("waiting", self, node=node, seconds=wait)
                key = await self.channel.wait_digit(wait)
                if key is None:
                    return Keys(digits, timed_out=True) if digits else Silence()
                digits += key
                wait = p.inter_wait
            return Keys(digits)
        except CallerGone:
            return Gone()

    async def _facts(self, state: State) -> Facts:
        try:
            seen = await asyncio.shield(self.contact_task) if self.contact_task else None
        except Exception:   # logged by the commit's second try; branch on an unknown caller meanwhile
            seen = None
        contact = seen.contact if seen else None
        now = self.service.clock.now()
        cal = self.service.calendar
        return Facts(stage=str(contact.stage) if contact else None,
                     tags=frozenset(contact.tags) if contact else frozenset(),
                     score=contact.score if contact else 0,
                     attributes=dict(contact.attributes) if contact else {},
                     local_time=cal.local(now), business_hours=cal.is_open(now))

    # -- the end ---------------------------------------------------------------------------------

    async def _finish(self, state: State, io: Finish) -> None:
        # The last prompt (goodbye, "please hold") plays while the outcome commits: the caller
        # does not wait for the database. A transfer needs the commit: the queue priority
        # comes from the score it leaves.
        commit = asyncio.create_task(self._commit(state))
        try:
            for sound in io.files:
                self.service.observe("prompt_sent", self, node=state.node, sound=sound)
                await self.channel.stream(sound, "")
            if io.transfer is None:
                await self.channel.hangup()
        except (CallerGone, ChannelFailed) as exc:
            # The outcome is decided; a caller leaving during the goodbye changes nothing. A
            # channel we can no longer drive must not stay parked in AsyncAGI, though.
            if isinstance(exc, ChannelFailed) and not self.gone.is_set():
                self.service.hang_up_later(self)
            if io.transfer is not None:
                await self.service.note_error(await commit, f"caller gone before the transfer ({exc})")
                return
        committed = await commit
        if io.transfer is not None:
            await self._transfer(state, committed)

    async def _transfer(self, state: State, committed: Any) -> None:
        node = state.transfer
        assert node is not None
        priority = committed.priority if committed is not None else (node.priority or 0)
        actions = self.server.actions
        try:
            # AMI Setvar, not AGI SET VARIABLE: an AGI command waits for the channel thread's
            # 100 ms poll, an AMI action does not.
            if node.queue:
                await actions.setvar(self.channel_name, "CALLCYCLE_QUEUE", node.queue)
                await actions.setvar(self.channel_name, "QUEUE_PRIO", str(priority))   # app_queue reads it
                await self.channel.redirect("callcycle-outbound", "queue")
            else:
                await actions.setvar(self.channel_name, "CALLCYCLE_AGENT", node.agent or "")
                await actions.setvar(self.channel_name, "CALLCYCLE_RING_TIMEOUT", str(node.ring_timeout))
                await self.channel.redirect(TRANSFER_CONTEXT, "agent")
            self.service.observe("transferred", self, queue=node.queue, agent=node.agent, priority=priority)
        except (CallerGone, ChannelFailed, Exception) as exc:  # noqa: BLE001 - recorded, never raised
            log.warning("ivr_transfer_failed", flow=self.flow.name, error=str(exc))
            if not self.gone.is_set():   # not redirected: it would wait in AsyncAGI for ever
                self.service.hang_up_later(self)
            await self.service.note_error(committed, f"transfer failed: {exc}")

    async def _failed(self, state: State | None, why: str) -> None:
        """A technical end: record it, and make sure the channel does not stay parked."""
        self.error = why
        log.warning("ivr_session_failed", flow=self.flow.name, reason=why)
        if state is None:
            state = State(self.flow.name, self.flow.start)
        if not state.ended:
            outcome = Outcome.AMI_OUTAGE if self.end_reason == "vanished_during_ami_outage" \
                else Outcome.ABANDONED if self.gone.is_set() else Outcome.FAILED
            state = interpreter.end(state, outcome)
        if not self.gone.is_set():
            self.service.hang_up_later(self)
        if not self.committed:
            await self._commit(state)

    async def _commit(self, state: State) -> Any:
        if self.committed:
            return None
        self.committed = True
        self.state = state
        self.ended_at = self.service.clock.now()
        self._stamp(state)
        self.service.observe("commit_started", self, outcome=state.outcome)
        for attempt, pause in enumerate((0.2, 1.0, 0.0), start=1):
            try:
                result = await self.service.commit(self, state)
            except Exception:
                # One transaction: a failed attempt left nothing behind, or (its reply lost
                # after COMMIT) all of it, which the next attempt finds (recorder.commit).
                log.exception("ivr_commit_failed", flow=self.flow.name, outcome=state.outcome, attempt=attempt)
                if not pause:
                    break
                await asyncio.sleep(pause)
                continue
            self.service.observe("committed", self, outcome=state.outcome)
            return result
        # the database is away longer than a blip (a restart): the call goes on without us
        # waiting, and the outcome is kept and committed once the database is back
        self.service.commit_later(self, state)
        return None

    def _stamp(self, state: State) -> None:
        missing = len(state.records) - len(self.stamps)
        if missing > 0:
            now = self.service.clock.now()
            self.stamps.extend([now] * missing)

    @property
    def age(self) -> float:
        return time.time() - self.started_at.timestamp()
