"""Load and validate config/lifecycle.toml into :class:`~lifecycle.models.Rules`.

Every mistake raises :class:`RulesError` naming the file and the key, so a bad edit stops
start-up with a message that says where to look.
"""

from __future__ import annotations

import tomllib
import types
from pathlib import Path
from typing import Any

from lifecycle.errors import RulesError
from lifecycle.models import Cadence, IntentRules, Rules, ScoringRules, Stage, Touch, Transition

SIGNALS = frozenset({"undecided", "purchase", "risk_signal", "complaint_opened", "satisfied", "claimed"})
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def resolve(path: str) -> Path:
    """A relative rules path: the working directory first, then the source tree."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.is_file():
        return p
    return _SOURCE_ROOT / p


def load_rules(path: str | Path) -> Rules:
    """Read and validate the rules file."""
    p = resolve(str(path))
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise RulesError(f"{p}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{p}: {exc}") from exc
    return parse_rules(data, str(p))


def parse_rules(data: dict[str, Any], where: str = "lifecycle.toml") -> Rules:
    r = _Reader(where)
    stages = r.get(data, "stages", list)
    if [str(s) for s in Stage] != stages:
        raise RulesError(f"{where}: stages must be {[str(s) for s in Stage]}, got {stages}")
    return Rules(
        initial_stage=r.stage(data, "initial_stage"),
        transitions=tuple(_transition(r, t, f"transitions[{i}]")
                          for i, t in enumerate(r.get(data, "transitions", list))),
        intent=_intent(r, r.get(data, "intent", dict)),
        scoring=_scoring(r, r.get(data, "scoring", dict)),
        cadences=tuple(_cadence(r, c, f"cadences[{i}]") for i, c in enumerate(r.get(data, "cadences", list))),
    )


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, reason: str) -> RulesError:
        return RulesError(f"{self.where}: {key}: {reason}")

    def get(self, table: dict[str, Any], key: str, kind: type, *, prefix: str = "", default: Any = ...) -> Any:
        name = f"{prefix}.{key}" if prefix else key
        if key not in table:
            if default is ...:
                raise self.fail(name, "is required")
            return default
        value = table[key]
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise self.fail(name, f"must be {kind.__name__}, got {value!r}")
        return value

    def stage(self, table: dict[str, Any], key: str, prefix: str = "") -> Stage:
        value = self.get(table, key, str, prefix=prefix)
        try:
            return Stage(value)
        except ValueError:
            raise self.fail(f"{prefix}.{key}" if prefix else key, f"unknown stage {value!r}") from None

    def known_keys(self, table: dict[str, Any], known: set[str], prefix: str) -> None:
        unknown = set(table) - known
        if unknown:
            raise self.fail(prefix, f"unknown key(s) {sorted(unknown)}")


def _transition(r: _Reader, t: Any, at: str) -> Transition:
    if not isinstance(t, dict):
        raise r.fail(at, "must be a table")
    r.known_keys(t, {"name", "from", "to", "on", "why"}, at)
    sources = r.get(t, "from", list, prefix=at)
    try:
        froms = frozenset(Stage(s) for s in sources)
    except ValueError as exc:
        raise r.fail(f"{at}.from", str(exc)) from None
    triggers = frozenset(r.get(t, "on", list, prefix=at))
    for trig in triggers:
        if not (trig in ("manual", "purchase", "risk_signal") or trig.startswith("tag:")):
            raise r.fail(f"{at}.on", f"unknown trigger {trig!r}")
    return Transition(r.get(t, "name", str, prefix=at), froms, r.stage(t, "to", at), triggers,
                      r.get(t, "why", str, prefix=at, default=""))


def _intent(r: _Reader, t: dict[str, Any]) -> IntentRules:
    return IntentRules(
        digits=types.MappingProxyType(dict(r.get(t, "digits", dict, prefix="intent"))),
        dispositions=types.MappingProxyType(dict(r.get(t, "dispositions", dict, prefix="intent"))),
        decided_tags=frozenset(r.get(t, "decided_tags", list, prefix="intent")),
        risk_tags=frozenset(r.get(t, "risk_tags", list, prefix="intent")),
        referral_min_satisfaction=r.get(t, "referral_min_satisfaction", int, prefix="intent"),
        referral_tag=r.get(t, "referral_tag", str, prefix="intent"),
    )


def _scoring(r: _Reader, t: dict[str, Any]) -> ScoringRules:
    points = r.get(t, "points", dict, prefix="scoring")
    for key, value in points.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise r.fail(f"scoring.points.{key}", f"must be an integer, got {value!r}")
    lo, hi = r.get(t, "min", int, prefix="scoring", default=0), r.get(t, "max", int, prefix="scoring", default=100)
    if lo >= hi:
        raise r.fail("scoring.min", "must be below scoring.max")
    decay = r.get(t, "decay_per_day", float, prefix="scoring", default=0.0)
    if decay < 0:
        raise r.fail("scoring.decay_per_day", "must not be negative")
    return ScoringRules(types.MappingProxyType(dict(points)), decay, lo, hi)


def _cadence(r: _Reader, c: Any, at: str) -> Cadence:
    if not isinstance(c, dict):
        raise r.fail(at, "must be a table")
    r.known_keys(c, {"name", "on", "kind", "reason", "touches", "before_renewal_days", "repeat", "until",
                     "release_claim"}, at)
    on = r.get(c, "on", str, prefix=at)
    if on not in SIGNALS:
        raise r.fail(f"{at}.on", f"unknown signal {on!r} (signals: {', '.join(sorted(SIGNALS))})")
    touches = []
    for i, t in enumerate(r.get(c, "touches", list, prefix=at, default=[])):
        where = f"{at}.touches[{i}]"
        touch = Touch(r.get(t, "after_hours", float, prefix=where), r.get(t, "within_hours", float, prefix=where))
        if touch.within_hours < touch.after_hours:
            raise r.fail(f"{where}.within_hours", "must not be before after_hours")
        touches.append(touch)
    before = r.get(c, "before_renewal_days", int, prefix=at, default=None)
    if not touches and before is None:
        raise r.fail(at, "needs touches or before_renewal_days")
    return Cadence(r.get(c, "name", str, prefix=at), on, r.get(c, "kind", str, prefix=at),
                   r.get(c, "reason", str, prefix=at), tuple(touches), before,
                   r.get(c, "repeat", bool, prefix=at, default=False), r.get(c, "until", str, prefix=at, default=None),
                   r.get(c, "release_claim", bool, prefix=at, default=False))
