"""Numbered SQL migrations (``callcycle/migrations/NNNN_name.sql``), each applied once in
its own transaction and recorded with its checksum. An advisory lock makes two instances
starting together take turns; a file changed after it was applied stops start-up.

Numbering: 0001-0099 core, 0100 lifecycle, 0200 crm_sync, 0300 ivr, 0400 dialer, 0500 monitor.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from callcycle.logs import get_logger

log = get_logger(__name__)
_LOCK_KEY = 0x63616C6C  # "call": one lock for the whole schema
_NO_TIMEOUT = 24 * 3600.0   # seconds: asyncpg's timeout=None means command_timeout
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover() -> list[Migration]:
    found: dict[int, Migration] = {}
    for entry in resources.files("callcycle.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if not match:
            raise MigrationError(f"migration file {entry.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}: {found[version].name}, {match.group(2)}")
        found[version] = Migration(version, match.group(2), entry.read_text())
    return [found[v] for v in sorted(found)]


async def apply(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what is missing; return the versions applied now."""
    migrations = discover() if migrations is None else migrations
    # not the pool's command_timeout (60 s): another instance may hold the lock while it
    # migrates, and a migration may rightly take longer than that (an index on a big table)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY, timeout=_NO_TIMEOUT)
    try:
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())""")
        applied = {r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")}
        done = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version]["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name}.sql changed after it was applied; "
                        "add a new migration instead of editing an applied one")
                continue
            async with conn.transaction():
                await conn.execute(m.sql, timeout=_NO_TIMEOUT)
                await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                   m.version, m.name, m.checksum)
            log.info("migration_applied", version=m.version, migration=m.name)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
