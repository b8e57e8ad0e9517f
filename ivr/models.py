"""Types of the IVR: flows and their nodes (as loaded from flows/*.yaml), what the
interpreter asks the channel to do, and what comes back. Frozen dataclasses, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

DTMF = "0123456789*#"


class Outcome(StrEnum):
    """How an IVR session ended; stored as the call's disposition."""

    COMPLETED = "completed"                   # a hangup node (its own `outcome` may rename it)
    TRANSFERRED = "transferred"               # left the IVR for a queue or an agent
    ABANDONED = "abandoned_in_ivr"            # the caller hung up mid-flow
    AMI_OUTAGE = "ended_during_ami_outage"    # the call vanished while AMI was down
    FAILED = "ivr_failed"                     # a command failed or AMI stayed down: we hung up


# --- nodes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    id: str
    line: int


@dataclass(frozen=True)
class Retry:
    """What a prompting node does on an invalid key or no key: a prompt before asking
    again, and where to go once ``attempts`` are used up."""

    prompt: tuple[str, ...]
    next: str


@dataclass(frozen=True)
class Play(Node):
    prompt: tuple[str, ...]
    next: str
    barge_in: bool = True


@dataclass(frozen=True)
class Menu(Node):
    prompt: tuple[str, ...]
    options: Mapping[str, str]
    on_invalid: Retry
    on_timeout: Retry
    timeout: float = 5.0
    attempts: int = 2


@dataclass(frozen=True)
class Collect(Node):
    prompt: tuple[str, ...]
    max_digits: int
    next: str
    on_invalid: Retry
    on_timeout: Retry
    min_digits: int = 1
    terminator: str = "#"
    timeout: float = 5.0
    attempts: int = 2
    into: str | None = None   # contact attribute the digits are stored in


@dataclass(frozen=True)
class Survey(Node):
    prompt: tuple[str, ...]
    next: str
    on_invalid: Retry
    on_timeout: Retry
    scale: int = 5
    timeout: float = 5.0
    attempts: int = 2


@dataclass(frozen=True)
class Tag(Node):
    next: str
    tags: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    score: int = 0
    intent: str | None = None


@dataclass(frozen=True)
class Stage(Node):
    to: str
    next: str
    reason: str = ""


@dataclass(frozen=True)
class When:
    """Conditions of one branch case; all that are given must hold."""

    stage: tuple[str, ...] | None = None
    tags_any: tuple[str, ...] | None = None
    tags_all: tuple[str, ...] | None = None
    tags_none: tuple[str, ...] | None = None
    score_at_least: int | None = None
    score_below: int | None = None
    satisfaction_at_least: int | None = None
    satisfaction_below: int | None = None
    attributes: Mapping[str, Any] | None = None
    business_hours: bool | None = None
    time_between: tuple[str, str] | None = None   # "HH:MM" in the calendar's zone
    weekdays: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Case:
    when: When
    next: str


@dataclass(frozen=True)
class Branch(Node):
    cases: tuple[Case, ...]
    default: str


@dataclass(frozen=True)
class Transfer(Node):
    queue: str | None = None
    agent: str | None = None
    priority: int | None = None   # None: from the contact's score (score // 10)
    prompt: tuple[str, ...] = ()
    ring_timeout: int = 30


@dataclass(frozen=True)
class Callback(Node):
    next: str
    reason: str = "the caller asked to be called back"
    kind: str = "callback"
    after_hours: float = 0.0
    within_hours: float = 24.0


@dataclass(frozen=True)
class Emit(Node):
    event: str
    next: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Goto(Node):
    next: str


@dataclass(frozen=True)
class Hangup(Node):
    prompt: tuple[str, ...] = ()
    outcome: str = Outcome.COMPLETED


