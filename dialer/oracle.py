"""The oracle: an unattainable bound for the benchmark, not a policy for real campaigns.

It knows the future of every customer (whether and after how long they will answer) and
of every agent (when the current call and wrap-up end).  For each agent about to be free
it dials the next customer who will answer, timed so that the answer lands exactly when
the agent is free: no unanswered line, no abandoned call, agents idle only while the first
calls of the shift ring.  The simulator calls :meth:`plan`; ``decide`` dials nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from dialer.pacing import Decision, PacingInputs


class OraclePolicy:
    name = "oracle"
    needs_detail = False

    def __init__(self) -> None:
        self.cursor = 0

    def decide(self, inputs: PacingInputs) -> Decision:
        return Decision(0, {"mode": self.name, "lines_to_dial": 0, "note": "dials through plan()"})

    def plan(self, free_at: float, now: float, answers_at: Callable[[int, float], bool],
             ring_of: Callable[[int], float]) -> tuple[float, int]:
        """(dial time, customer index) so that customer answers when an agent is free at ``free_at``.

        Customers that would not answer are skipped (never dialed); ``answers_at(i, t)``
        says whether customer ``i`` answers a call placed at ``t``.
        """
        i = self.cursor
        while True:
            ring = ring_of(i)
            t = max(now, free_at - ring)
            if answers_at(i, t):
                self.cursor = i + 1
                return t, i
            i += 1
