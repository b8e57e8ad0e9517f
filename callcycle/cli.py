"""``callcycle`` command line: serve, migrate (feature packages add their own commands)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Sequence

from aiohttp import web

from callcycle import logs, migrate, settings as settings_mod
from callcycle.db import database
from callcycle.settings import ApiToken, Settings, SettingsError
from lifecycle.errors import RulesError


def _load(args: argparse.Namespace) -> Settings:
    s = settings_mod.load(args.config)
    logs.configure(s.server.log_format, s.server.log_level)
    return s


def _serve(args: argparse.Namespace) -> int:
    from callcycle.app import init_app

    s = _load(args)
    if not s.api_tokens:
        # No tokens configured: make one for this run rather than open the API to anyone.
        token = secrets.token_urlsafe(24)
        s = settings_mod.with_changes(s, api_tokens=(ApiToken("local-admin", "admin", token),))
        print(f"callcycle: no CALLCYCLE_API_TOKENS set; admin token for this run: {token}", flush=True)
    if not s.database.url:
        print(f"callcycle: no DATABASE_URL; embedded PostgreSQL data in {s.server.data_path / 'pgdata'}", flush=True)
    if not s.redis.url:
        print(f"callcycle: no REDIS_URL; embedded Redis data in {s.server.data_path / 'redis'}", flush=True)
    app = init_app(s)

    async def announce(_app: web.Application) -> None:
        base = f"http://{s.server.host}:{s.server.port}"
        print(f"callcycle: API on {base}/ (OpenAPI at {base}/openapi.json), "
              f"supervisor dashboard on {base}/monitor", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=s.server.host, port=s.server.port, shutdown_timeout=s.server.shutdown_grace,
                print=None, access_log=None, handle_signals=True)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    s = _load(args)

    async def run() -> list[int]:
        async with database(s.database.url, s.server.data_path, min_size=1, max_size=2) as (pool, _url):
            async with pool.acquire() as conn:
                return await migrate.apply(conn)

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s): {', '.join(f'{v:04d}' for v in applied) or 'none needed'}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from lifecycle.cli import run_import_file

    return run_import_file(_load(args), args.file, args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcycle", description=__doc__)
    parser.add_argument("--config", help="settings file (default: $CALLCYCLE_CONFIG or ./config/callcycle.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server").set_defaults(func=_serve)
    sub.add_parser("migrate", help="apply database migrations and exit").set_defaults(func=_migrate)
    imp = sub.add_parser("import", help="bulk import leads from a CSV or JSON file")
    imp.add_argument("file", help="a .csv file (header line first) or a .json array of objects")
    imp.add_argument("--json", action="store_true", help="print the full report as JSON")
    imp.set_defaults(func=_import)
    _add_webhooks(sub)
    _add_flows(sub)
    _add_simulate(sub)
    return parser


def _add_flows(sub: argparse._SubParsersAction) -> None:
    from ivr import cli as flows_cli

    flows_cli.register(sub, _load)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from dialer import sim_cli

    sim_cli.register(sub)


def _add_webhooks(sub: argparse._SubParsersAction) -> None:
    from crm_sync import cli as webhooks_cli

    webhooks_cli.register(sub, _load)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (SettingsError, RulesError, migrate.MigrationError) as exc:
        # a mistake to fix, not a crash: the message, no traceback
        print(f"callcycle: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
