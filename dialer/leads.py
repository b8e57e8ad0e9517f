"""Where a campaign's leads come from: a lifecycle segment (stage, tag, score range), due
cadence tasks (of a kind), named contacts, or scheduled callbacks ({contact_id, at}).
Each source is checked, field by field, before anything is read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialer.errors import InvalidCampaign
from lifecycle.service import LifecycleService

# Hopper order: a scheduled callback first, then due cadence tasks, then by score.
PRIORITY = {"callback": 2000, "task": 1000}
_PAGE = 500
Row = tuple[int, str, str, int | None, int]   # contact_id, phone, source, task_id, priority


async def from_body(lifecycle: LifecycleService, body: dict[str, Any]
                    ) -> tuple[list[Row], list[tuple[int, datetime]]]:
    """The lead rows a request body names, and its callbacks (contact_id, when)."""
    if not any(k in body for k in ("segment", "tasks", "contact_ids", "callbacks")):
        raise InvalidCampaign("body", "one of segment, tasks, contact_ids, callbacks")
    rows: list[Row] = []
    callbacks: list[tuple[int, datetime]] = []
    if "segment" in body:
        rows += await _segment(lifecycle, body["segment"])
    if "tasks" in body:
        rows += await _tasks(lifecycle, body["tasks"])
    if "contact_ids" in body:
        rows += await _contacts(lifecycle, body["contact_ids"], "contact", 0)
    if "callbacks" in body:
        for i, cb in enumerate(body["callbacks"] if isinstance(body["callbacks"], list) else [None]):
            try:
                at = datetime.fromisoformat(cb["at"])
                contact_id = int(cb["contact_id"])
                if at.tzinfo is None:
                    raise ValueError("no UTC offset")
            except (TypeError, KeyError, ValueError):
                raise InvalidCampaign(f"callbacks[{i}]", "{contact_id, at (ISO 8601 with offset)}") from None
            rows += await _contacts(lifecycle, [contact_id], "callback", PRIORITY["callback"])
            callbacks.append((contact_id, at))
    return rows, callbacks


async def _segment(lifecycle: LifecycleService, seg: Any) -> list[Row]:
    if not isinstance(seg, dict) or set(seg) - {"stage", "tag", "min_score", "max_score"}:
        raise InvalidCampaign("segment", "{stage, tag, min_score, max_score}")
    for key in ("stage", "tag"):
        if seg.get(key) is not None and not isinstance(seg[key], str):
            raise InvalidCampaign(f"segment.{key}", "a string")
    for key in ("min_score", "max_score"):
        if seg.get(key) is not None and not _small_int(seg[key]):
            raise InvalidCampaign(f"segment.{key}", "an integer")
    rows, offset = [], 0
    while True:
        page = await lifecycle.search(stage=seg.get("stage"), tag=seg.get("tag"),
                                      min_score=seg.get("min_score"), max_score=seg.get("max_score"),
                                      limit=_PAGE, offset=offset)
        rows += [(c.id, c.phone, "segment", None, c.score) for c in page if c.phone]
        if len(page) < _PAGE:
            return rows
        offset += _PAGE


async def _tasks(lifecycle: LifecycleService, spec: Any) -> list[Row]:
    if not isinstance(spec, dict) or set(spec) - {"kind", "limit"}:
        raise InvalidCampaign("tasks", "{kind, limit}")
    limit = spec.get("limit", 1000)
    if not _small_int(limit) or limit < 1:
        raise InvalidCampaign("tasks.limit", "an integer from 1 (at most 10000 are taken)")
    if spec.get("kind") is not None and not isinstance(spec["kind"], str):
        raise InvalidCampaign("tasks.kind", "a string")
    tasks = await lifecycle.due_tasks(kind=spec.get("kind"), limit=min(limit, 10000))
    rows = []
    for task in tasks:
        contact = await lifecycle.get(task.contact_id)
        if contact.phone:
            rows.append((contact.id, contact.phone, "task", task.id, PRIORITY["task"] + contact.score))
    return rows


async def _contacts(lifecycle: LifecycleService, ids: Any, source: str, priority: int) -> list[Row]:
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InvalidCampaign("contact_ids", "a list of contact ids")
    rows = []
    for contact_id in ids:
        contact = await lifecycle.get(contact_id)
        if contact.phone:
            rows.append((contact.id, contact.phone, source, None, priority + contact.score))
    return rows


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) < value < 2**31
