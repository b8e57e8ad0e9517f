"""The flow interpreter: a pure state machine. ``start`` enters a flow; ``feed`` takes what
the channel answered (keys, silence, caller gone); both return the new :class:`State` and
what to do on the channel next (:class:`Prompt`, :class:`NeedFacts`, :class:`Finish`, or
None when the caller is gone). No I/O, no clock: the session performs the I/O and gives
the facts (contact, time) that ``branch`` nodes look at.

Nodes that do not talk to the caller (tag, stage, branch, callback, emit, goto) run at
once, one after the other, until a node needs the channel. What the call earned (tags,
score, stage, survey score, collected digits, callbacks, events, every key and node) is
accumulated in the State and committed by the service when the flow ends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from ivr import models as m
from ivr.models import DTMF, Facts, Flow, Input, Io, Outcome

MAX_HOPS = 1000   # nodes in a row without input: only a flow the loader refused could get here


@dataclass(frozen=True)
class Record:
    """One thing that happened, in order: a node visited, keys pressed, a retry."""

    kind: str          # visit | keys | invalid | timeout | barge | refused
    node: str
    digits: str = ""


@dataclass(frozen=True)
class Intent:
    tag: str
    node: str
    digits: str


@dataclass(frozen=True)
class State:
    flow: str
    node: str
    attempt: int = 0            # failed tries at the current prompting node
    typed: str = ""             # keys pressed during a barged-in prompt, for the next node
    last_keys: str = ""         # the keys that chose the current path (for intent events)
    records: tuple[Record, ...] = ()
    tags: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    score: int = 0              # change asked by tag nodes
    intents: tuple[Intent, ...] = ()
    stages: tuple[tuple[str, str, str], ...] = ()        # (node, to, reason)
    satisfaction: int | None = None
    collected: Mapping[str, str] = field(default_factory=dict)
    callbacks: tuple[m.Callback, ...] = ()
    emits: tuple[m.Emit, ...] = ()
    outcome: str | None = None
    transfer: m.Transfer | None = None

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(r.node for r in self.records if r.kind == "visit")

    @property
    def digits(self) -> str:
        return "".join(r.digits for r in self.records if r.kind in ("keys", "barge"))

    @property
    def intent(self) -> str | None:
        return self.intents[-1].tag if self.intents else None

    @property
    def ended(self) -> bool:
        return self.outcome is not None


Step = tuple[State, Io | None]


def _note(s: State, kind: str, digits: str = "", **changes: Any) -> State:
    return dataclasses.replace(s, records=(*s.records, Record(kind, s.node, digits)), **changes)


# --- entering nodes -------------------------------------------------------------------------

def start(flow: Flow, facts: Facts | None = None) -> Step:
    """The first step of a call through ``flow``."""
    return _enter(flow, State(flow.name, flow.start), flow.start, facts)


def _enter(flow: Flow, s: State, node_id: str, facts: Facts | None) -> Step:
    for _ in range(MAX_HOPS):
        s = dataclasses.replace(s, node=node_id, attempt=0)
        s = _note(s, "visit")
        node = flow.node(node_id)
        handler = _AUTO.get(type(node))
        if handler is None:
            return _arrive(flow, s, node, facts)
        if isinstance(node, m.Branch) and facts is None:
            # Un-note the visit: resume() enters the branch again once the facts are known.
            return dataclasses.replace(s, records=s.records[:-1]), m.NeedFacts()
        s, nxt = handler(s, node, facts)
        node_id = nxt
    return dataclasses.replace(s, outcome=Outcome.FAILED), m.Finish()


def resume(flow: Flow, s: State, facts: Facts) -> Step:
    """Go on after :class:`NeedFacts`, now that the facts are known."""
    return _enter(flow, s, s.node, facts)


def _arrive(flow: Flow, s: State, node: m.AnyNode, facts: Facts | None) -> Step:
    """A node that needs the channel: what to ask it."""
    if isinstance(node, m.Hangup):
        return dataclasses.replace(s, outcome=node.outcome), m.Finish(node.prompt)
    if isinstance(node, m.Transfer):
        return dataclasses.replace(s, outcome=Outcome.TRANSFERRED, transfer=node), m.Finish(node.prompt, node)
    if isinstance(node, m.Play):
        if s.typed and node.barge_in:
            return _enter(flow, s, node.next, facts)   # the caller is already answering: skip it
        return s, m.Prompt(node.prompt, escape=DTMF if node.barge_in else "", max_digits=0)
    typed, s = s.typed, dataclasses.replace(s, typed="")
    if typed and isinstance(node, m.Menu | m.Survey):
        return _answer(flow, s, node, m.Keys(typed), facts)
    return s, _ask(node, typed)


def _ask(node: m.Menu | m.Collect | m.Survey, typed: str = "", before: tuple[str, ...] = ()) -> m.Prompt:
    files = (*before, *node.prompt)
    if isinstance(node, m.Collect):
        return m.Prompt(files, DTMF, node.max_digits, node.timeout,
                        node.timeout, node.terminator, typed)
    return m.Prompt(files, DTMF, 1, node.timeout)


# --- automatic nodes ------------------------------------------------------------------------

def _tag(s: State, n: m.Tag, _f: Facts | None) -> tuple[State, str]:
    intents = (*s.intents, Intent(n.intent, n.id, s.last_keys)) if n.intent else s.intents
    tags = tuple(dict.fromkeys((*s.tags, *n.tags)))
    removed = tuple(dict.fromkeys((*s.removed, *n.remove)))
    return dataclasses.replace(s, tags=tags, removed=removed, score=s.score + n.score, intents=intents), n.next


def _stage(s: State, n: m.Stage, _f: Facts | None) -> tuple[State, str]:
    return dataclasses.replace(s, stages=(*s.stages, (n.id, n.to, n.reason))), n.next


def _callback(s: State, n: m.Callback, _f: Facts | None) -> tuple[State, str]:
    return dataclasses.replace(s, callbacks=(*s.callbacks, n)), n.next


def _emit(s: State, n: m.Emit, _f: Facts | None) -> tuple[State, str]:
    return dataclasses.replace(s, emits=(*s.emits, n)), n.next


def _goto(s: State, n: m.Goto, _f: Facts | None) -> tuple[State, str]:
    return s, n.next


def _branch(s: State, n: m.Branch, facts: Facts | None) -> tuple[State, str]:
    assert facts is not None
    for case in n.cases:
        if matches(case.when, facts, s):
            return s, case.next
    return s, n.default


_AUTO: dict[type, Any] = {m.Tag: _tag, m.Stage: _stage, m.Callback: _callback, m.Emit: _emit,
                          m.Goto: _goto, m.Branch: _branch}


def matches(w: m.When, f: Facts, s: State) -> bool:
    """Whether every condition of ``w`` holds for the contact as this call left it so far."""
    tags = (f.tags | set(s.tags)) - set(s.removed)
    score = f.score + s.score
    t = f.local_time
    checks = [
        w.stage is None or (f.stage in w.stage),
        w.tags_any is None or bool(tags & set(w.tags_any)),
        w.tags_all is None or set(w.tags_all) <= tags,
        w.tags_none is None or not (tags & set(w.tags_none)),
        w.score_at_least is None or score >= w.score_at_least,
        w.score_below is None or score < w.score_below,
        w.satisfaction_at_least is None or (s.satisfaction or 0) >= w.satisfaction_at_least,
        w.satisfaction_below is None or (s.satisfaction is not None and s.satisfaction < w.satisfaction_below),
        w.attributes is None or all({**f.attributes, **s.collected}.get(k) == v for k, v in w.attributes.items()),
        w.business_hours is None or f.business_hours == w.business_hours,
        w.time_between is None or _between(t.time(), *w.time_between),
        w.weekdays is None or ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[t.weekday()] in w.weekdays,
    ]
    return all(checks)


def _between(now: time, start: str, end: str) -> bool:
    a, b = time.fromisoformat(start), time.fromisoformat(end)
    return a <= now < b if a < b else (now >= a or now < b)   # an interval over midnight


# --- answers from the channel ---------------------------------------------------------------

def feed(flow: Flow, s: State, got: Input, facts: Facts | None = None) -> Step:
    """What the channel answered to the last Prompt: the next step."""
    if isinstance(got, m.CallerGone):
        return dataclasses.replace(s, outcome=Outcome.ABANDONED), None
    node = flow.node(s.node)
    if isinstance(node, m.Play):
        if isinstance(got, m.Keys) and got.digits:
            s = _note(s, "barge", got.digits, typed=got.digits, last_keys=got.digits)
        return _enter(flow, s, node.next, facts)
    return _answer(flow, s, node, got, facts)


def _answer(flow: Flow, s: State, node: Any, got: Input, facts: Facts | None) -> Step:
    if not isinstance(got, m.Keys) or not got.digits:
        return _retry(flow, _note(s, "timeout"), node, node.on_timeout, facts)
    digits = got.digits
    s = _note(s, "keys", digits, last_keys=digits)
    if isinstance(node, m.Menu):
        if digits in node.options:
            return _enter(flow, s, node.options[digits], facts)
    elif isinstance(node, m.Survey):
        if digits.isdigit() and 1 <= int(digits) <= node.scale:
            return _enter(flow, dataclasses.replace(s, satisfaction=int(digits)), node.next, facts)
    elif isinstance(node, m.Collect):
        value = digits[:-1] if node.terminator and digits.endswith(node.terminator) else digits
        if node.min_digits <= len(value) <= node.max_digits and value.isdigit():
            collected = {**s.collected, node.into: value} if node.into else s.collected
            return _enter(flow, dataclasses.replace(s, collected=collected), node.next, facts)
        if not value and got.timed_out:
            return _retry(flow, _note(s, "timeout"), node, node.on_timeout, facts)
    return _retry(flow, _note(s, "invalid", digits), node, node.on_invalid, facts)


def _retry(flow: Flow, s: State, node: Any, on: m.Retry, facts: Facts | None) -> Step:
    attempt = s.attempt + 1
    if attempt >= node.attempts:
        return _enter(flow, s, on.next, facts)
    s = dataclasses.replace(s, attempt=attempt, typed="")
    return s, _ask(node, before=on.prompt)


def end(s: State, outcome: str) -> State:
    """The flow ended outside the interpreter's control (hang-up noticed late, AMI, failure)."""
    return dataclasses.replace(s, outcome=outcome)