AnyNode = Play | Menu | Collect | Survey | Tag | Stage | Branch | Transfer | Callback | Emit | Goto | Hangup
NODE_TYPES: dict[str, type] = {
    "play": Play, "menu": Menu, "collect": Collect, "survey": Survey, "tag": Tag, "stage": Stage,
    "branch": Branch, "transfer": Transfer, "callback": Callback, "emit": Emit, "goto": Goto, "hangup": Hangup,
}
TERMINAL = (Transfer, Hangup)
PROMPTING = (Play, Menu, Collect, Survey)   # nodes that talk to the caller (and take time)


Path = tuple[str | int, ...]


def targets(node: Node) -> list[tuple[Path, str]]:
    """(field path inside the node, node id) of every node this one may go to."""
    out: list[tuple[Path, str]] = []
    for name in ("next", "default"):
        if hasattr(node, name):
            out.append(((name,), getattr(node, name)))
    if isinstance(node, Menu):
        out.extend((("options", d), t) for d, t in node.options.items())
    if isinstance(node, Menu | Collect | Survey):
        out.extend([(("on_invalid", "next"), node.on_invalid.next), (("on_timeout", "next"), node.on_timeout.next)])
    if isinstance(node, Branch):
        out.extend((("cases", i, "next"), c.next) for i, c in enumerate(node.cases))
    return out


def prompts(node: Node) -> list[tuple[Path, tuple[str, ...]]]:
    """(field path inside the node, sound files) of every prompt of a node."""
    out: list[tuple[Path, tuple[str, ...]]] = [(("prompt",), node.prompt)] if hasattr(node, "prompt") else []
    if isinstance(node, Menu | Collect | Survey):
        out.extend([(("on_invalid", "prompt"), node.on_invalid.prompt),
                    (("on_timeout", "prompt"), node.on_timeout.prompt)])
    return out


@dataclass(frozen=True)
class Flow:
    name: str
    file: str
    version: str          # sha256 of the file's text, 12 hex digits
    start: str
    nodes: Mapping[str, AnyNode]
    description: str = ""

    def node(self, node_id: str) -> AnyNode:
        return self.nodes[node_id]


@dataclass(frozen=True)
class FlowSet:
    """Every flow loaded from the flows directory at one moment (reload swaps the set;
    a call keeps the Flow it started with)."""

    flows: Mapping[str, Flow]
    loaded_at: datetime

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)


# --- the interpreter's conversation with the channel --------------------------------------

@dataclass(frozen=True)
class Prompt:
    """Play ``files`` (stopping at a key in ``escape``), then read up to ``max_digits`` keys:
    the first within ``first_wait`` s, each next within ``inter_wait`` s, ``terminator``
    ending early. ``typed`` are keys the caller pressed ahead (they skip the prompt)."""

    files: tuple[str, ...]
    escape: str = DTMF
    max_digits: int = 1
    first_wait: float = 0.0
    inter_wait: float = 0.0
    terminator: str = ""
    typed: str = ""


@dataclass(frozen=True)
class NeedFacts:
    """A branch node needs the contact's facts before the flow can go on."""


@dataclass(frozen=True)
class Finish:
    """The flow reached a terminal node: commit, then play ``files`` and hang up, or transfer."""

    files: tuple[str, ...] = ()
    transfer: Transfer | None = None


Io = Prompt | NeedFacts | Finish


@dataclass(frozen=True)
class Keys:
    """The caller pressed ``digits`` (the terminator stripped); ``timed_out`` when the
    last wait ran out."""

    digits: str
    timed_out: bool = False


@dataclass(frozen=True)
class Silence:
    """The prompt finished (and any wait ran out) without a key."""


@dataclass(frozen=True)
class CallerGone:
    """The caller hung up (or the channel left the IVR) while a prompt was running."""


Input = Keys | Silence | CallerGone


@dataclass(frozen=True)
class Facts:
    """What branch nodes look at: the contact as loaded when the call began, plus what this
    call has changed so far, and the time and business-hours state of the calendar."""

    stage: str | None
    tags: frozenset[str]
    score: int
    attributes: Mapping[str, Any]
    local_time: datetime
    business_hours: bool
