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
  (who knows whether a retry is safe) decides.

Responses to our actions still go through panoramisk's ``Action`` futures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from pbx.errors import AmiConnectionLost

_SEP = b"\r\n\r\n"
_RESPONSE_WITH_BODY = ("Response: Follows", "Response: Fail")


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
                if responses and self._answers_action(headers):
                    self._to_panoramisk(raw, headers)
                if name in wanted:
                    events.append(headers)
            elif raw.strip():
                headers = split_headers(raw.strip("\r\n"))
                self._to_panoramisk(raw, headers)
        if events and self.sink is not None:
            self.sink(events)

    def _answers_action(self, headers: dict[str, Any]) -> bool:
        # AsyncAGIExec spells it "CommandId"; panoramisk's Command sends "CommandID".
        key = headers.get("CommandId") or headers.get("CommandID") or headers.get("ActionID")
        return key is not None and key in self.responses

    def _to_panoramisk(self, raw: str, headers: dict[str, Any]) -> None:
        content = ""
        if raw.startswith(_RESPONSE_WITH_BODY):
            content = Message.from_line(raw.strip()).content if "\r\n" in raw else ""
        message = Message(headers, content)
        if message.id is None or (message.id not in self.responses
                                  and message.action_id not in self.responses):
            return  # a response to an action we already gave up on
        try:
            self.handle_message(message)
        except Exception as exc:
            # An exception here would escape data_received and close the connection.
            self._fail(message.id, exc)
            return
        if headers.get("Event") == "AsyncAGIExec":
            self._complete(message.id)

    def _fail(self, key: str, exc: Exception) -> None:
        action = self.responses.pop(key, None)
        if action is not None and not action.future.done():
            action.future.set_exception(exc)

    def _complete(self, key: str) -> None:
        """panoramisk 1.4 waits for a ``SubEvent: Exec`` that Asterisk 12+ no longer sends:
        the AsyncAGIExec event itself is the AGI command's result."""
        action = self.responses.pop(key, None)
        if action is None:
            return
        if action.action_id:
            self.responses.pop(action.action_id, None)
        if not action.future.done():
            action.future.set_result(list(action.responses))

    def close(self) -> None:
        """Fail every pending action (never re-send it), then close the socket."""
        pending = list({id(a): a for a in self.responses.values()}.values())
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(AmiConnectionLost(f"connection lost before {action['action']} was answered"))
                action.future.exception()  # whoever awaits it still gets it; nobody is warned twice
        if not self.closed:
            try:
                self.transport.close()
            finally:
                self.closed = True

    def abort(self) -> None:
        """Drop the socket at once (a frozen peer would never complete a graceful close)."""
        self.transport.abort()
