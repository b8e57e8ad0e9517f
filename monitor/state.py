"""The live view of one Asterisk server, kept current by a pbx router listener.

The listener runs inside the router's one ordered path, so it only updates dicts and
hands changed entities to ``emit`` (never blocks, never awaits). ``tick()`` reconciles
with the router's tables once a second: calls discovered or lost by a resync after an AMI
reconnect (the router tells listeners nothing of those), queue state replaced by a
``QueueStatus`` snapshot, and agents' occupancy, which changes with time alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from monitor.models import Delta, Entity, same
from monitor.views import (ANNOTATIONS, SPY_CALL, SPY_MODE, SPY_SUPERVISOR, SPY_VARIABLE_PREFIX,
                           AgentExtras, CallExtras, agent_state, agent_view, call_view, queue_view)
from pbx import events as ev
from pbx.calls import Call
from pbx.queues import Member
from pbx.router import Router

_QUEUE_CALL_EVENTS = (ev.QueueCallerJoin, ev.QueueCallerLeave, ev.QueueCallerAbandon, ev.AgentCalled,
                      ev.AgentConnect, ev.AgentComplete, ev.AgentRingNoAnswer)


class LiveState:
    """Calls, agents and queues of the server behind ``router``; changes go to ``emit``."""

    def __init__(self, server: str, router: Router, emit: Callable[[Delta], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.router = router
        self.emit = emit
        self.clock = clock
        self.views: dict[str, dict[str, Entity]] = {"call": {}, "agent": {}, "queue": {}}
        self._calls: dict[str, CallExtras] = {}
        self._agents: dict[str, AgentExtras] = {}
        self._counts: dict[str, list[int]] = {}       # queue -> [answered, abandoned]
        self._spying: dict[str, set[str]] = {}        # spied call id -> spy legs' linkedids
        self.flow_outcomes: dict[tuple[str, str], int] = {}
        # Calls changed by the events of the router's current batch, with the arrival of
        # the first change: a call's view is built once per batch, not once per event (a
        # call being set up sends a dozen events in a few milliseconds).
        self._dirty: dict[str, float | None] = {}
        router.add_listener(self.on_event)
        router.add_batch_end(self.publish_changed)

    # -- the router listener ----------------------------------------------------------------

    def on_event(self, call: Call | None, event: Any) -> None:
        # A delta's "at" is when the AMI event reached us (not when the router got to it),
        # so a supervisor's latency figure counts the wait in the router's queue too.
        at = self.router.arrived_at or self.clock()
        if isinstance(event, ev.CallEnded):
            self._end(event.linkedid, at)
            return
        if call is not None and isinstance(event, ev.CallEvent):
            x = self._calls.get(call.linkedid)
            if x is None:
                x = self._calls[call.linkedid] = CallExtras()
            self._track(call, x, event)
            self._dirty.setdefault(call.linkedid, at)
            if isinstance(event, _QUEUE_CALL_EVENTS):
                self._refresh_queue(event.queue, at)
        elif isinstance(event, ev.AgentCompleteDetached):
            # the call's channels (and so its Hangup, which freed the agent) came first
            self._agent(event.interface).completed += 1
            self._refresh_queue(event.queue, at)
        elif isinstance(event, (ev.QueueMemberStatus, ev.QueueMemberPause)):
            self._refresh_queue(event.queue, at)

    def _track(self, call: Call, x: CallExtras, e: ev.CallEvent) -> None:
        if isinstance(e, ev.AsyncAGIStart):
            x.phase = "ivr"
        elif isinstance(e, ev.AsyncAGIEnd) and x.phase == "ivr":
            x.phase = ""
        elif isinstance(e, ev.QueueCallerJoin):
            x.phase, x.queue = "queued", e.queue
        elif isinstance(e, (ev.QueueCallerLeave, ev.QueueCallerAbandon)) and x.phase == "queued":
            x.phase = ""
            if isinstance(e, ev.QueueCallerAbandon):
                self._count(e.queue, 1)
        elif isinstance(e, ev.AgentCalled):
            self._agent(e.interface).ringing_call = call.linkedid
        elif isinstance(e, ev.AgentRingNoAnswer):
            self._agent(e.interface).ringing_call = ""
        elif isinstance(e, ev.AgentConnect):
            a = self._agent(e.interface)
            a.ringing_call, a.current_call = "", call.linkedid
            x.phase, x.queue, x.agent = "agent", e.queue, e.member_name or e.interface
            x.agent_interface, x.agent_channel = e.interface, e.dest_channel
            self._count(e.queue, 0)
        elif isinstance(e, ev.AgentComplete):
            a = self._agent(e.interface)
            if a.current_call == call.linkedid:
                a.current_call = ""
            a.completed += 1
        elif isinstance(e, ev.VarSet) and e.variable.startswith(SPY_VARIABLE_PREFIX):
            target = call.variables.get(SPY_CALL)
            if target:
                self._spying.setdefault(target, set()).add(call.linkedid)
                self._republish(target, None)

    def _agent(self, interface: str) -> AgentExtras:
        a = self._agents.get(interface)
        if a is None:
            a = self._agents[interface] = AgentExtras()
        return a

    def _count(self, queue: str, index: int) -> None:
        self._counts.setdefault(queue, [0, 0])[index] += 1

    def _end(self, linkedid: str, at: float | None) -> None:
        self._dirty.pop(linkedid, None)   # the view goes: nothing to build
        x = self._calls.pop(linkedid, None)
        cid = f"{self.server}:{linkedid}"
        view = self.views["call"].get(cid)
        if view is not None and view.get("flow") and view["direction"] != "spy":
            outcome = ",".join(view["intent"]) or "none"
            key = (view["flow"], outcome)
            self.flow_outcomes[key] = self.flow_outcomes.get(key, 0) + 1
        for target, legs in list(self._spying.items()):
            if linkedid in legs:
                legs.discard(linkedid)
                if not legs:
                    del self._spying[target]
                self._republish(target, at)
        self._set("call", cid, None, at)
        if x is not None and x.agent_interface:
            agent = self._agents.get(x.agent_interface)
            if agent is not None and agent.current_call == linkedid:
                agent.current_call = ""
            self._refresh_queue(x.queue, at)

    # -- views ------------------------------------------------------------------------------

    def publish_changed(self) -> None:
        """The router's batch is done: publish the calls its events changed."""
        dirty, self._dirty = self._dirty, {}
        for linkedid, at in dirty.items():
            call = self.router.calls.get(linkedid)
            if call is not None:
                self._publish_call(call, at)

    def _publish_call(self, call: Call, at: float | None) -> None:
        """``at``: when the AMI event behind this change arrived (None: a reconcile)."""
        x = self._calls.get(call.linkedid) or CallExtras()
        cid = f"{self.server}:{call.linkedid}"
        spied_by = []
        for leg in sorted(self._spying.get(cid, ())):
            spy = self.router.calls.get(leg)
            if spy is not None:
                spied_by.append({"supervisor": spy.variables.get(SPY_SUPERVISOR),
                                 "mode": spy.variables.get(SPY_MODE)})
        now = self.clock() if at is None else at
        self._set("call", cid, call_view(self.server, call, x, spied_by, now), at)

    def _republish(self, call_id: str, at: float | None) -> None:
        call = self.router.calls.get(call_id.partition(":")[2])
        if call is not None:
            self._publish_call(call, at)

    def annotate(self, linkedid: str, fields: dict[str, Any]) -> bool:
        """Let a feature (IVR, dialer) set a call's flow node, intent, contact, stage."""
        unknown = set(fields) - ANNOTATIONS
        if unknown:
            raise ValueError(f"unknown call fields {sorted(unknown)}; allowed: {sorted(ANNOTATIONS)}")
        call = self.router.calls.get(linkedid)
        if call is None:
            return False
        x = self._calls.setdefault(linkedid, CallExtras())
        x.annotations.update(fields)
        self._publish_call(call, self.clock())
        return True

    def _members(self) -> dict[str, dict[str, Member]]:
        """interface -> {queue: membership}"""
        out: dict[str, dict[str, Member]] = {}
        for qname, q in self.router.queues.queues.items():
            for interface, m in q.members.items():
                out.setdefault(interface, {})[qname] = m
        return out

    def _refresh_queue(self, name: str, at: float | None) -> None:
        """Queue ``name`` and the agents that are its members (all queues if ``name`` is '')."""
        members = self._members()
        queues = self.router.queues.queues
        for qname in [name] if name else list(queues):
            q = queues.get(qname)
            if q is None:
                continue
            view = queue_view(self.server, qname, q, self._counts.get(qname, [0, 0]), at or self.clock())
            self._set("queue", f"{self.server}:{qname}", view, at)
            for interface in q.members:
                self._refresh_agent(interface, members.get(interface, {}), at)

    def _refresh_agent(self, interface: str, members: dict[str, Member], at: float | None) -> None:
        x = self._agent(interface)
        state = agent_state(list(members.values()), x)
        x.account(state, self.clock() if at is None else at)
        self._set("agent", f"{self.server}:{interface}", agent_view(self.server, interface, members, x, state), at)

    def _set(self, kind: str, eid: str, data: Entity | None, at: float | None) -> None:
        table = self.views[kind]
        old = table.get(eid)
        if data is None:
            if old is not None:
                del table[eid]
                self.emit(Delta(kind, eid, None, at))
            return
        table[eid] = data
        if not same(old, data):
            self.emit(Delta(kind, eid, data, at))

    # -- reconcile --------------------------------------------------------------------------

    def tick(self) -> None:
        """Reconcile with the router's tables (see the module docstring)."""
        live = self.router.calls.calls
        for cid in [c for c in self.views["call"] if c.partition(":")[2] not in live]:
            self._end(cid.partition(":")[2], None)
        for call in live.values():
            self._publish_call(call, None)
        gone = [q for q in self.views["queue"] if q.partition(":")[2] not in self.router.queues.queues]
        for qid in gone:
            self._set("queue", qid, None, None)
        members = self._members()
        for aid in [a for a in self.views["agent"] if a.partition(":")[2] not in members]:
            self._set("agent", aid, None, None)
        self._refresh_queue("", None)

    def full(self) -> dict[str, dict[str, Entity]]:
        return {kind: dict(table) for kind, table in self.views.items()}
