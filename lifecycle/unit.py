"""Changes to one contact inside one transaction. Every change that the CRM must hear
about writes its outbox row in the same transaction, so event and change commit together.

The service opens the transaction, builds a :class:`ContactUnit` and composes its steps;
a stage rule, a score change or a cadence that a step triggers follows in the same unit.

Writes to the contact row, to the outbox and of rows nothing reads back in the transaction
(stage history, the call record) are held in the transaction's :class:`Pending` and sent
when it commits, in one statement: an UPDATE of each changed contact, the INSERTs, and
every outbox row in the order they were emitted. A call outcome touches the contact row
and the outbox up to a dozen times; each statement is a round trip to PostgreSQL, and on a
loaded machine each round trip waits for a scheduler slot, so the held-back writes are
what keeps an IVR keypress's commit short. A row that others refer to gets its id with the
contact's lock (:meth:`ContactUnit.load`'s ``reserve``). The unit's ``contact`` mirrors
every held change, and loading a contact sends pending contact changes first, so nothing
inside the transaction reads a stale row.

A unit may also run without a transaction over a contact read earlier
(:meth:`ContactUnit.unlocked`, the IVR's commit): its held writes then go as one statement
that commits only if the contact's version has not moved since, and a step that needs a
statement of its own raises :class:`NeedsLock`; the caller then does it all again, locked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg

from crm_sync import outbox
from lifecycle import cadence, repository as repo, scoring, task_repository as task_repo
from lifecycle.config import LifecycleSettings
from lifecycle.errors import NoSuchContact, TransitionRefused
from lifecycle.machine import Refused, StageMachine
from lifecycle.models import Contact, Rules, Snapshot, Stage, Task, TaskState
from lifecycle.writeback import write_back


# Contact columns that are bookkeeping, not the contact's data: changing them alone does
# not move ``updated_at``.
_BOOKKEEPING = frozenset({"score_at", "last_touch_at"})
# Contact fields kept in tables of their own, written by their own statements: ``update``
# mirrors them on ``contact`` and moves the row's ``updated_at``.
_OTHER_TABLES = frozenset({"phones"})


class Pending:
    """The writes a transaction holds back until it commits (see the module docstring)."""

    def __init__(self) -> None:
        self.fields: dict[int, dict[str, Any]] = {}
        self.inserts: list[tuple[str, Sequence[Any]]] = []
        self.events: list[outbox.Event] = []

    def set(self, contact_id: int, fields: dict[str, Any]) -> None:
        self.fields.setdefault(contact_id, {}).update(fields)

    def insert(self, sql: str, values: Sequence[Any]) -> None:
        """An INSERT (its own ``$1..$n``) of a row nothing in the transaction reads back: a
        history line, a call record whose id was reserved with the contact's lock."""
        self.inserts.append((sql, values))

    def event(self, event: outbox.Event) -> None:
        self.events.append(event)

    async def flush(self, conn: asyncpg.Connection, now: datetime) -> None:
        """Send what is held, in one statement."""
        if not self.fields and not self.inserts and not self.events:
            return
        if not conn.is_in_transaction():
            raise RuntimeError("held-back writes must be sent inside their transaction")
        await write_back(conn, *self._take(now))

    async def send_alone(self, conn: asyncpg.Connection, now: datetime, expect: tuple[int, int] | None) -> None:
        """Send what is held as one statement outside any transaction, for a unit that did
        not lock its contact (:meth:`ContactUnit.unlocked`): it commits whole if that
        contact (``expect``: id, version) is still at the version read, else it writes
        nothing and raises ContactChanged. ``expect`` None: what is held changes no row that
        exists yet (a new contact's, see lifecycle.steps.create_contact)."""
        if conn.is_in_transaction():
            raise RuntimeError("an unlocked unit's writes commit on their own, outside a transaction")
        if set(self.fields) - ({expect[0]} if expect is not None else set()):
            raise NeedsLock("a change to another contact")
        await write_back(conn, *self._take(now), expect=expect)

    def _take(self, now: datetime) -> tuple[dict[int, tuple[dict[str, Any], datetime | None]],
                                            list[tuple[str, Sequence[Any]]], list[outbox.Event]]:
        changed, self.fields = self.fields, {}
        inserts, self.inserts = self.inserts, []
        events, self.events = self.events, []
        return ({cid: (fields, None if _BOOKKEEPING.issuperset(fields) else now) for cid, fields in changed.items()},
                inserts, events)


