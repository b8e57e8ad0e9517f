"""The live-call table: every call by Linkedid, kept current by typed events.

Pure state, no I/O: :meth:`CallTable.apply` takes a typed event and says which call it
belongs to and whether that call just ended; :meth:`CallTable.resync` reconciles it with
the snapshot taken after a reconnect.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from pbx import events as ev
from pbx.calls import RINGING_STATES, UP, Call, Channel


@dataclass(slots=True)
class _SinceMark:
    """What happened after the resync snapshot was asked for, which it may not know yet."""

    hung: set[str] = field(default_factory=set)    # uniqueids hung up
    born: set[str] = field(default_factory=set)    # uniqueids first seen
    gone: set[str] = field(default_factory=set)    # linkedids ended


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
        self._since: _SinceMark | None = None   # between mark() and resync()
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
            chan = call.channels.get(event.uniqueid) or self._add_channel(call, event.uniqueid, event.channel)
            self._by_uniqueid[event.uniqueid] = call.linkedid
        return chan

    def _add_channel(self, call: Call, uniqueid: str, name: str) -> Channel:
        chan = call.channels[uniqueid] = Channel(name, uniqueid)
        self._by_uniqueid[uniqueid] = call.linkedid
        if self._since is not None:
            self._since.born.add(uniqueid)
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
        if self._since is not None:
            self._since.gone.add(call.linkedid)

    # -- resync after a reconnect ----------------------------------------------------------

    def begin_outage(self) -> None:
        """Calls known now belong to the old generation; after the resync snapshot, those
        missing from it ended while we were not listening."""
        self.generation += 1

    def mark(self) -> None:
        """The snapshot is being taken: from now on remember hang-ups, new channels and ended
        calls, which are newer than anything the snapshot says about them."""
        self._since = _SinceMark()

    def resync(self, snapshot: list[dict[str, str]], variables: dict[str, dict[str, str]] | None = None
               ) -> tuple[list[Call], list[Call]]:
        """Reconcile with ``CoreShowChannel`` rows and the channel variables a ``Status``
        gave (uniqueid -> name -> value). Return (vanished calls, calls to report as found:
        not seen before, or seen without a variable the snapshot brings — they began before we
        connected —, or live since before the outage — what they became meanwhile was missed).
        What was processed since :meth:`mark` wins over the snapshot: a channel that hung up
        meanwhile is not brought back, one that appeared meanwhile is kept."""
        since, self._since = self._since or _SinceMark(), None
        live: dict[str, list[dict[str, str]]] = {}
        for row in snapshot:
            linkedid = row.get("Linkedid") or row.get("Uniqueid")
            if linkedid and row.get("Uniqueid", "") not in since.hung and linkedid not in since.gone:
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
            elif call.generation < self.generation:
                created.append(call)
            call.generation = self.generation
            self._resync_channels(call, rows, since.born)
            learned = {k: v for row in rows for k, v in (variables or {}).get(row.get("Uniqueid", ""), {}).items()
                       if k not in call.variables}
            if learned:
                call.variables.update(learned)
                if call not in created:
                    created.append(call)
        return vanished, created

    def _resync_channels(self, call: Call, rows: list[dict[str, str]], born: set[str]) -> None:
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
        for uid in [u for u in call.channels if u not in seen and u not in born]:
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
    if table._since is not None:
        table._since.hung.add(e.uniqueid)
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
        table._add_channel(call, e.dest_uniqueid, e.dest_channel)


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
