"""Graph checks of a flow, without I/O: every target exists, every node is reachable from
``start``, every node can reach an exit (a ``hangup`` or ``transfer``), and no loop runs
without talking to the caller (it would spin forever)."""

from __future__ import annotations

from collections.abc import Callable

from ivr.models import PROMPTING, TERMINAL, Flow, targets

Report = Callable[[tuple[str | int, ...], str], None]


def edges(flow: Flow) -> dict[str, list[str]]:
    """Node id -> the ids it may go to (existing ones only)."""
    return {nid: [t for _path, t in targets(node) if t in flow.nodes] for nid, node in flow.nodes.items()}


def check(flow: Flow, report: Report) -> None:
    ok = True
    if flow.start not in flow.nodes:
        report(("start",), f"start node {flow.start!r} does not exist")
        ok = False
    for nid, node in flow.nodes.items():
        for path, target in targets(node):
            if target not in flow.nodes:
                report(("nodes", nid, *path), f"node {nid!r} goes to {target!r}, which does not exist")
                ok = False
    if not ok:
        return
    graph = edges(flow)
    reachable = _reach(flow.start, graph)
    for nid, node in flow.nodes.items():
        if nid not in reachable:
            report(("nodes", nid), f"node {nid!r} is unreachable from start {flow.start!r}")
    exits = {nid for nid, node in flow.nodes.items() if isinstance(node, TERMINAL)}
    reverse: dict[str, list[str]] = {nid: [] for nid in graph}
    for nid, outs in graph.items():
        for t in outs:
            reverse[t].append(nid)
    can_exit: set[str] = set()
    for e in exits:
        can_exit |= _reach(e, reverse)
    for component in _cycles(graph):
        members = [n for n in flow.nodes if n in component]  # in file order
        first = members[0]
        loop = " -> ".join([*members, first])
        if first in reachable and not component & can_exit:
            report(("nodes", first), f"loop with no exit: {loop} never reaches a hangup or transfer")
        elif not any(isinstance(flow.nodes[n], PROMPTING) for n in members):
            report(("nodes", first), f"loop without a prompt: {loop} would spin without waiting for the caller")
    for nid in sorted(reachable - can_exit - set().union(*_cycles(graph)), key=lambda n: flow.nodes[n].line):
        report(("nodes", nid), f"node {nid!r} leads only into a loop with no exit")


def _reach(start: str, graph: dict[str, list[str]]) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for t in graph[stack.pop()]:
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


def _cycles(graph: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            outs = graph[node]
            if i < len(outs):
                work.append((node, i + 1))
                t = outs[i]
                if t not in index:
                    work.append((t, 0))
                elif t in on_stack:
                    low[node] = min(low[node], index[t])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    n = stack.pop()
                    on_stack.discard(n)
                    component.add(n)
                    if n == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(component)
    return found
