"""Follow-up cadences, without I/O: which tasks a signal creates, and when.

Signals: ``undecided`` (an acquisition call left the lead undecided), ``purchase``
(renewal reminder), ``risk_signal``, ``complaint_opened`` (weekly until resolved),
``satisfied`` (survey >= 4: referral), ``claimed`` (an agent claimed a lead).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone

from lifecycle.models import Cadence, IntentRules, Stage, TaskPlan


def plan(cadences: Iterable[Cadence], signal: str, now: datetime,
         renewal_date: date | None = None) -> list[TaskPlan]:
    """The tasks every cadence listening to ``signal`` wants, relative to ``now``."""
    plans: list[TaskPlan] = []
    for c in cadences:
        if c.on != signal:
            continue
        if c.before_renewal_days is not None:
            if renewal_date is not None:
                plans.extend(_renewal(c, renewal_date, now))
            continue
        plans.extend(_touches(c, now))
    return plans


def _touches(c: Cadence, now: datetime) -> list[TaskPlan]:
    return [TaskPlan(c.kind, now + timedelta(hours=t.after_hours), now + timedelta(hours=t.within_hours),
                     c.reason, c.name) for t in c.touches]


def _renewal(c: Cadence, renewal: date, now: datetime) -> list[TaskPlan]:
    # Reminder due N days before the renewal, at the start of that day (UTC); the dialer's
    # calling-hours check then applies the callee's local time. Past dates: due now.
    due = datetime.combine(renewal - timedelta(days=c.before_renewal_days or 0), time(0), timezone.utc)
    due = max(due, now)
    return [TaskPlan(c.kind, due, due + timedelta(days=1), c.reason, c.name)]


def repeat(c: Cadence, completed_at: datetime) -> list[TaskPlan]:
    """The next round of a repeating cadence (weekly complaint calls), from completion."""
    return _touches(c, completed_at) if c.repeat else []


def ended_by(cadences: Iterable[Cadence], signal: str) -> list[str]:
    """Names of cadences whose open tasks ``signal`` cancels (``until``)."""
    return [c.name for c in cadences if c.until == signal]


def is_undecided(stage: Stage, tags: Iterable[str], rules: IntentRules) -> bool:
    """An acquisition-stage lead that has neither a high- nor a low-intent tag."""
    return stage == Stage.ACQUISITION and not (set(tags) & rules.decided_tags)


def claim_cadences(cadences: Iterable[Cadence]) -> list[Cadence]:
    return [c for c in cadences if c.release_claim]
