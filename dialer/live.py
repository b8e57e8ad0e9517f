"""What a campaign's runner shows of itself while it leads: a live snapshot in Redis (read
by the API on any instance, :meth:`dialer.service.DialerService.live`) and the campaign's
row on the supervisors' board, with pause/resume as its control."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from dialer.models import Campaign
from dialer.pacing import CampaignStats


def live_key(namespace: str, campaign_id: int) -> str:
    return f"callcycle:dialer:{namespace}:live:{campaign_id}"


class LiveView:
    def __init__(self, redis: aioredis.Redis, namespace: str, campaign_id: int, board: Any, ttl_s: float) -> None:
        self.redis, self.key, self.board, self.ttl_ms = redis, live_key(namespace, campaign_id), board, int(ttl_s * 1000)
        self.campaign_id = campaign_id

    def show(self, campaign: Campaign, pause: Callable[[bool], Awaitable[Any]]) -> None:
        if self.board is not None:
            self.board.register(str(campaign.id), name=campaign.name, pause=pause, state=str(campaign.state))

    async def publish(self, campaign: Campaign, snapshot: dict[str, Any], dialed: int, stats: CampaignStats) -> None:
        """The snapshot to Redis (it expires unless published again), its figures to the board."""
        if self.board is not None:
            st = snapshot["stats"]
            self.board.update(str(campaign.id), state=str(campaign.state), lines=snapshot["lines_in_use"],
                              dialed=dialed, answered=stats.live_answers_total, abandoned=stats.abandoned_total,
                              abandon_rate=max(st["abandon_rate_24h"], st["abandon_rate_30d"]))
        try:
            await self.redis.set(self.key, json.dumps(snapshot, default=str), px=self.ttl_ms)
        except (aioredis.RedisError, OSError):
            pass

    async def withdraw(self) -> None:
        if self.board is not None:
            self.board.unregister(str(self.campaign_id))
        try:
            await self.redis.delete(self.key)
        except (aioredis.RedisError, OSError):
            pass
