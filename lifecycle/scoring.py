"""Intent tags and lead scores from declarative rules, without I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from lifecycle.models import Band, CallOutcome, IntentRules, ScoringRules


def call_tags(outcome: CallOutcome, rules: IntentRules) -> list[str]:
    """Intent tags a call outcome earns: explicit intent, keypresses, disposition,
    satisfaction survey and the agent's own tags, in that order, without repeats."""
    found: list[str] = []
    if outcome.intent:
        found.append(outcome.intent)
    if outcome.digits and outcome.digits in rules.digits:
        found.append(rules.digits[outcome.digits])
    if outcome.disposition in rules.dispositions:
        found.append(rules.dispositions[outcome.disposition])
    if outcome.satisfaction is not None and outcome.satisfaction >= rules.referral_min_satisfaction:
        found.append(rules.referral_tag)
    found.extend(outcome.extra_tags)
    return list(dict.fromkeys(found))


def call_signals(outcome: CallOutcome, new_tags: Iterable[str]) -> list[str]:
    """The scoring signals of a call: tags it added, its disposition, and whether it was answered."""
    signals = [f"tag:{t}" for t in new_tags] + [f"disposition:{outcome.disposition}"]
    if outcome.talk_seconds > 0:
        signals.append("answered")
    return signals


def decay(score: int, since: datetime | None, now: datetime, rules: ScoringRules) -> tuple[int, datetime]:
    """The score after linear decay since ``since`` (never below ``rules.min``), and the
    time decay is counted from next. Only whole points are taken; the clock moves on by
    just the time they took, so frequent rescoring keeps the part of a point it has not
    taken yet instead of losing it (rescoring every 11 h at 1 point a day decayed nothing)."""
    if since is None or not rules.decay_per_day:
        return score, now
    if now <= since:
        return score, since
    days = (now - since).total_seconds() / 86400
    points = math.floor(rules.decay_per_day * days)
    if score - points <= rules.min:
        return rules.min, now
    return score - points, since + timedelta(days=points / rules.decay_per_day)


def rescore(score: int, since: datetime | None, now: datetime, signals: Iterable[str],
            rules: ScoringRules) -> tuple[int, datetime]:
    """The new score (decay, then the points of each signal, clamped to [min, max]) and the
    time decay is counted from next (see :func:`decay`)."""
    value, since_next = decay(score, since, now, rules)
    value += sum(rules.points.get(s, 0) for s in signals)
    return max(rules.min, min(rules.max, value)), since_next


def band(score: int, hot_threshold: int, nurture_threshold: int) -> Band:
    if score >= hot_threshold:
        return Band.HOT
    if score <= nurture_threshold:
        return Band.NURTURE
    return Band.NORMAL
