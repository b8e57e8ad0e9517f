"""Bulk import versus a plain COPY of the same 100,000 rows, in one run.

    .venv/bin/python bench/import.py [--rows 100000] [--database-url URL]

Without a URL an embedded PostgreSQL is started in a temporary directory. Prints rows/s of
both and the ratio (target: import >= 0.5 of COPY). The import does much more per row:
phone parsing/validation (phonenumbers), matching, stage history and one outbox row each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcycle import migrate  # noqa: E402
from callcycle.clock import SystemClock  # noqa: E402
from callcycle.db import database  # noqa: E402
from lifecycle.config import LifecycleSettings  # noqa: E402
from lifecycle.importer import run_import  # noqa: E402
from lifecycle.service import LifecycleService  # noqa: E402


def make_rows(n: int) -> list[dict[str, str]]:
    return [{"external_id": f"lead-{i}", "name": f"Lead {i}", "phone": f"+1415{2000000 + i:07d}"} for i in range(n)]


async def bench(url: str, data_dir: Path, n: int) -> None:
    rows = make_rows(n)
    async with database(url, data_dir, min_size=1, max_size=4) as (pool, _):
        async with pool.acquire() as conn:
            await migrate.apply(conn)
            await conn.execute("DROP TABLE IF EXISTS bench_copy; "
                               "CREATE TABLE bench_copy (external_id text, name text, phone text)")
            records = [(r["external_id"], r["name"], r["phone"]) for r in rows]
            t0 = time.perf_counter()
            await conn.copy_records_to_table("bench_copy", records=records)
            copy_s = time.perf_counter() - t0
            await conn.execute("DROP TABLE bench_copy")
        service = LifecycleService(pool, SystemClock(), LifecycleSettings())
        t0 = time.perf_counter()
        report = await run_import(service, rows)
        import_s = time.perf_counter() - t0
    assert report.inserted == n and not report.errors, report.to_json()
    copy_rate, import_rate = n / copy_s, n / import_s
    print(f"rows:           {n}")
    print(f"COPY (bare):    {copy_s:7.2f} s  {copy_rate:12,.0f} rows/s")
    print(f"bulk import:    {import_s:7.2f} s  {import_rate:12,.0f} rows/s")
    print(f"ratio import/COPY: {import_rate / copy_rate:.3f}  (target >= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        asyncio.run(bench(args.database_url, Path(tmp), args.rows))


if __name__ == "__main__":
    main()
