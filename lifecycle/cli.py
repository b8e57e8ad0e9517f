"""``callcycle import FILE``: the bulk import from the command line, with a progress bar."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from callcycle import migrate
from callcycle.clock import SystemClock
from callcycle.db import database
from callcycle.settings import Settings
from lifecycle.config import LifecycleSettings
from lifecycle.importer import read_rows, run_import
from lifecycle.service import LifecycleService


class ProgressBar:
    """A one-line bar on stderr: ``[#####.....]  50% 50000/100000 rows 12000 rows/s``."""

    def __init__(self, width: int = 30) -> None:
        self.width, self.started = width, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        rate = done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {100 * done // max(total, 1):3d}% "
                         f"{done}/{total} rows {rate:,.0f} rows/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_import_file(settings: Settings, file: str, as_json: bool = False) -> int:
    """Import ``file``; exit status 0 when every row was imported, 1 when some were refused."""
    path = Path(file)
    rows = read_rows(path.read_bytes(), "application/json" if path.suffix == ".json" else "text/csv")

    async def run():
        async with database(settings.database.url, settings.server.data_path, min_size=1, max_size=2) as (pool, _):
            async with pool.acquire() as conn:
                await migrate.apply(conn)
            service = LifecycleService(pool, SystemClock(), settings.feature("lifecycle", LifecycleSettings))
            return await run_import(service, rows, ProgressBar())

    report = asyncio.run(run())
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"{report.total} rows: {report.inserted} inserted, {report.updated} updated, "
              f"{report.unchanged} unchanged, {len(report.errors)} refused")
        for e in report.errors[:50]:
            print(f"  row {e['row']}: {e['field']}: {e['reason']}")
        if len(report.errors) > 50:
            print(f"  ... and {len(report.errors) - 50} more (--json for all)")
    return 1 if report.errors else 0