class NeedsLock(Exception):
    """A unit that did not lock its contact needed a statement of its own (a task to read or
    create): its change must be made again, in a transaction holding the lock."""


class _NoConnection:
    """The connection of an unlocked unit: it has none, and any statement raises NeedsLock."""

    def __getattr__(self, name: str) -> Any:
        raise NeedsLock(name)


@dataclass(frozen=True)
class Context:
    """What every unit needs: the rules, the settings, the machine, the current time, and
    the transaction's held-back writes."""

    rules: Rules
    settings: LifecycleSettings
    machine: StageMachine
    now: datetime
    pending: Pending = field(default_factory=Pending)


class ContactUnit:
    def __init__(self, conn: asyncpg.Connection, ctx: Context, contact: Contact,
                 score_at: datetime | None = None, reserved: dict[str, int] | None = None) -> None:
        self.conn, self.ctx, self.contact = conn, ctx, contact
        self.score_at = score_at
        self.reserved = dict(reserved or {})

    @classmethod
    async def load(cls, conn: asyncpg.Connection, ctx: Context, contact_id: int,
                   reserve: Sequence[str] = ()) -> ContactUnit:
        """The contact, locked for the rest of the transaction, with a new id of each table
        in ``reserve`` taken in the same round trip (see :meth:`new_id`)."""
        if ctx.pending.fields:   # the row read must see this transaction's changes
            await ctx.pending.flush(conn, ctx.now)
        found = await repo.read_contact(conn, contact_id, reserve)
        if found is None:
            raise NoSuchContact(contact_id)
        return cls(conn, ctx, found.contact, found.score_at, found.reserved)

    @classmethod
    def unlocked(cls, ctx: Context, seen: Snapshot) -> ContactUnit:
        """A unit over a contact read earlier and not locked, with no connection: its steps
        may only hold writes back (any statement of their own raises NeedsLock), and
        ``ctx.pending.send_alone`` commits them if the contact is still as ``seen``."""
        return cls(_NoConnection(), ctx, seen.contact, seen.score_at, seen.reserved)  # type: ignore[arg-type]

    async def new_id(self, table: str) -> int:
        """An id for a row of ``table`` written at commit: the one reserved at load, else a
        round trip for one."""
        reserved = self.reserved.pop(table, None)
        return reserved if reserved is not None else await repo.next_id(self.conn, table)

    async def emit(self, event_type: str, **data: Any) -> None:
        self.emit_raw(event_type, {"contact": self.contact.ref(), **data})

    def emit_raw(self, event_type: str, payload: dict[str, Any]) -> None:
        """An outbox row about this contact, in order with the unit's other events."""
        self.ctx.pending.event(outbox.Event(event_type, payload, ordering_key=f"contact:{self.contact.id}",
                                            occurred_at=self.ctx.now))

    async def update(self, **fields: Any) -> None:
        columns = {k: v for k, v in fields.items() if k not in _OTHER_TABLES}
        self.set(columns or {"updated_at": self.ctx.now})
        known = {f.name for f in dataclasses.fields(Contact)}
        mirrored = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in known}
        self.contact = dataclasses.replace(self.contact, **mirrored, updated_at=self.ctx.now)

    def set(self, fields: dict[str, Any]) -> None:
        """Columns to write at commit (``update`` also mirrors them on ``contact``)."""
        self.ctx.pending.set(self.contact.id, fields)

    async def tag(self, add: list[str], remove: list[str], source: str, *, rescore: bool = True) -> list[str]:
        """Add and remove tags; added tags score, may fire stage rules and risk signals."""
        current = list(self.contact.tags)
        added = [t for t in dict.fromkeys(add) if t not in current]
        removed = [t for t in dict.fromkeys(remove) if t in current and t not in added]
        if not added and not removed:
            return []
        await self.update(tags=[t for t in current if t not in removed] + added)
        await self.emit("contact.tagged", added=added, removed=removed, source=source)
        if rescore:
            await self.rescore([f"tag:{t}" for t in added], f"tagged by {source}")
        for t in added:
            await self.fire(f"tag:{t}", source)
        if set(added) & self.ctx.rules.intent.risk_tags:
            await self.risk_signal(source)
        return added

    async def rescore(self, signals: list[str], reason: str) -> None:
        c, rules = self.contact, self.ctx.rules.scoring
        new, self.score_at = scoring.rescore(c.score, self.score_at, self.ctx.now, signals, rules)
        self.set({"score_at": self.score_at})
        if new == c.score:
            return
        old = c.score
        await self.update(score=new)
        s = self.ctx.settings
        await self.emit("contact.score_changed", old_score=old, new_score=new, reason=reason,
                        band=str(scoring.band(new, s.hot_threshold, s.nurture_threshold)))

    async def move(self, to: str, reason: str, cause: str, trigger: str = "manual") -> None:
        """Change stage through the machine; refused moves raise TransitionRefused."""
        try:
            move = self.ctx.machine.move(self.contact.stage, to, trigger)
        except Refused as exc:
            raise TransitionRefused(str(exc.from_stage), exc.to_stage, exc.reason) from None
        await self._apply(move.to_stage, reason or move.rule.why, cause)

    async def fire(self, trigger: str, cause: str) -> bool:
        """Apply the stage rule ``trigger`` fires from the current stage, if one does."""
        move = self.ctx.machine.fire(self.contact.stage, trigger)
        if move is None:
            return False
        await self._apply(move.to_stage, move.rule.why or move.rule.name, f"rule:{move.rule.name}")
        return True

    async def _apply(self, to: Stage, reason: str, cause: str) -> None:
        old = self.contact.stage
        await self.update(stage=to)
        self.ctx.pending.insert(repo.INSERT_HISTORY,
                                repo.history_row(self.contact.id, old, to, reason, cause, self.ctx.now))
        await self.emit("contact.stage_changed", from_stage=str(old), to_stage=str(to), reason=reason, cause=cause)

    async def risk_signal(self, cause: str) -> None:
        await self.fire("risk_signal", cause)
        await self.schedule("risk_signal")

    async def schedule(self, signal: str, renewal_date: date | None = None) -> list[Task]:
        """Create the tasks of every cadence listening to ``signal`` (once per moment)."""
        created = []
        for plan in cadence.plan(self.ctx.rules.cadences, signal, self.ctx.now, renewal_date):
            task = await task_repo.insert_task(self.conn, self.contact.id, plan, self.ctx.now)
            if task is not None:
                created.append(task)
                await self.emit("task.created", task=task.to_event())
        return created

    async def close(self, rules: list[str], state: TaskState) -> None:
        if not rules:
            return
        for task in await task_repo.close_tasks(self.conn, self.contact.id, rules, state, self.ctx.now):
            if state == TaskState.DONE:
                await self.emit("task.completed", task=task.to_event())

    async def complete(self, task: Task) -> Task:
        """Mark a task done; a repeating cadence whose reason persists plans the next round."""
        done = await task_repo.close_task(self.conn, task.id, TaskState.DONE, self.ctx.now)
        await self.emit("task.completed", task=done.to_event())
        for c in self.ctx.rules.cadences:
            # Repeating cadences run "until complaint_resolved": go on while one is open.
            if c.name == task.rule and c.repeat and await repo.open_complaints(self.conn, self.contact.id):
                for plan in cadence.repeat(c, self.ctx.now):
                    new = await task_repo.insert_task(self.conn, self.contact.id, plan, self.ctx.now)
                    if new is not None:
                        await self.emit("task.created", task=new.to_event())
        return done
