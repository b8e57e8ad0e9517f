"""Typed nodes from a node's schema-valid YAML data, with the checks a schema cannot say
well (one DTMF key per menu option, a sensible terminator, min <= max digits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ivr import models as m
from ivr.models import DTMF

Report = Callable[[tuple[str | int, ...], str], None]


def _files(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _retry(raw: dict[str, Any]) -> m.Retry:
    return m.Retry(_files(raw.get("prompt")), raw["next"])


def _prompting(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt": _files(raw["prompt"]), "on_invalid": _retry(raw["on_invalid"]),
                           "on_timeout": _retry(raw["on_timeout"])}
    for key in ("timeout", "attempts"):
        if key in raw:
            out[key] = float(raw[key]) if key == "timeout" else raw[key]
    return out


def _menu(nid: str, line: int, raw: dict[str, Any], report: Report) -> m.Menu:
    for digit in raw["options"]:
        if len(digit) != 1 or digit not in DTMF:
            report(("options", digit), f"menu option {digit!r} is not one DTMF key (0-9, *, #)")
    return m.Menu(nid, line, options=dict(raw["options"]), **_prompting(raw))


def _collect(nid: str, line: int, raw: dict[str, Any], report: Report) -> m.Collect:
    terminator = raw.get("terminator", "#")
    if terminator not in ("", "#", "*"):
        report(("terminator",), f"terminator {terminator!r} must be '#', '*' or '' (none)")
    low, high = raw.get("min_digits", 1), raw["max_digits"]
    if low > high:
        report(("min_digits",), f"min_digits {low} is more than max_digits {high}")
    return m.Collect(nid, line, max_digits=high, min_digits=low, terminator=terminator, next=raw["next"],
                     into=raw.get("into"), **_prompting(raw))


def _survey(nid: str, line: int, raw: dict[str, Any], report: Report) -> m.Survey:
    return m.Survey(nid, line, next=raw["next"], scale=raw.get("scale", 5), **_prompting(raw))


def _when(raw: dict[str, Any], report: Report, at: tuple[str | int, ...]) -> m.When:
    tuples = {k: tuple(v) for k, v in raw.items()
              if k in ("stage", "tags_any", "tags_all", "tags_none", "time_between", "weekdays")}
    plain = {k: v for k, v in raw.items() if k not in tuples}
    between = tuples.get("time_between")
    if between and between[0] == between[1]:
        report((*at, "time_between"), "time_between is an empty interval")
    return m.When(**tuples, **plain)


def _branch(nid: str, line: int, raw: dict[str, Any], report: Report) -> m.Branch:
    cases = tuple(m.Case(_when(c["when"], report, ("cases", i, "when")), c["next"])
                  for i, c in enumerate(raw["cases"]))
    return m.Branch(nid, line, cases=cases, default=raw["default"])


def _transfer(nid: str, line: int, raw: dict[str, Any], report: Report) -> m.Transfer:
    priority = raw.get("priority", "score")
    return m.Transfer(nid, line, queue=raw.get("queue"), agent=raw.get("agent"),
                      priority=None if priority == "score" else priority, prompt=_files(raw.get("prompt")),
                      ring_timeout=raw.get("ring_timeout", 30))


def _simple(cls: type, tuples: tuple[str, ...] = (), floats: tuple[str, ...] = ()) -> Callable[..., Any]:
    def build(nid: str, line: int, raw: dict[str, Any], report: Report) -> Any:
        fields = {k: v for k, v in raw.items() if k not in ("type", "description")}
        for k in tuples:
            if k in fields:
                fields[k] = _files(fields[k]) if k == "prompt" else tuple(fields[k])
        for k in floats:
            if k in fields:
                fields[k] = float(fields[k])
        return cls(nid, line, **fields)

    return build


_BUILDERS: dict[str, Callable[..., Any]] = {
    "play": _simple(m.Play, ("prompt",)),
    "menu": _menu,
    "collect": _collect,
    "survey": _survey,
    "tag": _simple(m.Tag, ("tags", "remove")),
    "stage": _simple(m.Stage),
    "branch": _branch,
    "transfer": _transfer,
    "callback": _simple(m.Callback, floats=("after_hours", "within_hours")),
    "emit": _simple(m.Emit),
    "goto": _simple(m.Goto),
    "hangup": _simple(m.Hangup, ("prompt",)),
}


def build_node(node_id: str, raw: dict[str, Any], line: int, report: Report) -> m.AnyNode:
    """The typed node (``raw`` already passed the schema); ``report(path, reason)`` for
    anything else that is wrong."""
    return _BUILDERS[raw["type"]](node_id, line, raw, report)
