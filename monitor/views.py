"""Pure builders of the live-view entities from the pbx tables (no I/O).

Calls read our channel variables, which the IVR and the dialer set with ``Set()`` in the
dialplan or ``Variable:`` on Originate (they reach us as VarSet events):

    CALLCYCLE_DIRECTION   inbound | outbound   (else: outbound if we originated it)
    CALLCYCLE_FLOW        the IVR flow (callcycle-ivr sets "screening" by default)
    CALLCYCLE_FLOW_NODE   the node of the flow the caller is at
    CALLCYCLE_INTENT      one intent tag; CALLCYCLE_TAGS a comma-separated list
    CALLCYCLE_CONTACT_ID, CALLCYCLE_CONTACT_NAME, CALLCYCLE_STAGE, CALLCYCLE_CAMPAIGN_ID

The same fields may be pushed directly with ``Monitor.annotate_call`` (no dialplan).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from callcycle.logs import mask_phone, mask_text
from monitor.models import AgentState, Audience, Entity
from pbx.calls import Call
from pbx.queues import DEVICE_RINGING, DEVICE_RINGINUSE, DEVICE_UNAVAILABLE, Member

SPY_PREFIX = "spy-"
# Set on a supervisor's spy leg (by monitor.actions), so every instance sees who spies
# on which call in which mode, whichever instance started it.
SPY_VARIABLE_PREFIX = "CALLCYCLE_SPY_"
SPY_SUPERVISOR, SPY_CALL, SPY_MODE = "CALLCYCLE_SPY_SUPERVISOR", "CALLCYCLE_SPY_CALL", "CALLCYCLE_SPY_MODE"
ANNOTATIONS = frozenset({"direction", "flow", "flow_node", "intent", "contact_id", "contact_name",
                         "stage", "campaign_id"})
_DEVICE_INVALID = 4
# A resync's CoreShowChannel rows say "<unknown>" where events have no number at all.
_NO_NUMBER = frozenset({"", "<unknown>", "<null>"})


@dataclass(slots=True)
class CallExtras:
    """What the monitor knows of a call beyond pbx.calls.Call."""

    phase: str = ""          # "ivr" | "queued" | "agent" | ""
    queue: str = ""
    agent: str = ""
    agent_interface: str = ""
    agent_channel: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class AgentExtras:
    current_call: str = ""   # linkedid
    ringing_call: str = ""
    completed: int = 0
    state: str = ""
    since: float = 0.0
    busy_s: float = 0.0
    idle_s: float = 0.0

    def account(self, state: str, now: float) -> None:
        """Occupancy: time in a call over time in a call or available (paused and
        unavailable time does not count)."""
        if self.since:
            elapsed = max(0.0, now - self.since)
            if self.state == AgentState.IN_CALL:
                self.busy_s += elapsed
            elif self.state in (AgentState.AVAILABLE, AgentState.RINGING):
                self.idle_s += elapsed
        self.state, self.since = state, now

    @property
    def occupancy(self) -> float | None:
        total = self.busy_s + self.idle_s
        return round(self.busy_s / total, 2) if total >= 1.0 else None


def _tags(variables: dict[str, str], annotations: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    for raw in (variables.get("CALLCYCLE_INTENT", ""), variables.get("CALLCYCLE_TAGS", "")):
        tags += [t.strip() for t in raw.split(",") if t.strip()]
    extra = annotations.get("intent") or []
    tags += [extra] if isinstance(extra, str) else list(extra)
    return sorted(set(tags))


def call_view(server: str, call: Call, x: CallExtras, spied_by: list[dict[str, Any]], now: float) -> Entity:
    v, a = call.variables, x.annotations
    attempt = v.get("CALLCYCLE_ATTEMPT_ID", "")
    caller = next((c for c in call.channels.values() if c.callerid_num not in _NO_NUMBER), None)
    first = call.caller
    spy = None
    if SPY_CALL in v:
        spy = {"supervisor": v.get(SPY_SUPERVISOR), "call_id": v[SPY_CALL], "mode": v.get(SPY_MODE)}
    if spy is not None or attempt.startswith(SPY_PREFIX):
        direction = "spy"
    else:
        direction = a.get("direction") or v.get("CALLCYCLE_DIRECTION") or (
            "outbound" if attempt or v.get("CALLCYCLE_CAMPAIGN_ID") else "inbound")
    return {
        "id": f"{server}:{call.linkedid}", "server": server, "linkedid": call.linkedid,
        "direction": direction, "state": call.state.value, "phase": x.phase,
        "flow": a.get("flow") or v.get("CALLCYCLE_FLOW") or None,
        "flow_node": a.get("flow_node") or v.get("CALLCYCLE_FLOW_NODE") or None,
        "intent": _tags(v, a),
        "caller": caller.callerid_num if caller else None,
        "caller_name": (caller.callerid_name if caller.callerid_name not in _NO_NUMBER else None) if caller else None,
        "contact_id": a.get("contact_id") or v.get("CALLCYCLE_CONTACT_ID") or None,
        "contact_name": a.get("contact_name") or v.get("CALLCYCLE_CONTACT_NAME") or None,
        "stage": a.get("stage") or v.get("CALLCYCLE_STAGE") or None,
        "campaign_id": a.get("campaign_id") or v.get("CALLCYCLE_CAMPAIGN_ID") or None,
        "attempt_id": attempt or None,
        "queue": x.queue or None, "agent": x.agent or None, "agent_channel": x.agent_channel or None,
        "channel": first.name if first else None,
        "channels": [c.name for c in call.channels.values()],
        "started_at": round(call.started_at, 3),
        "answered_at": round(call.answered_at, 3) if call.answered_at else None,
        "duration": round(now - call.started_at, 1),
        "spy": spy, "spied_by": spied_by,
    }


def agent_state(members: list[Member], x: AgentExtras) -> str:
    if any(m.paused for m in members):
        return AgentState.PAUSED
    if x.current_call or any(m.in_call for m in members):
        return AgentState.IN_CALL
    if x.ringing_call or any(m.status in (DEVICE_RINGING, DEVICE_RINGINUSE) for m in members):
        return AgentState.RINGING
    if all(m.status in (DEVICE_UNAVAILABLE, _DEVICE_INVALID) for m in members):
        return AgentState.UNAVAILABLE
    return AgentState.AVAILABLE


def agent_view(server: str, interface: str, members: dict[str, Member], x: AgentExtras, state: str) -> Entity:
    """``members``: queue name -> this agent's membership in it."""
    ms = list(members.values())
    paused = next((m for m in ms if m.paused), None)
    return {
        "id": f"{server}:{interface}", "server": server, "interface": interface,
        "name": next((m.name for m in ms if m.name), interface), "queues": sorted(members),
        "state": state, "paused": paused is not None,
        "paused_reason": (paused.paused_reason or None) if paused else None,
        "current_call": f"{server}:{x.current_call}" if x.current_call else None,
        "calls_handled": max(sum(m.calls_taken for m in ms), x.completed),
        "occupancy": x.occupancy,
    }


