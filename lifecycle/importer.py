"""Bulk import of leads from CSV or JSON: idempotent upsert by external id or phone.

Bad rows are reported (row number, field, reason) and skipped; good rows are written in
batches, each one transaction (rows, stage history and outbox rows together). Rows are
normalised in a worker thread while the previous batch is written, so the phone parsing
(the costly part) overlaps the database work.

Columns: external_id, name, phone, phones (";"-separated), tags (";"-separated), attributes
(a JSON object), consent (true/false), country, time_zones; any other column becomes an
attribute. Imported contacts start in the initial stage; for contacts that exist the
import fills in and adds (name, attributes, tags, phones) but never changes their stage.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from callcycle import keys
from callcycle.auth import requires
from callcycle.errors import BadRequest, json_response
from lifecycle import import_sql, phones
from lifecycle.errors import InvalidPhone
from lifecycle.openapi import validate

Progress = Callable[[int, int], Awaitable[None] | None]
_KNOWN = {"external_id", "name", "phone", "phones", "tags", "attributes", "consent", "country", "time_zones"}
_TRUE, _FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n"}


@dataclass
class Report:
    total: int = 0
    inserted: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return self.total - self.inserted - self.updated - len(self.errors)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "failed": len(self.errors), "errors": self.errors}


class RowError(ValueError):
    def __init__(self, field_: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field_, reason


def read_rows(data: bytes | str, content_type: str) -> list[dict[str, Any]]:
    """Rows of a CSV (header line first) or a JSON array of objects."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    if "json" in content_type:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}", error_id="malformed-json") from exc
        if not isinstance(rows, list):
            raise BadRequest("a JSON import is an array of objects", error_id="malformed-import")
        return rows
    return list(csv.DictReader(io.StringIO(text)))


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(";") if v.strip()]


def _consent(value: Any) -> bool | None:
    if value is None or value == "" or isinstance(value, bool):
        return value if isinstance(value, bool) else None
    if str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise RowError("consent", "must be true or false")


def _attributes(raw: dict[str, Any]) -> dict[str, Any]:
    value = raw.get("attributes") or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError("attributes", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise RowError("attributes", "must be a JSON object")
    extra = {k: v for k, v in raw.items() if k not in _KNOWN and k and v not in (None, "")}
    return {**extra, **value}


def prepare(row_no: int, raw: Any, region: str) -> tuple[Any, ...]:
    """One staging record, or RowError naming the field."""
    if not isinstance(raw, dict):
        raise RowError("row", "must be an object")
    if any(v is not None and not isinstance(v, str) for v in raw.values()):
        validate(raw, "ImportRow")  # JSON rows; CSV cells are always strings
    numbers = _split(raw.get("phone")) + _split(raw.get("phones"))
    if not numbers:
        raise RowError("phone", "a phone number is required")
    parsed = []
    for i, number in enumerate(numbers):
        try:
            parsed.append(phones.parse(number, region, f"phones[{i}]"))
        except InvalidPhone as exc:
            raise RowError(exc.detail["field"], exc.detail["reason"]) from None
    e164 = list(dict.fromkeys(p.e164 for p in parsed))
    external_id = (str(raw.get("external_id") or "").strip()) or None
    zones = _split(raw.get("time_zones")) or list(parsed[0].time_zones)
    return (row_no, external_id, (str(raw.get("name") or "").strip()) or None, e164,
            raw.get("country") or parsed[0].country, zones, _split(raw.get("tags")), json.dumps(_attributes(raw)),
            _consent(raw.get("consent")))


def prepare_batch(batch: Iterable[tuple[int, Any]], region: str, report: Report) -> list[tuple[Any, ...]]:
    good = []
    for row_no, raw in batch:
        try:
            good.append(prepare(row_no, raw, region))
        except RowError as exc:
            report.errors.append({"row": row_no, "field": exc.field, "reason": exc.reason})
        except Exception as exc:  # a schema error from validate(): still one row's problem
            detail = getattr(exc, "detail", None) or {"field": "row", "reason": str(exc)}
            report.errors.append({"row": row_no, **detail})
    return good


def _batches(rows: list[Any], size: int) -> Iterator[list[tuple[int, Any]]]:
    # Row numbers are 1-based data rows (the CSV header is not counted).
    for start in range(0, len(rows), size):
        yield [(start + i + 1, r) for i, r in enumerate(rows[start:start + size])]


async def run_import(service: Any, rows: list[Any], progress: Progress | None = None) -> Report:
    """Import ``rows`` through ``service`` (a LifecycleService); returns the report."""
    settings, report = service.settings, Report(total=len(rows))
    batches = _batches(rows, settings.import_batch_size)
    pending = _prepare_next(batches, settings.default_region, report)
    done = 0
    while pending is not None:
        batch_size, good = await pending
        pending = _prepare_next(batches, settings.default_region, report)  # overlaps the write below
        if good:
            async with service.transaction() as (conn, ctx):
                inserted, updated, errors = await import_sql.write_batch(
                    conn, good, str(ctx.rules.initial_stage), ctx.now)
            report.inserted, report.updated = report.inserted + inserted, report.updated + updated
            report.errors.extend({"row": r, "field": f, "reason": why} for r, f, why in errors)
        done += batch_size
        if progress is not None:
            maybe = progress(done, report.total)
            if maybe is not None:
                await maybe
    report.errors.sort(key=lambda e: e["row"])
    return report


def _prepare_next(batches: Iterator[list[tuple[int, Any]]], region: str, report: Report) -> Any:
    batch = next(batches, None)
    if batch is None:
        return None

    def work() -> tuple[int, list[tuple[Any, ...]]]:
        return len(batch), prepare_batch(batch, region, report)

    return asyncio.ensure_future(asyncio.to_thread(work))


@requires("supervisor", "crm")
async def import_handler(request: web.Request) -> web.StreamResponse:
    """POST /contacts/import: CSV or a JSON array. With ``Accept: application/x-ndjson``
    the response streams ``{"done", "total"}`` lines per batch, then the report."""
    rows = read_rows(await request.read(), request.content_type)
    service = request.app[keys.LIFECYCLE]
    if "application/x-ndjson" not in request.headers.get("Accept", ""):
        return json_response((await run_import(service, rows)).to_json())
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)

    async def progress(done: int, total: int) -> None:
        await resp.write(json.dumps({"done": done, "total": total}).encode() + b"\n")

    report = await run_import(service, rows, progress)
    await resp.write(json.dumps({"report": report.to_json()}).encode() + b"\n")
    await resp.write_eof()
    return resp
