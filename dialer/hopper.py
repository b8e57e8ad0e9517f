"""The lead hopper: ids of leads due now, best first, kept in memory ahead of need.

Ordered by the lead's priority (scheduled callbacks, then due cadence tasks, then score)
and due time. It is refilled in the background when it falls below its low mark, so the
pacer never waits for a query; it holds ids only, and whether a lead may really be dialed
is decided when it is reserved (a lead taken twice is simply skipped there).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import datetime

import asyncpg

from callcycle.logs import get_logger
from dialer import repository as repo

log = get_logger(__name__)
_RECENT_S = 30.0   # a popped lead is not fetched again until its reservation is over (or this long)


class Hopper:
    def __init__(self, pool: asyncpg.Pool, campaign_id: int, size: int, low: int, *,
                 approved_only: bool = False) -> None:
        self.pool, self.campaign_id = pool, campaign_id
        self.size, self.low, self.approved_only = size, low, approved_only
        self._ids: deque[int] = deque()
        self._recent: dict[int, float] = {}
        self._filling: asyncio.Task[None] | None = None
        self.fills = 0
        self.empty_pops = 0

    def __len__(self) -> int:
        return len(self._ids)

    def pop(self) -> int | None:
        if not self._ids:
            self.empty_pops += 1
            return None
        lead_id = self._ids.popleft()
        self._recent[lead_id] = time.monotonic()
        return lead_id

    def release(self, lead_id: int) -> None:
        """The popped lead's reservation is over (reserved, refused or skipped): a later
        refill may fetch it again when it is due (a retry a second later)."""
        self._recent.pop(lead_id, None)

    def top_up(self, now: datetime) -> None:
        """Start a background refill if below the low mark and none is running."""
        if len(self._ids) < self.low and (self._filling is None or self._filling.done()):
            self._filling = asyncio.create_task(self._fill_safely(now), name=f"hopper:{self.campaign_id}")

    async def fill(self, now: datetime) -> int:
        """Fetch up to ``size`` due leads not already held; returns how many were added."""
        cutoff = time.monotonic() - _RECENT_S
        self._recent = {k: v for k, v in self._recent.items() if v > cutoff}
        exclude = list(self._ids) + list(self._recent)
        async with self.pool.acquire() as conn:
            ids = await repo.hopper_batch(conn, self.campaign_id, now, self.size - len(self._ids), exclude,
                                          self.approved_only)
        self._ids.extend(ids)
        self.fills += 1
        return len(ids)

    async def _fill_safely(self, now: datetime) -> None:
        try:
            await self.fill(now)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("dialer_hopper_fill_failed", campaign_id=self.campaign_id, error=str(exc))

    def clear(self) -> None:
        self._ids.clear()

    async def close(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
            await asyncio.gather(self._filling, return_exceptions=True)
