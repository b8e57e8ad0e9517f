"""Intent tags and lead scores from declarative rules, without I/O."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

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


def decayed(score: int, since: datetime | None, now: datetime, rules: ScoringRules) -> int:
    """The score after linear decay since the last scoring event (never below ``rules.min``)."""
    if not rules.decay_per_day or since is None or now <= since:
        return score
    days = (now - since).total_seconds() / 86400
    return max(rules.min, round(score - rules.decay_per_day * days))


def rescore(score: int, since: datetime | None, now: datetime, signals: Iterable[str],
            rules: ScoringRules) -> int:
    """The new score: decay, then the points of each signal, clamped to [min, max]."""
    value = decayed(score, since, now, rules) + sum(rules.points.get(s, 0) for s in signals)
    return max(rules.min, min(rules.max, value))


def band(score: int, hot_threshold: int, nurture_threshold: int) -> Band:
    if score >= hot_threshold:
        return Band.HOT
    if score <= nurture_threshold:
        return Band.NURTURE
    return Band.NORMAL
