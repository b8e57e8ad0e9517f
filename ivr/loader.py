"""Load flows/*.yaml: YAML with line marks -> JSON Schema (flows/schema.json) -> typed
nodes -> graph and sound checks. Every mistake becomes a :class:`FlowProblem` naming the
file, the line and the reason, and all of them are reported at once (:class:`FlowsInvalid`).

Line numbers come from PyYAML's node marks: the document is composed (not constructed),
turned into plain data by hand while remembering where each key and item starts, and map
keys stay the strings written in the file (so ``1:`` is the DTMF key "1", not an int).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ivr import graph
from ivr.errors import FlowProblem, FlowsInvalid
from ivr.models import NODE_TYPES, Flow, FlowSet, Path as FieldPath
from ivr.nodes import build_node
from ivr.sounds import SoundCatalogue

SOURCE_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = SOURCE_ROOT / "flows" / "schema.json"
Marks = dict[FieldPath, int]
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


def resolve(path: str) -> Path:
    """A relative flows path: the working directory first, then the source tree."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return SOURCE_ROOT / p


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


class _Problems:
    def __init__(self, file: str, marks: Marks) -> None:
        self.file, self.marks, self.items = file, marks, []  # type: list[FlowProblem]

    def line(self, path: FieldPath) -> int:
        """The line of ``path``, or of its closest ancestor that has one."""
        for i in range(len(path), -1, -1):
            if path[:i] in self.marks:
                return self.marks[path[:i]]
        return 1

    def add(self, path: FieldPath, reason: str) -> None:
        self.items.append(FlowProblem(self.file, self.line(path), reason))


# --- YAML with marks ------------------------------------------------------------------------

def _plain(node: yaml.Node, path: FieldPath, marks: Marks, problems: _Problems,
           scalars: yaml.constructor.SafeConstructor) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.items.append(FlowProblem(problems.file, key_node.start_mark.line + 1,
                                                  "a key must be a plain value"))
                continue
            key = str(key_node.value)
            here = (*path, key)
            if key in out:
                problems.items.append(FlowProblem(problems.file, key_node.start_mark.line + 1,
                                                  f"duplicate key {key!r} (first on line {marks[here]})"))
                continue
            marks[here] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, here, marks, problems, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            marks[(*path, i)] = item.start_mark.line + 1
            items.append(_plain(item, (*path, i), marks, problems, scalars))
        return items
    if node.tag in (_INT, _FLOAT) and ":" in str(node.value):
        return str(node.value)  # YAML 1.1 reads 10:30 as base-60 (630); in a flow it is a time
    return scalars.construct_object(node, deep=True)


def read_yaml(text: str, file: str) -> tuple[Any, Marks, list[FlowProblem]]:
    """Plain data, the line of every key/item path, and the problems found so far."""
    marks: Marks = {(): 1}
    problems = _Problems(file, marks)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, marks, [FlowProblem(file, line, f"not valid YAML: {exc.problem or exc}")]
    if root is None:
        return None, marks, [FlowProblem(file, 1, "the file is empty")]
    return _plain(root, (), marks, problems, yaml.constructor.SafeConstructor()), marks, problems.items


# --- schema ---------------------------------------------------------------------------------

def _schema_problem(error: ValidationError, problems: _Problems) -> None:
    error = best_match([error])
    path = tuple(error.absolute_path)
    if error.validator == "enum" and path[-1:] == ("type",) and len(path) == 3:
        problems.add(path, f"unknown node type {error.instance!r} (known: {', '.join(NODE_TYPES)})")
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed)
        where = f"in node {path[1]!r}" if len(path) == 2 and path[0] == "nodes" else "here"
        problems.add((*path, extra[0]) if extra else path, f"unknown field(s) {', '.join(map(repr, extra))} {where}")
    else:
        dotted = ".".join(str(p) for p in path) or "the flow"
        problems.add(path, f"{dotted}: {error.message}")


def _check_schema(data: Any, problems: _Problems) -> bool:
    before = len(problems.items)
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        _schema_problem(error, problems)
    return len(problems.items) == before


# --- one flow -------------------------------------------------------------------------------

def load_text(text: str, file: str, sounds: SoundCatalogue | None, name: str | None = None) -> Flow:
    """One flow from its YAML text; raises FlowsInvalid listing every problem."""
    data, marks, found = read_yaml(text, file)
    problems = _Problems(file, marks)
    problems.items.extend(found)
    if data is not None and not found and _check_schema(data, problems):
        flow = _build(data, text, file, problems)
        if name is not None and flow.name != name:
            problems.add(("name",), f"the flow is named {flow.name!r} but its file is {name}.yaml")
        graph.check(flow, problems.add)
        if sounds is not None:
            _check_sounds(flow, sounds, problems)
        if not problems.items:
            return flow
    raise FlowsInvalid(problems.items)


def _build(data: Mapping[str, Any], text: str, file: str, problems: _Problems) -> Flow:
    nodes = {}
    for node_id, raw in data["nodes"].items():
        node = build_node(node_id, raw, problems.line(("nodes", node_id)),
                          lambda path, reason, n=node_id: problems.add(("nodes", n, *path), reason))
        nodes[node_id] = node
    return Flow(name=data["name"], file=file, version=hashlib.sha256(text.encode()).hexdigest()[:12],
                start=data["start"], nodes=nodes, description=data.get("description", ""))


def _check_sounds(flow: Flow, sounds: SoundCatalogue, problems: _Problems) -> None:
    from ivr.models import prompts

    for node in flow.nodes.values():
        for path, files in prompts(node):
            for i, name in enumerate(files):
                if name not in sounds:
                    at = ("nodes", node.id, *path, i) if ("nodes", node.id, *path, i) in problems.marks \
                        else ("nodes", node.id, *path)
                    problems.add(at, f"unknown sound file {name!r} (not in {sounds.directory})")


# --- the flows directory --------------------------------------------------------------------

def load_dir(directory: str | Path, sounds: SoundCatalogue | None) -> FlowSet:
    """Every ``*.yaml`` flow in ``directory``; raises FlowsInvalid listing every problem."""
    root = resolve(str(directory))
    if not root.is_dir():
        raise FlowsInvalid([FlowProblem(str(root), 0, "the flows directory does not exist")])
    flows: dict[str, Flow] = {}
    problems: list[FlowProblem] = []
    for path in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        try:
            flow = load_text(path.read_text(encoding="utf-8"), str(path), sounds, name=path.stem)
        except FlowsInvalid as exc:
            problems.extend(exc.problems)
            continue
        except UnicodeDecodeError as exc:
            problems.append(FlowProblem(str(path), 1, f"not UTF-8 text: {exc.reason}"))
            continue
        flows[flow.name] = flow
    if problems:
        raise FlowsInvalid(problems)
    if not flows:
        raise FlowsInvalid([FlowProblem(str(root), 0, "no flow files (*.yaml) in the flows directory")])
    return FlowSet(flows, datetime.now(timezone.utc))
