"""The compliance gate: may this number be dialed now? Pure rules, no I/O.

The runner gathers :class:`DialFacts` inside the transaction that reserves the attempt
(so they are current at the moment of dialing) and calls :func:`check`. The verdict
carries a ``record`` of every rule checked — its version and the values it saw — stored
with the attempt ("why this dial was allowed") or with the refusal. Anything unknown
refuses: a missing time zone, an unparsable number, an unreadable list.

Rules (see ../shared/DOMAIN.md):
- number: E.164 digits only — no dial-string characters (``&`` ``/`` ``,`` letters...),
  valid for its country;
- destination: allowlisted country or prefix, not a denied prefix, not premium-rate or
  shared-cost (toll fraud);
- dnc: not on the do-not-call list, contact not flagged, contact has not withdrawn consent;
- window: inside the calling window in *every* candidate time zone of the number;
- caps: lifetime and per-day attempts (the database enforces them again, atomically);
- abandon_rest: 72 h after an abandoned call, unless an agent is guaranteed;
- machine: not the same (callee-local) day after an answering machine, unless an agent
  is guaranteed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType

GATE_VERSION = 1
RULE_VERSIONS = {"number": 1, "destination": 1, "dnc": 1, "window": 1, "caps": 1, "abandon_rest": 1,
                 "machine": 1}
ABANDON_REST = timedelta(hours=72)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}\Z")
_DIAL_CHARS = re.compile(r"[&/,;:@!|'\"\\\s()\[\]{}<>*#A-Za-z]")
_PREMIUM = {PhoneNumberType.PREMIUM_RATE: "premium_rate", PhoneNumberType.SHARED_COST: "shared_cost"}
_SEARCH_DAYS = 3


@dataclass(frozen=True)
class Rules:
    """The rule values in force (from ``[dialer]`` and the campaign)."""

    window_start: time
    window_end: time
    allowed_countries: tuple[str, ...]
    allowed_prefixes: tuple[str, ...]
    denied_prefixes: tuple[str, ...]
    max_attempts: int
    max_attempts_per_day: int


@dataclass(frozen=True)
class DialFacts:
    """What is true about the number at the moment of dialing."""

    phone: str
    now: datetime                        # aware
    time_zones: tuple[str, ...]          # candidate zones of the number (lifecycle)
    dnc_listed: bool                     # on the do-not-call list (own, imported, CRM)
    contact_dnc: bool                    # the contact is flagged do-not-call
    consent: bool                        # the contact has not withdrawn consent
    attempts: int                        # made so far in this campaign
    attempts_on: date | None             # the callee-local day attempts_today counts
    attempts_today: int
    last_abandoned_at: datetime | None
    machine_at: datetime | None
    # An agent is on the line before the callee answers: a preview lead its agent chose,
    # dialed agent first (dialer.originate.agent_first_request).
    guaranteed_agent: bool = False


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str | None = None              # the rule that refused
    retry_at: datetime | None = None     # refused for now: may be tried from then; None = never
    record: dict[str, Any] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, rule: str, retry_at: datetime | None = None) -> None:
        self.rule, self.retry_at = rule, retry_at


def check(f: DialFacts, r: Rules) -> Verdict:
    """Every rule, in order; the first that refuses decides."""
    record: dict[str, Any] = {"gate": GATE_VERSION, "checked_at": f.now.isoformat(), "rules": {}}
    steps = (_number, _destination, _dnc, _window, _caps, _abandon_rest, _machine)
    try:
        for step in steps:
            step(f, r, record["rules"])
    except _Refused as refused:
        record["refused_by"] = refused.rule
        return Verdict(False, refused.rule, refused.retry_at, record)
    return Verdict(True, None, None, record)


def _note(rules: dict[str, Any], name: str, **values: Any) -> None:
    rules[name] = {"version": RULE_VERSIONS[name], **values}


def _number(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    if not isinstance(f.phone, str) or _DIAL_CHARS.search(f.phone[1:] if f.phone.startswith("+") else f.phone):
        _note(out, "number", ok=False, problem="dial-string characters")
        raise _Refused("dial_string")
    if not _E164.match(f.phone):
        _note(out, "number", ok=False, problem="not E.164")
        raise _Refused("malformed")
    try:
        parsed = phonenumbers.parse(f.phone, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed) or \
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != f.phone:
        _note(out, "number", ok=False, problem="not a valid number")
        raise _Refused("malformed")
    _note(out, "number", ok=True)


def _destination(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    parsed = phonenumbers.parse(f.phone, None)
    country = phonenumbers.region_code_for_number(parsed)
    kind = phonenumbers.number_type(parsed)
    values = {"country": country, "type": _PREMIUM.get(kind, str(kind)), "allowed_countries": list(r.allowed_countries),
              "allowed_prefixes": list(r.allowed_prefixes), "denied_prefixes": list(r.denied_prefixes)}
    if kind in _PREMIUM:
        _note(out, "destination", ok=False, **values)
        raise _Refused("premium")
    if any(f.phone.startswith(p) for p in r.denied_prefixes):
        _note(out, "destination", ok=False, **values)
        raise _Refused("denied_prefix")
    if country not in r.allowed_countries and not any(f.phone.startswith(p) for p in r.allowed_prefixes):
        _note(out, "destination", ok=False, **values)
        raise _Refused("destination")
    _note(out, "destination", ok=True, **values)


def _dnc(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    _note(out, "dnc", listed=f.dnc_listed, contact_flag=f.contact_dnc, consent=f.consent)
    if f.dnc_listed or f.contact_dnc:
        raise _Refused("dnc")
    if not f.consent:
        raise _Refused("no_consent")


def _zones(f: DialFacts) -> list[ZoneInfo] | None:
    if not f.time_zones:
        return None
    try:
        return [ZoneInfo(z) for z in f.time_zones]
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _inside(at: datetime, zones: list[ZoneInfo], r: Rules) -> bool:
    return all(r.window_start <= at.astimezone(z).time() < r.window_end for z in zones)


def _window(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    zones = _zones(f)
    values: dict[str, Any] = {"start": r.window_start.strftime("%H:%M"), "end": r.window_end.strftime("%H:%M")}
    if zones is None:
        _note(out, "window", ok=False, zones=list(f.time_zones), problem="unknown time zone", **values)
        raise _Refused("unknown_time_zone", f.now + timedelta(hours=1))
    local = {str(z): f.now.astimezone(z).isoformat() for z in zones}
    ok = _inside(f.now, zones, r)
    _note(out, "window", ok=ok, local=local, **values)
    if not ok:
        raise _Refused("calling_window", next_window(f.now, zones, r))


def next_window(now: datetime, zones: list[ZoneInfo], r: Rules) -> datetime | None:
    """The first instant after ``now`` inside the window in every zone (None within 3 days:
    the zones' windows never overlap). Candidates are each zone's window openings; zoneinfo
    resolves them across daylight-saving changes."""
    candidates = []
    for z in zones:
        today = now.astimezone(z).date()
        for d in range(_SEARCH_DAYS + 1):
            opening = datetime.combine(today + timedelta(days=d), r.window_start, tzinfo=z)
            if opening > now:
                candidates.append(opening)
    for at in sorted(candidates):
        if _inside(at, zones, r):
            return at
    return None


def local_day(at: datetime, time_zones: tuple[str, ...]) -> date:
    """The callee's day (first candidate zone; UTC when none is known) for per-day rules."""
    try:
        return at.astimezone(ZoneInfo(time_zones[0])).date() if time_zones else at.date()
    except (ZoneInfoNotFoundError, ValueError):
        return at.date()


def _next_day(f: DialFacts, r: Rules) -> datetime | None:
    """The first callable instant of the callee's next day (its window opening)."""
    zone = ZoneInfo(f.time_zones[0])
    midnight = datetime.combine(f.now.astimezone(zone).date() + timedelta(days=1), time(0), tzinfo=zone)
    zones = [ZoneInfo(z) for z in f.time_zones]
    return midnight if _inside(midnight, zones, r) else next_window(midnight, zones, r)


def _caps(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    today = local_day(f.now, f.time_zones)
    made_today = f.attempts_today if f.attempts_on == today else 0
    _note(out, "caps", attempts=f.attempts, max_attempts=r.max_attempts, attempts_today=made_today,
          max_attempts_per_day=r.max_attempts_per_day, day=today.isoformat())
    if f.attempts >= r.max_attempts:
        raise _Refused("max_attempts")
    if made_today >= r.max_attempts_per_day:
        raise _Refused("max_attempts_per_day", _next_day(f, r))


def _abandon_rest(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    until = f.last_abandoned_at + ABANDON_REST if f.last_abandoned_at else None
    _note(out, "abandon_rest", last_abandoned_at=f.last_abandoned_at and f.last_abandoned_at.isoformat(),
          hours=ABANDON_REST.total_seconds() / 3600, guaranteed_agent=f.guaranteed_agent)
    if until is not None and f.now < until and not f.guaranteed_agent:
        raise _Refused("abandon_rest", until)


def _machine(f: DialFacts, r: Rules, out: dict[str, Any]) -> None:
    same_day = f.machine_at is not None and local_day(f.machine_at, f.time_zones) == local_day(f.now, f.time_zones)
    _note(out, "machine", machine_at=f.machine_at and f.machine_at.isoformat(), same_day=same_day,
          guaranteed_agent=f.guaranteed_agent)
    if same_day and not f.guaranteed_agent:
        raise _Refused("machine_today", _next_day(f, r))
