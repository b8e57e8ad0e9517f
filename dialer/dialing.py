"""The life of one attempt: reserve (gate + caps, fenced) -> originate -> follow its call
-> record the outcome (fenced), with lifecycle and the outbox in the same transaction.

    reserved = await dialing.reserve(lead_id)         # None, or a refusal, or a Reservation
    sent = await dialing.originate(reserved)          # the Originate action, written once
    await dialing.follow(reserved.attempt_id, sent)   # waits for the end, records it

An attempt row exists before its originate is written and is never dialed again: a new
try of the same lead is a new attempt with a new id. Every write checks the campaign's
fencing token (``repository.hold_fence``) so a leader that lost its lease stops at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from callcycle.clock import Clock
from callcycle.logs import get_logger
from dialer import compliance, dnc, repository as repo, unseen
from dialer.config import DialerSettings
from dialer.errors import LeaseLost
from dialer.machine import CallTrace, after_attempt, after_refusal, attempt_fields, disposition
from dialer.models import Campaign, CampaignState, Disposition, Mode
from dialer.originate import AGENT_FIRST_CONTEXT, agent_first_request, agent_phone, new_attempt_id, originate_request
from dialer.observer import AttemptObserver
from dialer.pacing import CampaignStats
from lifecycle.models import CallOutcome, Direction
from lifecycle.service import LifecycleService
from lifecycle.steps import record_call
from lifecycle.unit import ContactUnit
from pbx.actions import OriginateRequest, OriginateResult
from pbx.errors import OriginateOutcomeUnknown, PbxError
from pbx.service import PbxServer

log = get_logger(__name__)
LONGEST_CALL = timedelta(hours=4)   # after this a call we never saw end is looked up again


@dataclass(frozen=True)
class Deps:
    pool: asyncpg.Pool
    lifecycle: LifecycleService
    server: PbxServer
    observer: AttemptObserver
    settings: DialerSettings
    clock: Clock
    holder: str
    namespace: str = ""  # of this database's Redis keys (repository.namespace)
    board: Any = None    # the supervisors' campaign board (monitor.campaigns), if any


@dataclass(frozen=True)
class Reservation:
    attempt_id: str
    lead_id: int
    contact_id: int
    phone: str
    task_id: int | None
    request: OriginateRequest


@dataclass(frozen=True)
class Refusal:
    lead_id: int
    rule: str


class Dialing:
    """Attempts of one campaign under one lease token."""

    def __init__(self, deps: Deps, campaign: Campaign, token: int, stats: CampaignStats) -> None:
        self.d, self.campaign, self.token, self.stats = deps, campaign, token, stats
        # Attempts this leader reserved and follows itself, claimed before their row commits:
        # the runner's sweep adopts only the others (two followers would record one call twice).
        self.claimed: set[str] = set()

    @property
    def rules(self) -> compliance.Rules:
        """The rule values in force now (a paused campaign's settings may have changed)."""
        s, srv = self.campaign.settings, self.d.settings
        start, end = s.window(srv)
        return compliance.Rules(start, end, srv.allowed_countries, srv.allowed_prefixes, srv.denied_prefixes,
                                s.max_attempts, s.max_attempts_per_day)

    # -- reserve ----------------------------------------------------------------------------

    async def reserve(self, lead_id: int) -> Reservation | Refusal | None:
        """Check the gate and count the attempt, in one fenced transaction. None when the
        lead is not dialable now (taken, not due, campaign not running)."""
        claim: list[str] = []
        try:
            return await self._reserve(lead_id, self.d.clock.now(), claim)
        except BaseException as exc:
            self.claimed.difference_update(claim)   # not reserved after all
            if isinstance(exc, asyncpg.UniqueViolationError):
                return None   # another campaign reserved the same number at the same instant
            raise

    async def _reserve(self, lead_id: int, now: datetime, claim: list[str]) -> Reservation | Refusal | None:
        async with self.d.pool.acquire() as conn, conn.transaction():
            state = await repo.hold_fence(conn, self.campaign.id, self.token)
            if state is None:
                raise LeaseLost(self.campaign.id)
            lead = await repo.lock_lead(conn, lead_id)
            if state is not CampaignState.RUNNING or lead is None or lead["state"] != "ready" or lead["next_at"] > now:
                return None
            agent = lead["approved_by"] if self.campaign.mode is Mode.PREVIEW else None
            agent_channel = agent_phone(self.d.settings, agent)
            facts = await self._facts(conn, lead, now, guaranteed_agent=agent_channel is not None)
            verdict = compliance.check(facts, self.rules) if facts else compliance.Verdict(False, "no_contact")
            if verdict.allowed and await repo.number_in_call(conn, lead["phone"]):
                verdict = compliance.Verdict(False, "in_call", now + timedelta(minutes=2), verdict.record)
            if not verdict.allowed:
                nxt = after_refusal(verdict.rule or "refused", verdict.retry_at, self.campaign.settings)
                await repo.insert_refusal(conn, self.campaign.id, lead_id, lead["phone"], verdict.rule or "",
                                          verdict.retry_at, verdict.record, now)
                await repo.move_lead(conn, lead_id, nxt, None, now)
                return Refusal(lead_id, verdict.rule or "")
            day = compliance.local_day(now, facts.time_zones)
            s = self.campaign.settings
            if not await repo.count_attempt(conn, lead_id, day, s.max_attempts, s.max_attempts_per_day, now):
                return None
            attempt_id = new_attempt_id(self.campaign.id, lead_id)
            if agent_channel is not None:
                request = agent_first_request(self.campaign, self.d.settings, attempt_id, lead["phone"],
                                              lead["contact_id"], agent, agent_channel)
            else:
                request = originate_request(self.campaign, self.d.settings, attempt_id, lead["phone"],
                                            lead["contact_id"])
            claim.append(attempt_id)
            self.claimed.add(attempt_id)
            await repo.insert_attempt(conn, attempt_id, lead, self.token, self.d.holder, verdict.record,
                                      request.channel, now)
        return Reservation(attempt_id, lead_id, lead["contact_id"], lead["phone"], lead["task_id"], request)

    async def _facts(self, conn: asyncpg.Connection, lead: asyncpg.Record, now: datetime,
                     guaranteed_agent: bool) -> compliance.DialFacts | None:
        contact = await dnc.lock_contact(conn, lead["contact_id"])
        if contact is None:
            return None
        listed = await dnc.listed(conn, lead["phone"])
        abandoned_at, machine_at = await repo.number_facts(conn, lead["phone"])
        return compliance.DialFacts(
            phone=lead["phone"], now=now, time_zones=tuple(contact["time_zones"]), dnc_listed=listed,
            contact_dnc=contact["do_not_call"], consent=contact["consent"], attempts=lead["attempts"],
            attempts_on=lead["attempts_day_date"], attempts_today=lead["attempts_day"],
            last_abandoned_at=abandoned_at, machine_at=machine_at, guaranteed_agent=guaranteed_agent)

    # -- originate --------------------------------------------------------------------------

    async def originate(self, r: Reservation) -> asyncio.Task[OriginateResult] | None:
        """Send the Originate inside a fenced transaction that holds the contact's share lock
        (see dialer.dnc): a do-not-call addition and this dial are serial. None if not sent."""
        now = self.d.clock.now()
        async with self.d.pool.acquire() as conn, conn.transaction():
            state = await repo.hold_fence(conn, self.campaign.id, self.token)
            if state is None:
                raise LeaseLost(self.campaign.id)
            if state is not CampaignState.RUNNING:   # paused or stopped since the reservation
                await self._end_unsent(conn, r, None, f"campaign_{state}", now)
                return None
            if await dnc.blocked_now(conn, r.contact_id, r.phone):
                await self._end_unsent(conn, r, Disposition.REFUSED, "dnc_at_dial", now)
                return None
            if r.request.context == AGENT_FIRST_CONTEXT:   # known before any event: its answer is the agent's
                self.d.observer.trace(r.attempt_id).agent_first = True
            sent = asyncio.create_task(self.d.server.actions.originate(r.request), name=f"originate:{r.attempt_id}")
            await asyncio.sleep(0)   # the task runs up to its first wait: the action is written
            if sent.done() and sent.exception() is not None:
                # Refused before writing anything (not connected, unsafe dial string).
                log.warning("dialer_originate_not_sent", attempt_id=r.attempt_id, error=str(sent.exception()))
                await self._end_unsent(conn, r, None, "not_sent", now)
                return None
            await repo.mark_dialed(conn, r.attempt_id, now)
        return sent

    async def _end_unsent(self, conn: asyncpg.Connection, r: Reservation, d: Disposition | None, why: str,
                          now: datetime) -> None:
        """An attempt that was never dialed: no call record; a refusal closes the lead, a
        send failure gives the attempt's count back."""
        await repo.finish_attempt(conn, r.attempt_id, {"disposition": str(d or Disposition.FAILED), "ended_at": now,
                                                       "detail": {"not_dialed": why}})
        if d is Disposition.REFUSED:
            await repo.insert_refusal(conn, self.campaign.id, r.lead_id, r.phone, "dnc", None,
                                      {"gate": compliance.GATE_VERSION, "refused_by": "dnc", "at": "dial"}, now)
            await repo.move_lead(conn, r.lead_id, after_attempt(d, 0, self.campaign.settings, now), str(d), now)
        else:
            await repo.uncount_attempt(conn, r.lead_id, now)

    # -- follow and record -------------------------------------------------------------------

    async def follow(self, attempt_id: str, sent: asyncio.Task[OriginateResult] | None) -> None:
        """Wait for the attempt's call to end (however its originate went), then record it."""
        if sent is not None:
            try:
                result = await sent
                trace = self.d.observer.trace(attempt_id)
                if not result.success and trace.linkedid is None:   # no channel was ever created
                    trace.originate_reason = trace.originate_reason or result.reason
                    self.d.observer.end_unseen(attempt_id, "hangup")
            except (OriginateOutcomeUnknown, TimeoutError):   # no OriginateResponse in time, either way
                log.warning("dialer_originate_outcome_unknown", attempt_id=attempt_id)
                await self.look_up([attempt_id])
            except PbxError as exc:
                log.warning("dialer_originate_failed", attempt_id=attempt_id, error=str(exc))
                self.d.observer.trace(attempt_id).originate_reason = "failed"
                self.d.observer.end_unseen(attempt_id, "hangup")
        trace = self.d.observer.trace(attempt_id)
        while not trace.ended:
            try:
                await self.d.observer.wait_ended(attempt_id, LONGEST_CALL.total_seconds())
            except asyncio.TimeoutError:
                await self.look_up([attempt_id])
        await self.record(attempt_id, trace)

    async def look_up(self, attempt_ids: list[str]) -> None:
        """After an outage or a takeover: tie each attempt to its live call, or end it as
        unseen. Waits for the AMI connection first (a dropped one comes back)."""
        client = self.d.server.client
        while True:
            try:
                await client.wait_connected(None)
                live = await self.d.server.actions.live_attempts()
                break
            except PbxError:
                await asyncio.sleep(0.5)
        calls = self.d.server.router.calls
        for attempt_id in attempt_ids:
            trace = self.d.observer.get(attempt_id)
            if trace is not None and (trace.ended or (trace.linkedid and calls.get(trace.linkedid))):
                continue
            names = set(live.get(attempt_id, ()))
            call = next((c for c in list(calls.calls.values())
                         if names & {ch.name for ch in c.channels.values()}), None)
            if call is not None:
                self.d.observer.adopt(attempt_id, call)
            else:
                self.d.observer.end_unseen(attempt_id, "unseen")

    async def record(self, attempt_id: str, t: CallTrace) -> None:
        """Store the outcome once, fenced: attempt, lead, number facts, lifecycle call
        record and its outbox rows commit together."""
        await unseen.complete(self.d.server, self.d.clock.now().timestamp(), attempt_id, t)
        d = disposition(t)
        now = self.d.clock.now()
        async with self.d.lifecycle.transaction() as (conn, ctx):
            if await repo.hold_fence(conn, self.campaign.id, self.token) is None:
                raise LeaseLost(self.campaign.id)   # the next leader records it
            # locked: a second recorder of the same attempt waits here, then sees it ended
            row = await conn.fetchrow("SELECT * FROM dialer_attempts WHERE id = $1 FOR UPDATE", attempt_id)
            if row is None or row["ended_at"] is not None:
                return
            lead = await repo.lock_lead(conn, row["lead_id"])
            unit = await ContactUnit.load(conn, ctx, row["contact_id"], reserve=("calls",))
            fields = attempt_fields(t, d, row["dialed_at"] or row["created_at"], now)
            await repo.finish_attempt(conn, attempt_id, fields)
            if d in (Disposition.ABANDONED, Disposition.MACHINE):
                await repo.note_number(conn, row["phone"], now, abandoned=d is Disposition.ABANDONED,
                                       machine=d is Disposition.MACHINE)
            nxt = after_attempt(d, lead["attempts"], self.campaign.settings, now)
            await repo.move_lead(conn, lead["id"], nxt, str(d), now)
            # An agentless call the IVR took is recorded by the IVR (with this attempt id).
            if not (self.campaign.mode is Mode.AGENTLESS and t.connected_at is not None):
                outcome = CallOutcome(
                    row["contact_id"], Direction.OUTBOUND, str(d), row["dialed_at"] or row["created_at"],
                    fields["ended_at"], campaign_id=str(self.campaign.id), attempt_id=attempt_id,
                    digits="".join(t.digits) or None, talk_seconds=fields["talk_seconds"],
                    ring_seconds=fields["ring_seconds"], agent=t.agent,
                    task_id=lead["task_id"] if d is Disposition.ANSWERED else None)
                await repo.set_call_id(conn, attempt_id, await record_call(unit, outcome))
        self._learn(t, d, fields)
        log.info("dialer_attempt_recorded", campaign_id=self.campaign.id, attempt_id=attempt_id, disposition=str(d))

    def _learn(self, t: CallTrace, d: Disposition, f: dict[str, Any]) -> None:
        """Feed the pacing statistics (times in epoch seconds)."""
        now = f["ended_at"].timestamp()
        if d in (Disposition.UNKNOWN, Disposition.REFUSED):
            return
        answered = t.answered_at is not None
        ring = (t.queued_at or t.answered_at or t.ended_at or now) - t.first_seen   # see machine.IN_FLIGHT
        self.stats.record_attempt(now, answered, max(ring, 0.0), machine=d is Disposition.MACHINE)
        if answered and d in (Disposition.ANSWERED, Disposition.ABANDONED):
            self.stats.record_live_answer(now, d is Disposition.ABANDONED)
        if t.connected_at is not None:
            self.stats.record_connect(now, f["talk_seconds"] or (now - t.connected_at))
