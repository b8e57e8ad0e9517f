"""AMI header dicts -> typed events (:mod:`pbx.events`), the edge of ``pbx/``.

:func:`parse` checks the required headers of each known event and raises
:class:`MalformedEvent` naming the one missing; unknown events cost one dict lookup. Each
known event has a table here: its headers in the dataclass's field order, how each is
converted, and its default (or that it is required).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from pbx.events import (AgentCalled, AgentComplete, AgentCompleteDetached, AgentConnect, AgentRingNoAnswer,
                        AsyncAGIEnd, AsyncAGIExec, AsyncAGIStart, BridgeEnter, BridgeLeave, DialBegin, DialEnd,
                        DTMFBegin, DTMFEnd, Event, FullyBooted, Hangup, Newchannel, Newstate, OriginateResponse,
                        QueueCallerAbandon, QueueCallerJoin, QueueCallerLeave, QueueMemberAdded, QueueMemberPause,
                        QueueMemberRemoved, QueueMemberStatus, Shutdown, VarSet)

OUR_VARIABLE_PREFIX = "CALLCYCLE_"


class MalformedEvent(ValueError):
    def __init__(self, event: str, header: str) -> None:
        super().__init__(f"{event} event without required header {header!r}")
        self.event = event
        self.header = header


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
            if name == "AgentComplete" and "Channel" not in headers and "DestChannel" not in headers:
                # sent once both channels were gone (app_queue found no snapshot of either)
                fields: list[Any] = []
                _fields(name, headers, spec[1], fields)
                return AgentCompleteDetached(*fields)
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
