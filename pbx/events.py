"""Typed AMI events: the small frozen dataclasses raw header dicts become
(:func:`pbx.parsing.parse` builds them).

Nothing past ``pbx/`` sees a raw message or panoramisk's ``''`` for a missing header.

Asterisk prefixes the *other* channel of two-channel events (``DestChannel``,
``DestUniqueid``...); the call key is always the ``Linkedid`` shared by every channel
of a call, falling back to ``DestLinkedid`` for a DialBegin/End of an Originate that has
no calling channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# -- base classes -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CallEvent:
    """An event about one channel of a call; ``linkedid`` names the call."""

    linkedid: str
    uniqueid: str
    channel: str


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """An event about the server or a queue rather than one call."""


# -- channel life -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Newchannel(CallEvent):
    state: int
    callerid_num: str
    callerid_name: str
    context: str
    exten: str


@dataclass(frozen=True, slots=True)
class Newstate(CallEvent):
    state: int
    state_desc: str
    callerid_num: str
    callerid_name: str
    connected_num: str
    connected_name: str


@dataclass(frozen=True, slots=True)
class Hangup(CallEvent):
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class DialBegin(CallEvent):
    dest_channel: str
    dest_uniqueid: str
    dial_string: str


@dataclass(frozen=True, slots=True)
class DialEnd(CallEvent):
    dest_channel: str
    dest_uniqueid: str
    dial_status: str


@dataclass(frozen=True, slots=True)
class DTMFBegin(CallEvent):
    digit: str
    direction: str


@dataclass(frozen=True, slots=True)
class DTMFEnd(CallEvent):
    digit: str
    direction: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class BridgeEnter(CallEvent):
    bridge_id: str
    bridge_type: str


@dataclass(frozen=True, slots=True)
class BridgeLeave(CallEvent):
    bridge_id: str
    bridge_type: str


@dataclass(frozen=True, slots=True)
class VarSet(CallEvent):
    """Only our own variables (``CALLCYCLE_*``) become events; the rest are skipped."""

    variable: str
    value: str


# -- AsyncAGI --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AsyncAGIStart(CallEvent):
    env: dict[str, str] = field(hash=False)


@dataclass(frozen=True, slots=True)
class AsyncAGIExec(CallEvent):
    command_id: str
    result: str


@dataclass(frozen=True, slots=True)
class AsyncAGIEnd(CallEvent):
    pass


# -- queues and agents (the channel fields are the caller's) -----------------------------

@dataclass(frozen=True, slots=True)
class QueueCallerJoin(CallEvent):
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerLeave(CallEvent):
    queue: str
    position: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon(CallEvent):
    queue: str
    position: int
    hold_time: int


@dataclass(frozen=True, slots=True)
class AgentCalled(CallEvent):
    queue: str
    interface: str
    member_name: str
    dest_channel: str


@dataclass(frozen=True, slots=True)
class AgentConnect(CallEvent):
    queue: str
    interface: str
    member_name: str
    dest_channel: str
    hold_time: int
    ring_time: int


@dataclass(frozen=True, slots=True)
class AgentComplete(CallEvent):
    queue: str
    interface: str
    member_name: str
    hold_time: int
    talk_time: int
    reason: str


@dataclass(frozen=True, slots=True)
class AgentCompleteDetached(ServerEvent):
    """An ``AgentComplete`` that Asterisk sent after both channels of the call were gone:
    it has no channel headers, so no call to belong to, but the member did finish a call."""

    queue: str
    interface: str
    member_name: str
    hold_time: int
    talk_time: int
    reason: str


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer(CallEvent):
    queue: str
    interface: str
    member_name: str
    ring_time: int


@dataclass(frozen=True, slots=True)
class QueueMemberStatus(ServerEvent):
    queue: str
    interface: str
    member_name: str
    status: int
    paused: bool
    in_call: bool
    calls_taken: int
    paused_reason: str


@dataclass(frozen=True, slots=True)
class QueueMemberAdded(ServerEvent):
    queue: str
    interface: str
    member_name: str
    status: int
    paused: bool


@dataclass(frozen=True, slots=True)
class QueueMemberRemoved(ServerEvent):
    queue: str
    interface: str


@dataclass(frozen=True, slots=True)
class QueueMemberPause(ServerEvent):
    queue: str
    interface: str
    paused: bool
    reason: str


# -- server -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OriginateResponse(ServerEvent):
    action_id: str
    response: str
    reason: int
    channel: str
    uniqueid: str

    @property
    def success(self) -> bool:
        return self.response == "Success"


@dataclass(frozen=True, slots=True)
class FullyBooted(ServerEvent):
    status: str


@dataclass(frozen=True, slots=True)
class Shutdown(ServerEvent):
    shutdown: str
    restart: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    """Synthetic: the call's last channel is gone (or it vanished during an AMI outage)."""

    linkedid: str
    reason: str
    cause: int | None


@dataclass(frozen=True, slots=True)
class CallFound:
    """Synthetic: a resync after (re)connecting found this call live: one that began before
    we connected (its variables come from the resync's ``Status``), or one that lived through
    the outage (its state is what the resync found). For listeners only."""

    linkedid: str


Event = CallEvent | ServerEvent
