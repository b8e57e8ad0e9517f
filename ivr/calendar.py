"""The business-hours calendar of ``branch`` nodes, without I/O: weekly opening hours in
one time zone, and holidays closed all day."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY = re.compile(r"^(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<t1>\d\d:\d\d)-(?P<t2>\d\d:\d\d)$")


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    hours: tuple[tuple[int, time, time], ...]   # (weekday 0=mon, opens, closes)
    holidays: frozenset[date]

    def local(self, now: datetime) -> datetime:
        return now.astimezone(self.zone)

    def is_open(self, now: datetime) -> bool:
        t = self.local(now)
        if t.date() in self.holidays:
            return False
        return any(day == t.weekday() and opens <= t.time() < closes for day, opens, closes in self.hours)


def _hhmm(text: str, entry: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise CalendarError(f"[ivr] business_hours {entry!r}: {text!r} is not HH:MM") from None


def parse(entries: tuple[str, ...] | list[str], zone: str, holidays: tuple[str, ...] | list[str] = ()) -> Calendar:
    """``["mon-fri 09:00-18:00", "sat 10:00-14:00"]`` in ``zone``; raises CalendarError."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"[ivr] time_zone {zone!r} is not a known IANA zone") from None
    hours = []
    for entry in entries:
        m = _ENTRY.match(entry.strip().lower())
        if not m or m["d1"] not in DAYS or (m["d2"] and m["d2"] not in DAYS):
            raise CalendarError(f"[ivr] business_hours {entry!r} is not like 'mon-fri 09:00-18:00'")
        first, last = DAYS.index(m["d1"]), DAYS.index(m["d2"] or m["d1"])
        opens, closes = _hhmm(m["t1"], entry), _hhmm(m["t2"], entry)
        if closes <= opens:
            raise CalendarError(f"[ivr] business_hours {entry!r} closes before it opens")
        days = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
        hours.extend((d, opens, closes) for d in days)
    try:
        closed = frozenset(date.fromisoformat(h) for h in holidays)
    except ValueError:
        raise CalendarError(f"[ivr] holidays must be YYYY-MM-DD dates, got {list(holidays)}") from None
    return Calendar(tz, tuple(hours), closed)
