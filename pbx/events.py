"""Typed AMI events: the edge where raw header dicts become small frozen dataclasses.

Nothing past ``pbx/`` sees a raw message or panoramisk's ``''`` for a missing header:
:func:`parse` checks the required headers of each known event and raises
:class:`MalformedEvent` naming the one missing; unknown events cost one dict lookup.

Asterisk prefixes the *other* channel of two-channel events (``DestChannel``,
``DestUniqueid``...); the call key is always the ``Linkedid`` shared by every channel
of a call, falling back to ``DestLinkedid`` for a DialBegin/End of an Originate that has
no calling channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

OUR_VARIABLE_PREFIX = "CALLCYCLE_"


class MalformedEvent(ValueError):
    def __init__(self, event: str, header: str) -> None:
        super().__init__(f"{event} event without required header {header!r}")
        self.event = event
        self.header = header


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
    """Synthetic: a resync after (re)connecting found this call, or a variable of it that no
    event brought us (it began before we connected); for listeners only."""

    linkedid: str


Event = CallEvent | ServerEvent


# -- header tables ----------------------------------------------------------------------

_REQUIRED: Any = object()


def _callerid(value: str) -> str:
    return "" if value in ("<unknown>", "<null>") else value


def _yes(value: str) -> bool:
    return value.lower() in ("1", "yes", "true", "on")


def _agi_env(value: str) -> dict[str, str]:
    env = {}
    for line in unquote(value).splitlines():
        key, sep, val = line.partition(": ")
        if sep:
            env[key] = val
    return env


# (header, converter or None, default or _REQUIRED), in the dataclass's field order
# after the CallEvent base (linkedid, uniqueid, channel), which every CallEvent shares.
_CALL_SPECS: dict[str, tuple[type, tuple[tuple[str, Callable[[str], Any] | None, Any], ...]]] = {
    "Newchannel": (Newchannel, (("ChannelState", int, _REQUIRED), ("CallerIDNum", _callerid, ""),
                                ("CallerIDName", _callerid, ""), ("Context", None, ""), ("Exten", None, ""))),
    "Newstate": (Newstate, (("ChannelState", int, _REQUIRED), ("ChannelStateDesc", None, ""),
                            ("CallerIDNum", _callerid, ""), ("CallerIDName", _callerid, ""),
                            ("ConnectedLineNum", _callerid, ""), ("ConnectedLineName", _callerid, ""))),
    "Hangup": (Hangup, (("Cause", int, _REQUIRED), ("Cause-txt", None, ""))),
    "DialBegin": (DialBegin, (("DestChannel", None, _REQUIRED), ("DestUniqueid", None, _REQUIRED),
                              ("DialString", None, ""))),
    "DialEnd": (DialEnd, (("DestChannel", None, _REQUIRED), ("DestUniqueid", None, _REQUIRED),
                          ("DialStatus", None, _REQUIRED))),
    "DTMFBegin": (DTMFBegin, (("Digit", None, _REQUIRED), ("Direction", None, _REQUIRED))),
    "DTMFEnd": (DTMFEnd, (("Digit", None, _REQUIRED), ("Direction", None, _REQUIRED), ("DurationMs", int, 0))),
    "BridgeEnter": (BridgeEnter, (("BridgeUniqueid", None, _REQUIRED), ("BridgeType", None, ""))),
    "BridgeLeave": (BridgeLeave, (("BridgeUniqueid", None, _REQUIRED), ("BridgeType", None, ""))),
    "VarSet": (VarSet, (("Variable", None, _REQUIRED), ("Value", None, ""))),
    "AsyncAGIStart": (AsyncAGIStart, (("Env", _agi_env, _REQUIRED),)),
    "AsyncAGIExec": (AsyncAGIExec, (("CommandId", None, _REQUIRED), ("Result", unquote, _REQUIRED))),
    "AsyncAGIEnd": (AsyncAGIEnd, ()),
    "QueueCallerJoin": (QueueCallerJoin, (("Queue", None, _REQUIRED), ("Position", int, 0), ("Count", int, 0))),
    "QueueCallerLeave": (QueueCallerLeave, (("Queue", None, _REQUIRED), ("Position", int, 0), ("Count", int, 0))),
    "QueueCallerAbandon": (QueueCallerAbandon, (("Queue", None, _REQUIRED), ("Position", int, 0),
                                                ("HoldTime", int, 0))),
    "AgentCalled": (AgentCalled, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                  ("MemberName", None, ""), ("DestChannel", None, ""))),
    "AgentConnect": (AgentConnect, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                    ("MemberName", None, ""), ("DestChannel", None, ""), ("HoldTime", int, 0),
                                    ("RingTime", int, 0))),
    "AgentComplete": (AgentComplete, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                      ("MemberName", None, ""), ("HoldTime", int, 0), ("TalkTime", int, 0),
                                      ("Reason", None, ""))),
    "AgentRingNoAnswer": (AgentRingNoAnswer, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                              ("MemberName", None, ""), ("RingTime", int, 0))),
}

_SERVER_SPECS: dict[str, tuple[type, tuple[tuple[str, Callable[[str], Any] | None, Any], ...]]] = {
    "QueueMemberStatus": (QueueMemberStatus, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                              ("MemberName", None, ""), ("Status", int, 0), ("Paused", _yes, False),
                                              ("InCall", _yes, False), ("CallsTaken", int, 0),
                                              ("PausedReason", None, ""))),
    "QueueMemberAdded": (QueueMemberAdded, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                            ("MemberName", None, ""), ("Status", int, 0), ("Paused", _yes, False))),
    "QueueMemberRemoved": (QueueMemberRemoved, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED))),
    "QueueMemberPause": (QueueMemberPause, (("Queue", None, _REQUIRED), ("Interface", None, _REQUIRED),
                                            ("Paused", _yes, False), ("PausedReason", None, ""))),
    "OriginateResponse": (OriginateResponse, (("ActionID", None, _REQUIRED), ("Response", None, _REQUIRED),
                                              ("Reason", int, 0), ("Channel", None, ""), ("Uniqueid", None, ""))),
    "FullyBooted": (FullyBooted, (("Status", None, ""),)),
    "Shutdown": (Shutdown, (("Shutdown", None, ""), ("Restart", _yes, False))),
}

KNOWN_EVENTS = frozenset(_CALL_SPECS) | frozenset(_SERVER_SPECS)


def _fields(name: str, headers: dict[str, str], spec: tuple, into: list[Any]) -> None:
    for header, convert, default in spec:
        value = headers.get(header, _REQUIRED)
        if value is _REQUIRED:
            if default is _REQUIRED:
                raise MalformedEvent(name, header)
            into.append(default)
        else:
            try:
                into.append(convert(value) if convert is not None else value)
            except ValueError as exc:
                raise MalformedEvent(name, header) from exc


def parse(headers: dict[str, str]) -> Event | None:
    """A typed event, or None for an event we do not use (including VarSet of variables
    that are not ours). Raises MalformedEvent when a required header is missing."""
    name = headers.get("Event")
    spec = _CALL_SPECS.get(name)  # type: ignore[arg-type]
    if spec is not None:
        if name == "VarSet" and not headers.get("Variable", "").startswith(OUR_VARIABLE_PREFIX):
            return None
        linkedid = headers.get("Linkedid") or headers.get("DestLinkedid")
        if not linkedid:
            raise MalformedEvent(name, "Linkedid")  # type: ignore[arg-type]
        args: list[Any] = [linkedid, headers.get("Uniqueid") or headers.get("DestUniqueid", ""),
                           headers.get("Channel") or headers.get("DestChannel", "")]
        _fields(name, headers, spec[1], args)  # type: ignore[arg-type]
        return spec[0](*args)
    spec = _SERVER_SPECS.get(name)  # type: ignore[arg-type]
    if spec is not None:
        args = []
        _fields(name, headers, spec[1], args)  # type: ignore[arg-type]
        return spec[0](*args)
    return None
