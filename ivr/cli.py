"""``callcycle flows check``: validate every flow as start-up would, without starting."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ivr.config import IvrSettings
from ivr.errors import FlowsInvalid


def register(sub: Any, load: Any) -> None:
    """Add the ``flows`` command to the top-level subparsers; ``load(args)`` gives Settings."""
    flows = sub.add_parser("flows", help="IVR flows (flows/*.yaml)")
    cmds = flows.add_subparsers(dest="flows_command", required=True)
    check = cmds.add_parser("check", help="validate every flow; print file:line: reason for each problem")
    check.add_argument("--dir", help="flows directory (default: [ivr] flows_dir)")
    check.add_argument("--no-sounds", action="store_true",
                       help="do not check sound files (Asterisk runs on another host)")
    check.set_defaults(func=lambda args: _check(load(args), args))


def _check(settings: Any, args: argparse.Namespace) -> int:
    import dataclasses

    from ivr.service import load_flows

    ivr = settings.feature("ivr", IvrSettings)
    if args.dir:
        ivr = dataclasses.replace(ivr, flows_dir=args.dir)
    if args.no_sounds:
        ivr = dataclasses.replace(ivr, check_sounds=False)
    try:
        flows = load_flows(ivr)
    except FlowsInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"callcycle flows check: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    for flow in flows.flows.values():
        print(f"ok  {flow.file}  {flow.name} v{flow.version}  {len(flow.nodes)} nodes")
    return 0
