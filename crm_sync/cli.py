"""``callcycle webhooks ...``: replay events and list dead letters from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from callcycle.db import database
from callcycle.errors import AppError
from callcycle.settings import Settings
from crm_sync import service


def register(sub: Any, load: Any) -> None:
    """Add the ``webhooks`` command to the top-level subparsers; ``load(args)`` gives Settings."""
    hooks = sub.add_parser("webhooks", help="webhook deliveries to the CRM")
    cmds = hooks.add_subparsers(dest="webhooks_command", required=True)
    rp = cmds.add_parser("replay", help="deliver events again (same webhook-id)")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id", help="one event's id")
    which.add_argument("--from", dest="start", help="ISO-8601 start of a time range (with --to)")
    rp.add_argument("--to", dest="end", help="ISO-8601 end of the time range")
    rp.add_argument("--endpoint", type=int, help="only to this endpoint id")
    rp.set_defaults(func=lambda args: _replay(load(args), args))
    dl = cmds.add_parser("dead-letters", help="list deliveries that ran out of attempts")
    dl.add_argument("--limit", type=int, default=50)
    dl.set_defaults(func=lambda args: _dead_letters(load(args), args))


def _run(settings: Settings, work: Any) -> Any:
    async def main() -> Any:
        async with database(settings.database.url, settings.server.data_path, min_size=1, max_size=2) as (pool, _):
            return await work(pool)

    return asyncio.run(main())


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    if args.start and not args.end:
        raise SystemExit("callcycle webhooks replay: --from needs --to")
    body: dict[str, Any] = {"event_id": args.event_id} if args.event_id else {"from": args.start, "to": args.end}
    if args.endpoint is not None:
        body["endpoint_id"] = args.endpoint
    try:
        count = _run(settings, lambda pool: service.replay(pool, body))
    except AppError as exc:
        print(f"callcycle webhooks replay: {exc.error_id}: {exc}")
        return 1
    print(f"{count} deliveries queued again")
    return 0


def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    rows = _run(settings, lambda pool: service.dead_letters(pool, {"endpoint_id": None, "before": None,
                                                                    "limit": args.limit}))
    for row in rows:
        print(json.dumps(row, default=str))
    return 0
