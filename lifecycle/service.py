"""Lifecycle use cases. Each public method is one transaction; the IVR, the dialer, the
HTTP API and inbound CRM events all change contacts through here.

    service = app[keys.LIFECYCLE]
    contact = await service.find_or_create_by_phone("+14155550123", "US")
    await service.record_call(CallOutcome(contact.id, Direction.INBOUND, "answered", ...))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from callcycle.clock import Clock
from lifecycle import cadence, crm_events, kpi, phones, repository as repo, task_repository as task_repo
from lifecycle.config import LifecycleSettings
from lifecycle.errors import AlreadyClaimed, DuplicateContact, NoSuchContact, NoSuchTask, TaskClosed
from lifecycle.machine import StageMachine
from lifecycle.models import CallOutcome, Contact, NewContact, Rules, Snapshot, Task, TaskState
from lifecycle.rules import load_rules
from lifecycle.steps import add_dnc, create_contact, record_call, update_contact
from lifecycle.unit import ContactUnit, Context
from crm_sync import outbox


class LifecycleService:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, settings: LifecycleSettings,
                 rules: Rules | None = None) -> None:
        self.pool, self.clock, self.settings = pool, clock, settings
        self.rules = rules or load_rules(settings.rules_file)
        self.machine = StageMachine(self.rules.transitions)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[asyncpg.Connection, Context]]:
        """A connection in a transaction, and the context (rules, time) for its units; the
        units' held-back writes are sent just before it commits."""
        async with self.pool.acquire() as conn, conn.transaction():
            ctx = self.context()
            yield conn, ctx
            await ctx.pending.flush(conn, ctx.now)

    def context(self) -> Context:
        """A unit's rules and time, for a transaction or for an unlocked unit."""
        return Context(self.rules, self.settings, self.machine, self.clock.now())

    # --- contacts -------------------------------------------------------------------

    async def get(self, contact_id: int) -> Contact:
        async with self.pool.acquire() as conn:
            contact = await repo.get_contact(conn, contact_id)
        if contact is None:
            raise NoSuchContact(contact_id)
        return contact

    async def snapshot(self, contact_id: int, reserve: Sequence[str] = ()) -> Snapshot:
        """The contact as it is now, unlocked, with its version and new ids of the tables in
        ``reserve``: what a later unlocked commit (ContactUnit.unlocked) starts from."""
        async with self.pool.acquire() as conn:
            seen = await repo.read_contact(conn, contact_id, reserve, lock=False)
        if seen is None:
            raise NoSuchContact(contact_id)
        return seen

    async def snapshot_by_phone(self, raw_phone: str, default_region: str | None = None,
                                reserve: Sequence[str] = ()) -> Snapshot:
        """:meth:`snapshot` of the contact owning this number: one read for a known number;
        for a new one, a new acquisition-stage lead in two statements more (outside a
        transaction: the second writes its rows and its event at once, or nothing)."""
        parsed = phones.parse(raw_phone, default_region or self.settings.default_region)
        async with self.pool.acquire() as conn:
            seen = await repo.read_contact_by_phone(conn, parsed.e164, reserve)
            if seen is not None:
                return seen
            ctx = self.context()
            new = NewContact((parsed.e164,), country=parsed.country, time_zones=parsed.time_zones)
            try:
                unit = await create_contact(conn, ctx, new, "call", reserve)
                await ctx.pending.send_alone(conn, ctx.now, None)
            except (DuplicateContact, asyncpg.UniqueViolationError):
                # the number's contact was created meanwhile (a second call from a new caller)
                seen = await repo.read_contact_by_phone(conn, parsed.e164, reserve)
                if seen is None:
                    raise
                return seen
        return Snapshot(unit.contact, None, repo.NEW_VERSION, unit.reserved)

    async def history(self, contact_id: int) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return await repo.history(conn, contact_id)

    async def search(self, *, phone: str | None = None, stage: str | None = None, tag: str | None = None,
                     min_score: int | None = None, max_score: int | None = None,
                     limit: int = 50, offset: int = 0) -> list[Contact]:
        """Contacts by phone (any format), stage, tag, score range; best score first."""
        e164 = phones.normalise(phone, self.settings.default_region, "phone") if phone else None
        async with self.pool.acquire() as conn:
            return await repo.search(conn, phone=e164, stage=stage, tag=tag, min_score=min_score,
                                     max_score=max_score, limit=limit, offset=offset)

    async def create(self, new: NewContact, source: str = "api") -> Contact:
        async with self.transaction() as (conn, ctx):
            unit = await create_contact(conn, ctx, new, source)
            return unit.contact

    async def find_or_create_by_phone(self, raw_phone: str, default_region: str | None = None) -> Contact:
        """The contact owning this number, or a new acquisition-stage lead with it."""
        parsed = phones.parse(raw_phone, default_region or self.settings.default_region)
        async with self.transaction() as (conn, ctx):
            contact_id = await repo.id_by_phone(conn, parsed.e164)
            if contact_id is not None:
                return (await ContactUnit.load(conn, ctx, contact_id)).contact
            new = NewContact((parsed.e164,), country=parsed.country, time_zones=parsed.time_zones)
            return (await create_contact(conn, ctx, new, "call")).contact

    async def update(self, contact_id: int, fields: dict[str, Any], new_phones: tuple[str, ...] | None = None,
                     source: str = "api") -> Contact:
        """Change plain fields (see repository.UPDATABLE) and/or replace the phone list."""
        async with self.transaction() as (conn, ctx):
            unit = await ContactUnit.load(conn, ctx, contact_id)
            await update_contact(unit, fields, new_phones)
            return unit.contact

    async def delete(self, contact_id: int) -> None:
        """Erase a contact; the CRM hears it as contact.updated with changed ["deleted"]."""
        async with self.transaction() as (conn, ctx):
            unit = await ContactUnit.load(conn, ctx, contact_id)
            await unit.emit("contact.updated", changed=["deleted"])
            await repo.delete_contact(conn, contact_id)

    async def tag(self, contact_id: int, tags: list[str], source: str, remove: list[str] | None = None) -> Contact:
        async with self.transaction() as (conn, ctx):
            unit = await ContactUnit.load(conn, ctx, contact_id)
            await unit.tag(list(tags), list(remove or ()), source)
            return unit.contact

    async def change_stage(self, contact_id: int, to: str, reason: str, cause: str = "api") -> Contact:
        """Move through the machine; an undeclared move raises TransitionRefused (409)."""
        async with self.transaction() as (conn, ctx):
            unit = await ContactUnit.load(conn, ctx, contact_id)
            await unit.move(to, reason, cause)
            return unit.contact

    async def claim(self, contact_id: int, agent: str) -> Contact:
        """An agent claims a lead; unless followed up in time it returns to the shared pool."""
        async with self.transaction() as (conn, ctx):
            unit = await ContactUnit.load(conn, ctx, contact_id)
            owner = unit.contact.owner_agent
            windows = self._claim_windows()
            if owner is not None and windows and not await repo.claim_is_stale(
                    conn, contact_id, ctx.now - max(w for _, w in windows)):
                if owner == agent:
                    return unit.contact   # already theirs: claiming again does not restart the window
                raise AlreadyClaimed(contact_id, owner)
            await unit.close([name for name, _ in windows], TaskState.CANCELLED)
            await unit.update(owner_agent=agent, claimed_at=ctx.now)
            await unit.emit("contact.updated", changed=["owner_agent"])
            await unit.schedule("claimed")
            return unit.contact

    def _claim_windows(self) -> list[tuple[str, timedelta]]:
        """(cadence, how long a claim holds without a follow-up) of each claim cadence."""
        return [(c.name, timedelta(hours=max(t.within_hours for t in c.touches)))
                for c in cadence.claim_cadences(self.rules.cadences)]

    async def release_stale_claims(self) -> list[int]:
        """Return to the shared pool every claimed lead not followed up in time (a sweep)."""
        async with self.transaction() as (conn, ctx):
            released = []
            for name, window in self._claim_windows():
                for contact_id in await repo.stale_claims(conn, ctx.now - window):
                    unit = await ContactUnit.load(conn, ctx, contact_id)
                    await unit.close([name], TaskState.CANCELLED)
                    await unit.update(owner_agent=None, claimed_at=None)
                    await unit.emit("contact.updated", changed=["owner_agent"])
                    released.append(contact_id)
            return released

    # --- calls ----------------------------------------------------------------------

    async def record_call(self, outcome: CallOutcome) -> int:
        """Store a call outcome with all it causes, in one transaction: the call record,
        intent tags, score, a stage change if a rule fires, cadence tasks, outbox rows.
        Returns the call id."""
        async with self.transaction() as (conn, ctx):
            unit = await ContactUnit.load(conn, ctx, outcome.contact_id, reserve=("calls",))
            return await record_call(unit, outcome)

    # --- do not call ----------------------------------------------------------------

    async def is_dnc(self, phone: str) -> bool:
        e164 = phones.normalise(phone, self.settings.default_region)
        async with self.pool.acquire() as conn:
            return await repo.is_dnc(conn, e164)

    async def add_dnc(self, phone: str, source: str) -> Contact | None:
        """Put a number on the do-not-call list and flag its contact; returns the contact."""
        e164 = phones.normalise(phone, self.settings.default_region)
        async with self.transaction() as (conn, ctx):
            return await add_dnc(conn, ctx, e164, source)

    # --- tasks ----------------------------------------------------------------------

    async def due_tasks(self, now: datetime | None = None, kind: str | None = None, limit: int = 100) -> list[Task]:
        """Open tasks workable at ``now`` (default: the clock), earliest due first."""
        async with self.pool.acquire() as conn:
            return await task_repo.list_tasks(conn, now=now or self.clock.now(), kind=kind, state=None,
                                         contact_id=None, limit=limit)

    async def list_tasks(self, *, kind: str | None = None, state: str | None = None,
                         contact_id: int | None = None, limit: int = 100) -> list[Task]:
        async with self.pool.acquire() as conn:
            return await task_repo.list_tasks(conn, now=None, kind=kind, state=state, contact_id=contact_id, limit=limit)

    async def complete_task(self, task_id: int) -> Task:
        async with self.transaction() as (conn, ctx):
            task = await task_repo.get_task(conn, task_id, lock=True)
            if task is None:
                raise NoSuchTask(task_id)
            if task.state != TaskState.OPEN:
                raise TaskClosed({"task_id": task_id, "state": str(task.state)})
            unit = await ContactUnit.load(conn, ctx, task.contact_id)
            return await unit.complete(task)

    async def emit_due_tasks(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Emit ``task.due`` once for each open task that became workable; returns how many."""
        async with self.transaction() as (conn, ctx):
            tasks = await task_repo.unemitted_due(conn, now or ctx.now, limit)
            contacts = await repo.contacts_by_id(conn, {t.contact_id for t in tasks}) if tasks else {}
            for task in tasks:
                ctx.pending.event(outbox.Event("task.due", {"contact": contacts[task.contact_id].ref(),
                                                            "task": task.to_event()},
                                               ordering_key=f"contact:{task.contact_id}", occurred_at=ctx.now))
            await task_repo.mark_due_emitted(conn, [t.id for t in tasks])
            return len(tasks)

    async def apply_crm_event(self, webhook_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Apply an inbound CRM event in one transaction, once per ``webhook_id``
        (None when it was processed before)."""
        async with self.transaction() as (conn, ctx):
            return await crm_events.apply(conn, ctx, webhook_id, event_type, data)

    async def kpis(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Stage KPIs over [start, end) (see lifecycle.kpi)."""
        async with self.pool.acquire() as conn:
            return await kpi.compute(conn, start, end)
