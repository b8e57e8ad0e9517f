"""The live-call table: every call (all channels sharing a Linkedid) and its state.

Pure state, no I/O: :meth:`CallTable.apply` takes a typed event and says which call it
belongs to and whether that call just ended. The call-level state machine is a table;
an event with no entry for the current state leaves the state as it is.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pbx import events as ev

# Asterisk channel states (ChannelState header)
UP = 6
# Set on every channel we originate (pbx.actions): ties a call to its dialer attempt.
ATTEMPT_VARIABLE = "CALLCYCLE_ATTEMPT_ID"
RINGING_STATES = frozenset({4, 5})  # Ring (we dial out), Ringing (they ring us)


class CallState(StrEnum):
    NEW = "new"
    RINGING = "ringing"
    ANSWERED = "answered"
    BRIDGED = "bridged"
    ENDED = "ended"


# (state, signal) -> next state. Signals are derived from events in _signal().
TRANSITIONS: dict[tuple[CallState, str], CallState] = {
    (CallState.NEW, "ring"): CallState.RINGING,
    (CallState.NEW, "up"): CallState.ANSWERED,
    (CallState.RINGING, "up"): CallState.ANSWERED,
    (CallState.NEW, "bridge"): CallState.BRIDGED,
    (CallState.RINGING, "bridge"): CallState.BRIDGED,
    (CallState.ANSWERED, "bridge"): CallState.BRIDGED,
    (CallState.BRIDGED, "unbridge"): CallState.ANSWERED,
    (CallState.NEW, "last_hangup"): CallState.ENDED,
    (CallState.RINGING, "last_hangup"): CallState.ENDED,
    (CallState.ANSWERED, "last_hangup"): CallState.ENDED,
    (CallState.BRIDGED, "last_hangup"): CallState.ENDED,
    (CallState.NEW, "vanished"): CallState.ENDED,
    (CallState.RINGING, "vanished"): CallState.ENDED,
    (CallState.ANSWERED, "vanished"): CallState.ENDED,
    (CallState.BRIDGED, "vanished"): CallState.ENDED,
}


@dataclass(slots=True)
class Channel:
    name: str
    uniqueid: str
    state: int = 0
    callerid_num: str = ""
    callerid_name: str = ""
    bridge_id: str = ""


@dataclass(slots=True)
class Call:
    linkedid: str
    server: str
    generation: int
    state: CallState = CallState.NEW
    channels: dict[str, Channel] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    variables: dict[str, str] = field(default_factory=dict)
    digits: list[str] = field(default_factory=list)
    hangup_cause: int | None = None
    end_reason: str = ""
    handler: Any = None  # the per-call handler the router delivers to

    def signal(self, name: str) -> bool:
        nxt = TRANSITIONS.get((self.state, name))
        if nxt is None:
            return False
        self.state = nxt
        if nxt is CallState.ANSWERED and self.answered_at is None:
            self.answered_at = time.time()
        elif nxt is CallState.ENDED:
            self.ended_at = time.time()
        return True

    @property
    def caller(self) -> Channel | None:
        """The first channel of the call (the one that created it)."""
        return next(iter(self.channels.values()), None)


def status_variables(msg: dict[str, Any]) -> dict[str, str]:
    """The channel variables of a ``Status`` event asked with ``Variables:`` (one
    ``name=value`` header, or a list of them when there are several); empty values left out."""
    values = msg.get("Variable", [])
    pairs = (item.partition("=") for item in (values if isinstance(values, list) else [values]))
    return {name: value for name, _, value in pairs if name and value}


class CallTable:
    """Calls by Linkedid. Ended calls are remembered briefly so that a late event (a VarSet
    after the Hangup) does not resurrect them."""

    def __init__(self, server: str, recently_ended: int = 4096) -> None:
        self.server = server
        self.calls: dict[str, Call] = {}
        self._by_uniqueid: dict[str, str] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._ended_max = recently_ended
        self.generation = 0
        # between mark() and resync(): what happened that a snapshot taken meanwhile may not know
        self._marked = False
        self._hung: set[str] = set()        # uniqueids hung up
        self._born: set[str] = set()        # uniqueids first seen
        self._gone: set[str] = set()        # linkedids ended
        self.merged: list[Call] = []        # ended because their channels moved to another call

    def __len__(self) -> int:
        return len(self.calls)

    def get(self, linkedid: str) -> Call | None:
        return self.calls.get(linkedid)

    def by_uniqueid(self, uniqueid: str) -> Call | None:
        linkedid = self._by_uniqueid.get(uniqueid)
        return self.calls.get(linkedid) if linkedid else None

    def apply(self, event: ev.CallEvent) -> Call | None:
        """Update the table; return the call the event belongs to (None if it ended before)."""
        linkedid = event.linkedid
        call = self.calls.get(linkedid)
        if call is None:
            if linkedid in self._ended:
                return None
            call = self.calls[linkedid] = Call(linkedid, self.server, self.generation)
        cls = type(event)
        handler = _APPLY.get(cls)
        if handler is not None:
            handler(self, call, event)
        return call

    def _channel(self, call: Call, event: ev.CallEvent) -> Channel:
        chan = call.channels.get(event.uniqueid)
        if chan is None:
            before = self.calls.get(self._by_uniqueid.get(event.uniqueid, call.linkedid))
            if before is not None and before is not call:
                # Asterisk gave the channel another Linkedid (bridged with an older call, as on
                # an attended transfer): it leaves its first call, which ends with its last channel
                moved = before.channels.pop(event.uniqueid, None)
                if moved is not None:
                    moved.name = event.channel or moved.name
                    call.channels[event.uniqueid] = moved
                if not before.channels:
                    self.end(before, "linkedid_changed")
                    self.merged.append(before)
            chan = call.channels.get(event.uniqueid)
            if chan is None:
                chan = call.channels[event.uniqueid] = Channel(event.channel, event.uniqueid)
                if self._marked:
                    self._born.add(event.uniqueid)
            self._by_uniqueid[event.uniqueid] = call.linkedid
        return chan

    def end(self, call: Call, reason: str, cause: int | None = None, signal: str = "last_hangup") -> None:
        call.signal(signal)
        call.end_reason = reason
        if cause is not None:
            call.hangup_cause = cause
        self.calls.pop(call.linkedid, None)
        for uid in call.channels:
            self._by_uniqueid.pop(uid, None)
        self._ended[call.linkedid] = None
        if len(self._ended) > self._ended_max:
            self._ended.popitem(last=False)
        if self._marked:
            self._gone.add(call.linkedid)

    # -- resync after a reconnect ----------------------------------------------------------

    def begin_outage(self) -> None:
        """Calls known now belong to the old generation; after the resync snapshot, those
        missing from it ended while we were not listening."""
        self.generation += 1

    def mark(self) -> None:
        """The snapshot is being taken: from now on remember hang-ups, new channels and ended
        calls, which are newer than anything the snapshot says about them."""
        self._marked = True
        self._hung.clear()
        self._born.clear()
        self._gone.clear()

    def resync(self, snapshot: list[dict[str, str]], variables: dict[str, dict[str, str]] | None = None
               ) -> tuple[list[Call], list[Call]]:
        """Reconcile with ``CoreShowChannel`` rows and the channel variables a ``Status``
        gave (uniqueid -> name -> value). Return (vanished calls, calls new to us: not seen
        before, or seen without a variable the snapshot brings — they began before we connected).
        What was processed since :meth:`mark` wins over the snapshot: a channel that hung up
        meanwhile is not brought back, one that appeared meanwhile is kept."""
        live: dict[str, list[dict[str, str]]] = {}
        for row in snapshot:
            linkedid = row.get("Linkedid") or row.get("Uniqueid")
            if linkedid and row.get("Uniqueid", "") not in self._hung and linkedid not in self._gone:
                live.setdefault(linkedid, []).append(row)
        vanished = [c for c in self.calls.values() if c.generation < self.generation and c.linkedid not in live]
        for call in vanished:
            self.end(call, "vanished_during_ami_outage", signal="vanished")
        created = []
        for linkedid, rows in live.items():
            call = self.calls.get(linkedid)
            if call is None:
                call = self.calls[linkedid] = Call(linkedid, self.server, self.generation)
                created.append(call)
            call.generation = self.generation
            self._resync_channels(call, rows)
            learned = {k: v for row in rows for k, v in (variables or {}).get(row.get("Uniqueid", ""), {}).items()
                       if k not in call.variables}
            if learned:
                call.variables.update(learned)
                if call not in created:
                    created.append(call)
        self._marked = False
        self._hung.clear()
        self._born.clear()
        self._gone.clear()
        return vanished, created

    def _resync_channels(self, call: Call, rows: list[dict[str, str]]) -> None:
        seen = set()
        for row in rows:
            uid = row.get("Uniqueid", "")
            seen.add(uid)
            chan = call.channels.get(uid)
            if chan is None:
                chan = call.channels[uid] = Channel(row.get("Channel", ""), uid)
                self._by_uniqueid[uid] = call.linkedid
            chan.state = int(row.get("ChannelState", "0") or 0)
            chan.callerid_num = row.get("CallerIDNum", "")
            chan.bridge_id = row.get("BridgeId", "")
            if chan.state == UP:
                call.signal("up")
            if chan.bridge_id:
                call.signal("bridge")
        for uid in [u for u in call.channels if u not in seen and u not in self._born]:
            del call.channels[uid]
            self._by_uniqueid.pop(uid, None)


def _on_newchannel(table: CallTable, call: Call, e: ev.Newchannel) -> None:
    chan = table._channel(call, e)
    chan.state, chan.callerid_num, chan.callerid_name = e.state, e.callerid_num, e.callerid_name


def _on_newstate(table: CallTable, call: Call, e: ev.Newstate) -> None:
    chan = table._channel(call, e)
    chan.state = e.state
    if e.callerid_name:
        chan.callerid_name = e.callerid_name
    if e.state == UP:
        call.signal("up")
    elif e.state in RINGING_STATES:
        call.signal("ring")


def _on_hangup(table: CallTable, call: Call, e: ev.Hangup) -> None:
    call.channels.pop(e.uniqueid, None)
    table._by_uniqueid.pop(e.uniqueid, None)
    if table._marked:
        table._hung.add(e.uniqueid)
    if call.hangup_cause is None or e.uniqueid == call.linkedid:
        call.hangup_cause = e.cause
    if not call.channels:
        table.end(call, "hangup", e.cause)


def _on_bridge_enter(table: CallTable, call: Call, e: ev.BridgeEnter) -> None:
    table._channel(call, e).bridge_id = e.bridge_id
    call.signal("bridge")


def _on_bridge_leave(table: CallTable, call: Call, e: ev.BridgeLeave) -> None:
    table._channel(call, e).bridge_id = ""
    if not any(c.bridge_id for c in call.channels.values()):
        call.signal("unbridge")


def _on_dtmf_end(table: CallTable, call: Call, e: ev.DTMFEnd) -> None:
    if e.direction == "Received":
        call.digits.append(e.digit)


def _on_varset(table: CallTable, call: Call, e: ev.VarSet) -> None:
    call.variables[e.variable] = e.value


def _on_dial_begin(table: CallTable, call: Call, e: ev.DialBegin) -> None:
    if e.dest_uniqueid and e.dest_uniqueid not in call.channels:
        call.channels[e.dest_uniqueid] = Channel(e.dest_channel, e.dest_uniqueid)
        table._by_uniqueid[e.dest_uniqueid] = call.linkedid
        if table._marked:
            table._born.add(e.dest_uniqueid)


_APPLY: dict[type, Any] = {
    ev.Newchannel: _on_newchannel,
    ev.Newstate: _on_newstate,
    ev.Hangup: _on_hangup,
    ev.BridgeEnter: _on_bridge_enter,
    ev.BridgeLeave: _on_bridge_leave,
    ev.DTMFEnd: _on_dtmf_end,
    ev.VarSet: _on_varset,
    ev.DialBegin: _on_dial_begin,
}