def queue_view(server: str, name: str, queue: Any, counts: list[int], now: float) -> Entity:
    oldest = min(queue.waiting.values()) if queue.waiting else None
    return {
        "id": f"{server}:{name}", "server": server, "name": name,
        "waiting": len(queue.waiting), "oldest_since": round(oldest, 3) if oldest else None,
        "longest_wait": round(now - oldest, 1) if oldest else 0.0,
        "members": len(queue.members), "available_agents": queue.available_agents,
        "answered": counts[0], "abandoned": counts[1],
    }


def refresh(kind: str, entity: Entity, now: float | None = None) -> Entity:
    """The entity with its volatile fields brought up to ``now``."""
    now = time.time() if now is None else now
    if kind == "call":
        return {**entity, "duration": round(now - entity["started_at"], 1)}
    if kind == "queue" and entity.get("oldest_since"):
        return {**entity, "longest_wait": round(now - entity["oldest_since"], 1)}
    return entity


def for_audience(kind: str, entity: Entity | None, audience: Audience) -> tuple[bool, Entity | None]:
    """(visible, entity as this audience sees it). Agents do not see campaigns or the
    audit trail, and see callers' numbers masked."""
    if audience is Audience.FULL:
        return True, entity
    if kind in ("campaign", "audit"):
        return False, None
    if kind == "call" and entity is not None:
        # the number also shows in the caller name (carriers without a name send the number
        # there) and in channel names (a Local/{number}@... trunk)
        masked = dict(entity)
        for key, mask in (("caller", mask_phone), ("caller_name", mask_text), ("channel", mask_text)):
            if entity.get(key):
                masked[key] = mask(entity[key])
        if entity.get("channels"):
            masked["channels"] = [mask_text(c) for c in entity["channels"]]
        return True, masked
    return True, entity
