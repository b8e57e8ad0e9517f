"""Our AMI wire protocol, given to panoramisk's Manager as its ``protocol_factory``.

Why not panoramisk's ``AMIProtocol``:
- it decodes each TCP read on its own with errors ignored, so a UTF-8 character split
  across two reads (a caller name such as "Zoë") is silently dropped. We keep bytes until a
  message is complete (``\\r\\n\\r\\n``) and decode whole messages;
- it builds a case-insensitive ``Message`` for every event and dispatches it through
  fnmatch patterns with ``ensure_future``: no order, no back-pressure, lost exceptions.
  We hand events to one sink, in order, as plain dicts, in one batch per read, and
  skip the events nobody uses after reading only their first line;
- on a lost connection it queues unanswered actions to be re-sent after reconnect, which
  would dial an ``Originate`` twice. We fail every pending action instead, so its caller
  (who knows whether a retry is safe) decides;
- its ``Action`` and ``Message`` are case-insensitive dicts that guess from a reply's
  wording whether more replies follow. Building them took more of the loop than parsing
  the events (an IVR caller's AGI commands are actions). Our actions (:meth:`request`)
  are written as they are and their replies stay the plain dicts events are; what
  completes an action is decided when it is sent (:class:`_Request`).

Only the Login that panoramisk's Manager sends on connecting still uses its ``Action``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from pbx.errors import AmiConnectionLost

_SEP = b"\r\n\r\n"
_IDS = itertools.count(1)


class _Request:
    """One action of ours awaiting its answer. ``until`` says what completes it:
    ``reply`` the first response; ``list`` the event list's ``...Complete`` event;
    ``originate`` (Async) the ``OriginateResponse`` event; ``agi`` the ``AsyncAGIExec``
    event. A ``Response: Error`` completes any of them. The result is the reply's headers,
    or the list of every message received when more than one was awaited (and for
    ``list``, always a list)."""

    __slots__ = ("name", "keys", "until", "future", "received")

    def __init__(self, name: str, keys: tuple[str, ...], until: str, future: asyncio.Future) -> None:
        self.name, self.keys, self.until, self.future = name, keys, until, future
        self.received: list[dict[str, Any]] = []

    def add(self, headers: dict[str, Any]) -> bool:
        """Take one message; True once the action is complete (its future then holds the result)."""
        received = self.received
        received.append(headers)
        until = self.until
        if until == "reply" or (len(received) == 1 and headers.get("Response") == "Error"):
            result: Any = received if until == "list" else headers
        elif until == "list":
            if not (headers.get("EventList") == "Complete" or headers.get("Event", "").endswith("Complete")):
                return False
            result = received
        elif headers.get("Event") == ("OriginateResponse" if until == "originate" else "AsyncAGIExec"):
            result = received
        else:
            return False
        if not self.future.done():
            self.future.set_result(result)
        return True


def _until(name: str, action: dict[str, Any], as_list: bool | None) -> str:
    if as_list:
        return "list"
    if as_list is None:
        if name == "agi":
            return "agi"
        if name == "originate" and str(action.get("Async", "")).lower() == "true":
            return "originate"
    return "reply"


def split_headers(raw: str) -> dict[str, Any]:
    """Header lines of one message as a dict; a repeated header becomes a list."""
    headers: dict[str, Any] = {}
    for line in raw.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key in headers:
            prev = headers[key]
            if isinstance(prev, list):
                prev.append(value)
            else:
                headers[key] = [prev, value]
        else:
            headers[key] = value
    return headers


class FastAMIProtocol(AMIProtocol):
    """Bytes -> complete messages -> (responses to panoramisk, events to ``sink``)."""

    # Set by pbx.client before the connection is made (class attributes are replaced on a
    # per-connection subclass, see AmiClient._protocol_factory).
    sink: Callable[[list[dict[str, Any]]], None] | None = None
    wanted: frozenset[str] = frozenset()
    on_bytes: Callable[[], None] | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._buffer = bytearray()

    def request(self, action: dict[str, Any], as_list: bool | None = None) -> _Request:
        """Write one action; its ``future`` gets the answer (see :class:`_Request`).
        ``as_list`` None: an AGI command waits for its result, an async Originate for its
        outcome, anything else for its reply. A value holding a line break is refused
        (it would smuggle headers into the action)."""
        name = str(action["Action"])
        action_id = str(action.get("ActionID") or f"cc-{next(_IDS)}")
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        keys: tuple[str, ...] = (action_id,)
        lname = name.lower()
        if lname == "agi":
            command_id = str(action.get("CommandID") or action_id)
            keys = (action_id, command_id) if command_id != action_id else keys
            lines.append(f"CommandID: {command_id}")
        for key, value in action.items():
            if key in ("Action", "ActionID", "CommandID"):
                continue
            for item in value if isinstance(value, (list, tuple)) else (value,):
                lines.append(f"{key}: {item}")
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ValueError(f"AMI header {line.partition(':')[0]} holds a line break")
        text = "\r\n".join(lines) + "\r\n\r\n"
        req = _Request(name, keys, _until(lname, action, as_list), asyncio.get_running_loop().create_future())
        for key in keys:
            self.responses[key] = req
        self.transport.write(text.encode(getattr(self, "encoding", "utf-8")))
        return req

    def forget(self, req: _Request) -> None:
        """Stop waiting for an action's answer (its caller gave up on it)."""
        for key in req.keys:
            if self.responses.get(key) is req:
                del self.responses[key]

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        end = buf.rfind(_SEP)
        if end < 0:
            return
        text = buf[:end].decode("utf-8", "replace")
        del buf[: end + 4]
        if self.version is None and text.startswith("Asterisk Call Manager/"):
            banner, _, text = text.partition("\r\n")
            self.version = banner.partition("/")[2].strip()
        if self.on_bytes is not None:
            self.on_bytes()
        self._handle_messages(text.split("\r\n\r\n"))

    def _handle_messages(self, messages: list[str]) -> None:
        events: list[dict[str, Any]] = []
        wanted = self.wanted
        responses = self.responses
        for raw in messages:
            if raw.startswith("Event: "):
                eol = raw.find("\r", 7)
                name = raw[7:eol] if eol > 0 else raw[7:]
                if name not in wanted and "ActionID: " not in raw:
                    continue  # nobody uses it and it answers no action of ours
                headers = split_headers(raw)
                if responses:
                    self._answer(headers)
                if name in wanted:
                    events.append(headers)
            elif raw.strip():
                self._answer(split_headers(raw.strip("\r\n")))
        if events and self.sink is not None:
            self.sink(events)

    def _answer(self, headers: dict[str, Any]) -> None:
        """A message that may answer an action: to its request, or to panoramisk's Login."""
        # AsyncAGIExec spells it "CommandId"; the AGI action's reply carries the ActionID.
        key = headers.get("CommandId") or headers.get("CommandID") or headers.get("ActionID")
        pending = self.responses.get(key) if key is not None else None
        if pending is None:
            return  # not ours, or an answer to an action we already gave up on
        if isinstance(pending, _Request):
            if pending.add(headers):
                self.forget(pending)
            return
        message = Message(headers)   # sent by panoramisk's Manager (its Login): no body
        try:
            self.handle_message(message)
        except Exception as exc:
            # An exception here would escape data_received and close the connection.
            action = self.responses.pop(key, None)
            if action is not None and not action.future.done():
                action.future.set_exception(exc)

    def close(self) -> None:
        """Fail every pending action (never re-send it), then close the socket."""
        pending = list({id(a): a for a in self.responses.values()}.values())
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                name = action.name if isinstance(action, _Request) else action["action"]
                action.future.set_exception(AmiConnectionLost(f"connection lost before {name} was answered"))
                action.future.exception()  # whoever awaits it still gets it; nobody is warned twice
        if not self.closed:
            try:
                self.transport.close()
            finally:
                self.closed = True

    def abort(self) -> None:
        """Drop the socket at once (a frozen peer would never complete a graceful close)."""
        self.transport.abort()
