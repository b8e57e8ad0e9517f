"""Errors of the IVR feature, each with its ``error_id`` slug."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callcycle.errors import AppError, NotFound
from callcycle.settings import SettingsError


@dataclass(frozen=True)
class FlowProblem:
    """One mistake in a flow file: where it is and why it is wrong."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class FlowsInvalid(AppError, SettingsError):
    """One or more flow files are wrong; ``str()`` lists every problem as file:line: reason.
    A SettingsError too: `callcycle serve` prints it as a configuration error and exits 2."""

    status = 422
    error_id = "invalid-flows"

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.reason))
        super().__init__([{"file": p.file, "line": p.line, "reason": p.reason} for p in self.problems])

    def __str__(self) -> str:
        return "invalid flow(s):\n" + "\n".join(f"  {p}" for p in self.problems)


class NoSuchFlow(NotFound):
    error_id = "no-such-flow"

    def __init__(self, name: Any) -> None:
        super().__init__({"flow": name})
