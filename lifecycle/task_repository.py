"""Follow-up tasks (cadence steps, callbacks): their rows in ``tasks``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from lifecycle.models import Task, TaskPlan, TaskState


def to_task(r: asyncpg.Record) -> Task:
    return Task(r["id"], r["contact_id"], r["kind"], r["not_before"], r["due_at"], r["reason"], r["rule"],
                TaskState(r["state"]), r["created_at"], r["closed_at"])


async def insert_task(conn: asyncpg.Connection, contact_id: int, p: TaskPlan, now: datetime) -> Task | None:
    """The new task, or None when the same cadence already planned it for that moment."""
    row = await conn.fetchrow(
        """INSERT INTO tasks (contact_id, kind, not_before, due_at, reason, rule, created_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (contact_id, rule, due_at) DO NOTHING RETURNING *""",
        contact_id, p.kind, p.not_before, p.due_at, p.reason, p.rule, now)
    return to_task(row) if row else None


async def has_tasks(conn: asyncpg.Connection, contact_id: int, rule: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tasks WHERE contact_id = $1 AND rule = $2)",
                               contact_id, rule)


async def get_task(conn: asyncpg.Connection, task_id: int, *, lock: bool = False) -> Task | None:
    row = await conn.fetchrow(f"SELECT * FROM tasks WHERE id = $1{' FOR UPDATE' if lock else ''}", task_id)
    return to_task(row) if row else None


async def close_tasks(conn: asyncpg.Connection, contact_id: int, rules: Sequence[str], state: TaskState,
                      now: datetime) -> list[Task]:
    rows = await conn.fetch(
        """UPDATE tasks SET state = $3, closed_at = $4
           WHERE contact_id = $1 AND rule = ANY($2) AND state = 'open' RETURNING *""",
        contact_id, list(rules), str(state), now)
    return [to_task(r) for r in rows]


async def close_task(conn: asyncpg.Connection, task_id: int, state: TaskState, now: datetime) -> Task:
    row = await conn.fetchrow("UPDATE tasks SET state = $2, closed_at = $3 WHERE id = $1 RETURNING *",
                              task_id, str(state), now)
    return to_task(row)


async def list_tasks(conn: asyncpg.Connection, *, now: datetime | None, kind: str | None, state: str | None,
                     contact_id: int | None, limit: int, lock: bool = False) -> list[Task]:
    """Tasks, earliest due first. With ``now``: open tasks workable at ``now`` (not_before <= now)."""
    rows = await conn.fetch(
        f"""SELECT * FROM tasks
            WHERE ($1::timestamptz IS NULL OR (state = 'open' AND not_before <= $1))
              AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR state = $3)
              AND ($4::bigint IS NULL OR contact_id = $4)
            ORDER BY due_at, id LIMIT $5{' FOR UPDATE SKIP LOCKED' if lock else ''}""",
        now, kind, state, contact_id, limit)
    return [to_task(r) for r in rows]


async def mark_due_emitted(conn: asyncpg.Connection, task_ids: Sequence[int]) -> None:
    await conn.execute("UPDATE tasks SET due_emitted = true WHERE id = ANY($1)", list(task_ids))


async def unemitted_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Task]:
    rows = await conn.fetch(
        """SELECT * FROM tasks WHERE state = 'open' AND NOT due_emitted AND not_before <= $1
           ORDER BY not_before, id LIMIT $2 FOR UPDATE SKIP LOCKED""", now, limit)
    return [to_task(r) for r in rows]
