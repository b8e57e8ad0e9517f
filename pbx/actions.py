"""Typed AMI actions on top of :class:`pbx.client.AmiClient`.

``originate`` is the dangerous one: it costs money and may reach a person. Every
originate carries our attempt id twice — as its ActionID and as the channel variable
``CALLCYCLE_ATTEMPT_ID`` — is sent at most once per attempt id by this process, and is
never re-sent after a reconnect. If the connection drops before its result, the caller
gets :class:`OriginateOutcomeUnknown` and can ask :meth:`Actions.live_attempts` whether
a channel of that attempt exists, rather than guessing.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pbx.calls import ATTEMPT_VARIABLE, status_variables
from pbx.client import AmiClient
from pbx.errors import (ActionFailed, AmiConnectionLost, DuplicateOriginate, OriginateOutcomeUnknown,
                        UnsafeDialString)

# Technology/resource with no dial-string separators: '&' (several destinations), ','
# (options), '/' beyond the first, spaces, quotes. Local channels may carry '@' and ';'.
_DIAL_STRING = re.compile(r"^(Local|PJSIP|SIP|IAX2|DAHDI)/[A-Za-z0-9+*#._@;-]{1,80}\Z")
_SAFE_VALUE = re.compile(r"^[^\r\n]*\Z")
_ATTEMPT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
# OriginateResponse Reason codes (AST_CONTROL_*)
ORIGINATE_REASONS = {0: "failed", 1: "hangup", 3: "no_answer", 4: "answered", 5: "busy", 8: "congestion"}
SPY_OPTIONS = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}


@dataclass(frozen=True)
class OriginateRequest:
    attempt_id: str
    channel: str
    context: str | None = None
    exten: str | None = None
    priority: int = 1
    application: str | None = None
    data: str | None = None
    caller_id: str | None = None
    timeout_s: float = 30.0
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OriginateResult:
    attempt_id: str
    success: bool
    reason: str
    channel: str
    uniqueid: str


@dataclass(frozen=True)
class AgiResult:
    code: int
    result: str
    data: str

    @property
    def digit(self) -> str | None:
        """For STREAM FILE / WAIT FOR DIGIT / GET OPTION: the key pressed, if any."""
        try:
            value = int(self.result)
        except ValueError:
            return None
        return chr(value) if value > 0 else None


def parse_agi_result(text: str, *, encoded: bool = True) -> AgiResult:
    """``200 result=49 (timeout) endpos=1234`` -> AgiResult(200, '49', 'timeout endpos=1234').
    ``text`` as AMI sends it (URL-encoded), or already decoded (a typed AsyncAGIExec's)."""
    text = (unquote(text) if encoded else text).strip()
    code_s, _, rest = text.partition(" ")
    result, data = "", rest
    if rest.startswith("result="):
        value, _, data = rest[7:].partition(" ")
        result = value
    return AgiResult(int(code_s) if code_s.isdigit() else 0, result, data.strip().strip("()"))


def check_dial_string(channel: str) -> str:
    if not _DIAL_STRING.match(channel):
        raise UnsafeDialString(f"refusing dial string {channel!r}")
    return channel


class Actions:
    """The actions callcycle sends to one Asterisk."""

    def __init__(self, client: AmiClient, remember: int = 100_000) -> None:
        self.client = client
        self._originated: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    async def originate(self, req: OriginateRequest) -> OriginateResult:
        if not _ATTEMPT_ID.match(req.attempt_id):
            raise ValueError(f"attempt id {req.attempt_id!r} must be 1-64 of [A-Za-z0-9_.:-]")
        check_dial_string(req.channel)
        if req.attempt_id in self._originated:
            raise DuplicateOriginate(f"attempt {req.attempt_id} was already originated")
        self._originated[req.attempt_id] = None
        if len(self._originated) > self._remember:
            self._originated.popitem(last=False)
        action = self._originate_action(req)
        try:
            resp = await self.client.send(action, timeout=req.timeout_s + 15)
        except AmiConnectionLost as exc:
            raise OriginateOutcomeUnknown(req.attempt_id) from exc
        final = resp[-1] if isinstance(resp, list) else resp
        reason = int(final.get("Reason", "0") or 0) if final.get("Event") == "OriginateResponse" else 0
        return OriginateResult(req.attempt_id, final.get("Response") == "Success" and reason == 4,
                               ORIGINATE_REASONS.get(reason, str(reason)), final.get("Channel", ""),
                               final.get("Uniqueid", ""))

    def _originate_action(self, req: OriginateRequest) -> dict[str, Any]:
        variables = {ATTEMPT_VARIABLE: req.attempt_id, **req.variables}
        for name, value in variables.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\Z", name) or not _SAFE_VALUE.match(str(value)):
                raise UnsafeDialString(f"refusing channel variable {name!r}")
        action: dict[str, Any] = {
            "Action": "Originate", "ActionID": f"originate-{req.attempt_id}", "Channel": req.channel,
            "Async": "true", "Timeout": str(int(req.timeout_s * 1000)),
            "Variable": [f"{k}={v}" for k, v in variables.items()],
        }
        if req.application:
            action.update(Application=req.application, Data=req.data or "")
        else:
            action.update(Context=req.context or "default", Exten=req.exten or "s", Priority=str(req.priority))
        if req.caller_id:
            action["CallerID"] = req.caller_id
        return action

    async def live_attempts(self) -> dict[str, list[str]]:
        """Attempt id -> its live channels (a Local channel has two halves)."""
        resp = await self.client.send({"Action": "Status", "Variables": ATTEMPT_VARIABLE}, as_list=True, timeout=15)
        found: dict[str, list[str]] = {}
        for msg in resp if isinstance(resp, list) else [resp]:
            attempt_id = status_variables(msg).get(ATTEMPT_VARIABLE) if msg.get("Event") == "Status" else None
            if attempt_id:
                found.setdefault(attempt_id, []).append(msg.get("Channel", ""))
        return found

    async def hangup(self, channel: str, cause: int = 16) -> None:
        await self.client.send({"Action": "Hangup", "Channel": channel, "Cause": str(cause)})

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        await self.client.send({"Action": "Redirect", "Channel": channel, "Context": context,
                                "Exten": exten, "Priority": str(priority)})

    async def setvar(self, channel: str, name: str, value: str) -> None:
        await self.client.send({"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value})

    async def getvar(self, channel: str, name: str) -> str:
        resp = await self.client.send({"Action": "Getvar", "Channel": channel, "Variable": name})
        return resp.get("Value", "")

    async def db_get(self, family: str, key: str) -> str | None:
        """An AstDB value, or None if there is none (DBGet: the "reporting" class suffices;
        without it, ActionFailed "Permission denied")."""
        try:
            resp = await self.client.send({"Action": "DBGet", "Family": family, "Key": key}, as_list=True)
        except ActionFailed as exc:
            if "not found" in exc.message.lower():   # "Database entry not found"
                return None
            raise
        for msg in resp:
            if msg.get("Event") == "DBGetResponse":
                return msg.get("Val", "")
        return None

    async def agi(self, channel: str, command: str, timeout: float = 30.0) -> AgiResult:
        """Run one AGI command on a channel parked in ``AGI(agi:async)``."""
        resp = await self.client.send({"Action": "AGI", "Channel": channel, "Command": command},
                                      timeout=timeout)
        messages = resp if isinstance(resp, list) else [resp]
        for msg in messages:
            if msg.get("Event") == "AsyncAGIExec":
                return parse_agi_result(msg.get("Result", ""))
        return AgiResult(0, "", "no result")

    async def queue_pause(self, queue: str, interface: str, paused: bool, reason: str = "") -> None:
        await self.client.send({"Action": "QueuePause", "Queue": queue, "Interface": interface,
                                "Paused": "true" if paused else "false", "Reason": reason})

    async def spy(self, target_channel: str, supervisor_endpoint: str, mode: str, attempt_id: str) -> OriginateResult:
        """Ring the supervisor's phone and, when answered, ChanSpy on ``target_channel``.
        ``d`` lets the supervisor switch mode with DTMF during the call (4 listen, 5 whisper, 6 barge)."""
        if mode not in SPY_OPTIONS:
            raise ValueError(f"spy mode must be one of {sorted(SPY_OPTIONS)}")
        if not re.match(r"^[A-Za-z0-9/@;._+-]{1,120}\Z", target_channel):
            raise UnsafeDialString(f"refusing spy target {target_channel!r}")
        return await self.originate(OriginateRequest(
            attempt_id=attempt_id, channel=check_dial_string(supervisor_endpoint), application="ChanSpy",
            data=f"{target_channel},{SPY_OPTIONS[mode]}d", timeout_s=30))
