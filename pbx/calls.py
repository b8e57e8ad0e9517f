"""A call (all channels sharing a Linkedid) and its state; the table of live calls that
events keep current is :mod:`pbx.call_table`.

Pure state, no I/O. The call-level state machine is a table; an event with no entry for
the current state leaves the state as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Asterisk channel states (ChannelState header)
UP = 6
# Set on every channel we originate (pbx.actions): ties a call to its dialer attempt.
ATTEMPT_VARIABLE = "CALLCYCLE_ATTEMPT_ID"
AGENT_FIRST_VARIABLE = "CALLCYCLE_AGENT_FIRST"   # "1": the call's first channel is the agent's phone
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
