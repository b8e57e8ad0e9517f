"""What a finished IVR session leaves behind, in ONE transaction (or one statement, see
:func:`commit`): the call record (through lifecycle: disposition, intent, digits, path,
survey score, its tags, score, stage rules, cadence tasks and outbox rows), the flow's own
stage changes, score changes, callbacks, collected digits, ``ivr.intent_tagged`` and
``ivr.custom_event`` outbox rows, and the session and its steps. Either all of it commits
or none of it does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from callcycle.logs import get_logger
from ivr import repository
from ivr.interpreter import State
from lifecycle import repository as lifecycle_repo, scoring, task_repository as task_repo
from lifecycle.errors import ContactChanged, TransitionRefused
from lifecycle.models import CallOutcome, Contact, Direction, Snapshot, TaskPlan
from lifecycle.service import LifecycleService
from lifecycle.steps import record_call, update_contact
from lifecycle.unit import ContactUnit, Context, NeedsLock

log = get_logger(__name__)


@dataclass(frozen=True)
class Ended:
    """A finished session, as the recorder needs it."""

    server: str
    linkedid: str
    channel: str
    flow: str
    flow_version: str
    direction: Direction
    campaign_id: str | None
    attempt_id: str | None
    contact_id: int | None
    state: State
    stamps: tuple[datetime, ...]
    started_at: datetime
    ended_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Committed:
    session_id: int
    call_id: int | None
    contact: Contact | None
    refused: tuple[str, ...] = ()
    priority: int | None = None   # of a queue transfer: the flow's, or from the score


def queue_priority(node_priority: int | None, score: int) -> int:
    """app_queue's QUEUE_PRIO: the node's own, or score // 10 (a hot lead, >= 80, gets 8-10)."""
    return node_priority if node_priority is not None else min(10, max(0, score // 10))


# Rows of a session that refer to each other: their ids are taken with the contact's row.
RESERVE = ("calls", "ivr_sessions")


async def commit(lifecycle: LifecycleService, e: Ended, seen: Snapshot | None = None) -> Committed:
    """Record the session, once: if it is recorded already (a retry after a commit whose
    reply was lost), what was recorded is returned and nothing is written again."""
    try:
        return await _commit(lifecycle, e, seen)
    except asyncpg.UniqueViolationError:
        # ivr_sessions_once, or (the one-statement path reusing the ids its snapshot
        # reserved) the call's primary key: either way, look for the first record
        async with lifecycle.pool.acquire() as conn:
            row = await repository.recorded(conn, e.server, e.linkedid, e.channel, e.started_at)
        if row is None:   # not a retry of this session: a conflict of its own
            raise
        log.info("ivr_session_already_recorded", session_id=row["id"], call_id=row["call_id"],
                 linkedid=e.linkedid)
        return Committed(row["id"], row["call_id"], None, tuple(row["refused"]), row["priority"])


async def _commit(lifecycle: LifecycleService, e: Ended, seen: Snapshot | None) -> Committed:
    """Record the session. Given ``seen``, the contact as the session read it when it began
    (LifecycleService.snapshot with RESERVE), everything goes in one statement that commits
    on its own, without a transaction: one round trip where the locked path below takes
    four (BEGIN, the lock, the writes, COMMIT). It commits only if the contact is still at
    the version read. If it changed meanwhile (a CRM event, another call), or the outcome
    needs a statement of its own (a callback task, a cadence), the locked path records it
    against the contact as it is now."""
    if seen is not None and seen.contact.id == e.contact_id:
        ctx = lifecycle.context()
        try:
            unit = ContactUnit.unlocked(ctx, seen)
            committed = _hold(ctx, e, unit, *(await _contact_changes(unit, e)), await unit.new_id("ivr_sessions"))
            async with lifecycle.pool.acquire() as conn:
                await ctx.pending.send_alone(conn, ctx.now, (seen.contact.id, seen.version))
            return committed
        except (ContactChanged, NeedsLock) as why:
            log.debug("ivr_commit_locked", reason=type(why).__name__, contact_id=e.contact_id)
    async with lifecycle.transaction() as (conn, ctx):
        if e.contact_id is None:
            return _hold(ctx, e, None, None, [], await lifecycle_repo.next_id(conn, "ivr_sessions"))
        unit = await ContactUnit.load(conn, ctx, e.contact_id, reserve=RESERVE)
        return _hold(ctx, e, unit, *(await _contact_changes(unit, e)), await unit.new_id("ivr_sessions"))


def _hold(ctx: Context, e: Ended, unit: ContactUnit | None, call_id: int | None, refused: list[str],
          session_id: int) -> Committed:
    """Hold the session and its steps back with the unit's other writes."""
    contact = unit.contact if unit else None
    s = e.state
    transfer = s.transfer.queue or s.transfer.agent if s.transfer else None
    priority = queue_priority(s.transfer.priority, contact.score if contact else 0) \
        if s.transfer and s.transfer.queue else None
    steps = [(r.kind, r.node, r.digits, at) for r, at in zip(s.records, e.stamps, strict=False)]
    steps += [("refused", node, "", e.ended_at) for node in refused]
    repository.hold_session(ctx.pending, session_id, repository.SessionRow(
        call_id, e.contact_id, e.server, e.linkedid, e.channel, e.flow, e.flow_version, str(e.direction),
        str(s.outcome), s.node, s.intent, s.digits, s.satisfaction, transfer, priority, e.started_at,
        e.ended_at, e.error), steps)
    return Committed(session_id, call_id, contact, tuple(refused), priority)


async def _contact_changes(unit: ContactUnit, e: Ended) -> tuple[int, list[str]]:
    s, source = e.state, f"ivr:{e.flow}"
    if s.collected:
        attributes = {**unit.contact.attributes, **s.collected}
        await update_contact(unit, {"attributes": attributes}, None)
    if s.removed:
        await unit.tag([], list(s.removed), source)
    call_id = await record_call(unit, CallOutcome(
        contact_id=unit.contact.id, direction=e.direction, disposition=str(s.outcome), started_at=e.started_at,
        ended_at=e.ended_at, campaign_id=e.campaign_id, attempt_id=e.attempt_id, intent=s.intent,
        digits=_digits_for_call(unit, s), ivr_path=s.path, satisfaction=s.satisfaction,
        talk_seconds=max(0, round((e.ended_at - e.started_at).total_seconds())),
        extra_tags=tuple(t for t in s.tags if t not in s.removed)))
    if s.score:
        await _change_score(unit, s.score, f"{source}: score {s.score:+d}")
    refused = []
    for node, to, reason in s.stages:
        try:
            await unit.move(to, reason or f"IVR flow {e.flow}", f"{source}:{node}")
        except TransitionRefused:
            refused.append(node)   # e.g. decline asked of an acquisition lead: recorded, skipped
    for cb in s.callbacks:
        task = await task_repo.insert_task(unit.conn, unit.contact.id, TaskPlan(
            cb.kind, unit.ctx.now + timedelta(hours=cb.after_hours), unit.ctx.now + timedelta(hours=cb.within_hours),
            cb.reason, f"{source}:{cb.id}"), unit.ctx.now)
        if task is not None:
            await unit.emit("task.created", task=task.to_event())
    _events(unit, e, call_id)
    return call_id, refused


def _digits_for_call(unit: ContactUnit, s: State) -> str | None:
    """The keys for the call record, unless lifecycle's [intent] digits (the screening
    menu's "1"/"2") would read them as an intent this flow did not give: a "1" in a
    survey is not high intent. The keys are always in ivr_sessions/ivr_steps."""
    digits = s.digits or None
    mapped = unit.ctx.rules.intent.digits.get(digits or "")
    if mapped and mapped not in s.tags and mapped not in {i.tag for i in s.intents}:
        return None
    return digits


async def _change_score(unit: ContactUnit, delta: int, reason: str) -> None:
    rules, settings = unit.ctx.rules.scoring, unit.ctx.settings
    old = unit.contact.score
    new = max(rules.min, min(rules.max, old + delta))
    if new == old:
        return
    await unit.update(score=new)
    await unit.emit("contact.score_changed", old_score=old, new_score=new, reason=reason,
                    band=str(scoring.band(new, settings.hot_threshold, settings.nurture_threshold)))


def _events(unit: ContactUnit, e: Ended, call_id: int) -> None:
    ref = unit.contact.ref()
    for i in e.state.intents:
        unit.emit_raw("ivr.intent_tagged", {"contact": ref, "call_id": call_id, "flow": e.flow, "node": i.node,
                                            "intent": i.tag, "digits": i.digits or None})
    for em in e.state.emits:
        unit.emit_raw("ivr.custom_event", {"contact": ref, "call_id": call_id, "flow": e.flow, "node": em.id,
                                           "name": em.event, "data": dict(em.data)})
