"""Queue state from app_queue's events: members (agents) and waiting callers per queue.

Rebuilt from a ``QueueStatus`` snapshot after every (re)connect, then kept current by
events. The dialer's pacing and the supervisor view read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pbx import events as ev

# app_queue member (device) status: AST_DEVICE_*
DEVICE_NOT_INUSE = 1
DEVICE_INUSE = 2
DEVICE_BUSY = 3
DEVICE_UNAVAILABLE = 5
DEVICE_RINGING = 6
DEVICE_RINGINUSE = 7
DEVICE_ONHOLD = 8


@dataclass(slots=True)
class Member:
    interface: str
    name: str = ""
    status: int = DEVICE_NOT_INUSE
    paused: bool = False
    paused_reason: str = ""
    in_call: bool = False
    calls_taken: int = 0

    @property
    def available(self) -> bool:
        return not self.paused and not self.in_call and self.status == DEVICE_NOT_INUSE


@dataclass(slots=True)
class Queue:
    name: str
    members: dict[str, Member] = field(default_factory=dict)
    # linkedid -> time the caller joined
    waiting: dict[str, float] = field(default_factory=dict)

    @property
    def available_agents(self) -> int:
        return sum(1 for m in self.members.values() if m.available)

    @property
    def longest_wait(self) -> float:
        return time.time() - min(self.waiting.values()) if self.waiting else 0.0


_SINCE_MAX = 100_000


# The events that change the table: what a resync replays over its snapshot.
_CHANGES = (ev.QueueMemberStatus, ev.QueueMemberAdded, ev.QueueMemberRemoved, ev.QueueMemberPause,
            ev.QueueCallerJoin, ev.QueueCallerLeave, ev.QueueCallerAbandon)


class QueueTable:
    def __init__(self) -> None:
        self.queues: dict[str, Queue] = {}
        # events applied since mark(): replayed over the snapshot, which they are newer than
        self._since: list[tuple[Any, float]] | None = None

    def mark(self) -> None:
        self._since = []

    def queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name)
        return q

    def _member(self, queue: str, interface: str) -> Member:
        q = self.queue(queue)
        m = q.members.get(interface)
        if m is None:
            m = q.members[interface] = Member(interface)
        return m

    def _remember(self, event: Any) -> None:
        if self._since is not None and isinstance(event, _CHANGES):
            self._since.append((event, time.time()))
            if len(self._since) > _SINCE_MAX:   # no resync came: the next one starts afresh
                self._since = None

    def apply(self, event: ev.ServerEvent) -> None:
        self._remember(event)
        if isinstance(event, ev.QueueMemberStatus):
            m = self._member(event.queue, event.interface)
            m.name, m.status, m.paused = event.member_name, event.status, event.paused
            m.in_call, m.calls_taken, m.paused_reason = event.in_call, event.calls_taken, event.paused_reason
        elif isinstance(event, ev.QueueMemberAdded):
            m = self._member(event.queue, event.interface)
            m.name, m.status, m.paused = event.member_name, event.status, event.paused
        elif isinstance(event, ev.QueueMemberRemoved):
            self.queue(event.queue).members.pop(event.interface, None)
        elif isinstance(event, ev.QueueMemberPause):
            m = self._member(event.queue, event.interface)
            m.paused, m.paused_reason = event.paused, event.reason

    def apply_call_event(self, event: ev.CallEvent, at: float | None = None) -> None:
        if at is None:
            self._remember(event)
        if isinstance(event, ev.QueueCallerJoin):
            self.queue(event.queue).waiting[event.linkedid] = time.time() if at is None else at
        elif isinstance(event, (ev.QueueCallerLeave, ev.QueueCallerAbandon)):
            self.queue(event.queue).waiting.pop(event.linkedid, None)

    def resync(self, rows: list[dict[str, str]]) -> None:
        """Replace the state with a ``QueueStatus`` snapshot (QueueParams/Member/Entry rows)."""
        fresh = QueueTable()
        for row in rows:
            kind = row.get("Event")
            name = row.get("Queue", "")
            if kind == "QueueParams":
                fresh.queue(name)
            elif kind == "QueueMember":
                m = fresh._member(name, row.get("Location") or row.get("Interface", ""))
                m.name = row.get("Name", "") or row.get("MemberName", "")
                m.status = int(row.get("Status", "1") or 1)
                m.paused = row.get("Paused") == "1"
                m.paused_reason = row.get("PausedReason", "")
                m.in_call = row.get("InCall") == "1"
                m.calls_taken = int(row.get("CallsTaken", "0") or 0)
            elif kind == "QueueEntry":
                wait = float(row.get("Wait", "0") or 0)
                fresh.queue(name).waiting[row.get("Linkedid") or row.get("Uniqueid", "")] = time.time() - wait
        since, self._since = self._since or [], None
        for event, at in since:   # each carries the whole state it sets: replaying is idempotent
            if isinstance(event, ev.CallEvent):
                fresh.apply_call_event(event, at)
            else:
                fresh.apply(event)
        self.queues = fresh.queues

    def snapshot(self) -> dict[str, dict]:
        return {
            name: {"waiting": len(q.waiting), "longest_wait": round(q.longest_wait, 1),
                   "available_agents": q.available_agents,
                   "members": {i: {"name": m.name, "status": m.status, "paused": m.paused,
                                   "in_call": m.in_call, "calls_taken": m.calls_taken}
                               for i, m in q.members.items()}}
            for name, q in self.queues.items()
        }
