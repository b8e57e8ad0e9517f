"""SQL of the monitor: the audit trail of supervisor actions."""

from __future__ import annotations

from typing import Any

import asyncpg

from monitor.models import AuditEntry

_COLUMNS = "id, at, subject, role, action, target_kind, target_id, detail, outcome, error, instance"


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(row["id"], row["at"].isoformat(), row["subject"], row["role"], row["action"],
                      row["target_kind"], row["target_id"], row["detail"] or {}, row["outcome"],
                      row["error"], row["instance"])


async def record(pool: asyncpg.Pool, *, subject: str, role: str, action: str, target_kind: str,
                 target_id: str, detail: dict[str, Any], outcome: str, error: str | None,
                 instance: str) -> AuditEntry:
    row = await pool.fetchrow(
        f"""INSERT INTO monitor_audit (subject, role, action, target_kind, target_id, detail, outcome,
                                       error, instance)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_COLUMNS}""",
        subject, role, action, target_kind, target_id, detail, outcome, error, instance)
    return _entry(row)


async def recent(pool: asyncpg.Pool, *, limit: int = 100, target_kind: str | None = None,
                 target_id: str | None = None) -> list[AuditEntry]:
    rows = await pool.fetch(
        f"""SELECT {_COLUMNS} FROM monitor_audit
             WHERE ($2::text IS NULL OR target_kind = $2) AND ($3::text IS NULL OR target_id = $3)
             ORDER BY id DESC LIMIT $1""", limit, target_kind, target_id)
    return [_entry(r) for r in rows]
