"""structlog set-up: JSON in production, readable on a terminal, phone numbers masked.

Per-call context (``linkedid``, ``call_id``, ``campaign_id``, ``contact_id``) is bound
once with :func:`bind_call` through contextvars; a task created afterwards inherits it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are phone numbers (or dial strings that contain one).
PHONE_KEYS = frozenset({
    "phone", "phone_number", "number", "msisdn", "e164", "callerid", "callerid_num",
    "caller", "callee", "destination", "to", "from_number", "connectedline_num", "exten",
})
# Identifiers that are digit runs but never phone numbers: left alone.
_NOT_PHONES = frozenset({"timestamp", "linkedid", "uniqueid", "call_id", "attempt_id", "event_id",
                         "contact_id", "campaign_id", "id", "version"})
# 7 to 15 digits, optionally "+" and single spaces between them (or dashes after a "+"),
# not part of a longer token (so "2026-11-23T18:19" and a Uniqueid "1795457995.84" are
# left alone), but found after "/" or ":" (a dial string "PJSIP/4155550123@carrier", "sip:").
_PHONE_IN_TEXT = re.compile(r"(?<![\w.+-])(?:\+\d(?:[ -]?\d){6,14}|\d(?: ?\d){6,14})(?![\w.:/-])")


def mask_phone(value: str) -> str:
    """Keep the leading 3 and trailing 2 digits: ``+14155550123`` -> ``+14******23``."""
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) < 6:
        return "*" * len(value)
    keep = set(digits[:2] + digits[-2:])
    return "".join(ch if (i in keep or not ch.isdigit()) else "*" for i, ch in enumerate(value))


def mask_text(text: str) -> str:
    """Every phone number inside ``text`` masked (a dial string, a caller name, a message)."""
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)


def _masked(key: str, value: Any) -> Any:
    if key in _NOT_PHONES:
        return value
    if isinstance(value, str):
        return mask_phone(value) if key in PHONE_KEYS else mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return mask_phone(str(value)) if key in PHONE_KEYS else value
    if isinstance(value, (list, tuple)):
        return [_masked(key, v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(str(k), v) for k, v in value.items()}
    return value


def mask_phones(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask phone-like keys, and phone numbers inside any string,
    in lists and nested mappings too."""
    for key, value in event.items():
        event[key] = _masked(key, value)
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (test runners swap it), not the one at set-up."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(fmt: str = "console", level: str = "info") -> None:
    """Configure structlog and the stdlib root logger (for aiohttp/asyncpg messages)."""
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_phones,
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        raise ValueError(f"log_format must be 'json' or 'console', not {fmt!r}")
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def bind_call(**ids: Any) -> None:
    """Bind call identifiers for the current task and the tasks it creates."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
