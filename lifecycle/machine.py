"""Stage transitions as a table, without I/O: which move is allowed, which one a trigger fires.

The table is data (config/lifecycle.toml -> ``Rules.transitions``); this module only reads
it. Persistence, outbox events and cadences listen to the result in the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifecycle.models import Stage, Transition


@dataclass(frozen=True)
class Move:
    """A transition that applies: from, to, and the declared rule that allows it."""

    from_stage: Stage
    to_stage: Stage
    rule: Transition


class Refused(ValueError):
    def __init__(self, from_stage: Stage, to_stage: str, reason: str) -> None:
        super().__init__(reason)
        self.from_stage, self.to_stage, self.reason = from_stage, to_stage, reason


class StageMachine:
    """Strict: refuses any (from, to) the table does not declare."""

    def __init__(self, transitions: tuple[Transition, ...]) -> None:
        self._transitions = transitions

    def allowed_from(self, stage: Stage) -> list[Stage]:
        return sorted({t.target for t in self._transitions if stage in t.sources}, key=list(Stage).index)

    def move(self, current: Stage, to: str, trigger: str = "manual") -> Move:
        """The move from ``current`` to ``to`` for ``trigger``, or :class:`Refused` with why."""
        try:
            target = Stage(to)
        except ValueError:
            raise Refused(current, to, f"unknown stage {to!r}") from None
        if target == current:
            raise Refused(current, to, f"the contact is already in {current}")
        for t in self._transitions:
            if current in t.sources and t.target == target and trigger in t.triggers:
                return Move(current, target, t)
        allowed = ", ".join(self.allowed_from(current)) or "none"
        raise Refused(current, to, f"no transition {current} -> {target} on {trigger!r}; "
                                   f"from {current} the allowed stages are: {allowed}")

    def fire(self, current: Stage, trigger: str) -> Move | None:
        """The first declared transition out of ``current`` that ``trigger`` fires, if any."""
        for t in self._transitions:
            if current in t.sources and trigger in t.triggers:
                return Move(current, t.target, t)
        return None
