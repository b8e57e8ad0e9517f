"""The last hour of abandon rate and occupancy, for the console's chart (pure).

- occupancy: agents in a call / agents in a call, ringing or available (paused and
  unavailable agents are not staffed), over every agent on the board now;
- abandon rate: abandoned / offered over the last ``window`` seconds, where offered is
  queue callers answered or abandoned plus campaigns' live answers, and abandoned is queue
  abandons plus campaigns' abandoned calls (the figures the dialer publishes). Counters
  are cumulative; a counter that went down (an instance restarted) restarts the window.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from monitor.models import AgentState, Entity


def occupancy(agents: dict[str, Entity]) -> float | None:
    busy = staffed = 0
    for a in agents.values():
        state = a.get("state")
        if state == AgentState.IN_CALL:
            busy += 1
            staffed += 1
        elif state in (AgentState.AVAILABLE, AgentState.RINGING):
            staffed += 1
    return round(busy / staffed, 3) if staffed else None


def totals(queues: dict[str, Entity], campaigns: dict[str, Entity]) -> tuple[int, int]:
    """(abandoned, offered) summed over queues and campaigns."""
    abandoned = offered = 0
    for q in queues.values():
        abandoned += int(q.get("abandoned") or 0)
        offered += int(q.get("abandoned") or 0) + int(q.get("answered") or 0)
    for c in campaigns.values():
        abandoned += int(c.get("abandoned") or 0)
        offered += int(c.get("answered") or 0)
    return abandoned, offered


class History:
    def __init__(self, interval: float, window: float, keep: float = 3600.0) -> None:
        self.window = window
        self.points: deque[dict[str, Any]] = deque(maxlen=max(2, int(keep / interval) + 1))
        self._counters: deque[tuple[float, int, int]] = deque()

    def sample(self, now: float, entities: dict[str, dict[str, Entity]]) -> dict[str, Any]:
        abandoned, offered = totals(entities["queue"], entities["campaign"])
        if self._counters and (abandoned < self._counters[-1][1] or offered < self._counters[-1][2]):
            self._counters.clear()
        self._counters.append((now, abandoned, offered))
        while len(self._counters) > 1 and self._counters[1][0] <= now - self.window:
            self._counters.popleft()
        t0, ab0, off0 = self._counters[0]
        if t0 > now - self.window:
            ab0 = off0 = 0  # less history than the window: the rate since the counters began
        d_off = offered - off0
        point = {"t": round(now, 1), "abandon_rate": round((abandoned - ab0) / d_off, 4) if d_off > 0 else None,
                 "occupancy": occupancy(entities["agent"])}
        self.points.append(point)
        return point
