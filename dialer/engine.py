"""One per server instance: finds campaigns that need a leader, competes for their leases,
and runs a :class:`CampaignRunner` for each lease it wins. Every instance runs one; the
lease makes sure exactly one of them paces a campaign at a time.

    engine = Engine(deps, redis, service)
    engine.start()
    ...
    await engine.stop()    # stop dialing, let calls end within the grace, hand the rest over
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import Any

import redis.asyncio as aioredis

from callcycle.logs import get_logger
from dialer import repository as repo
from dialer.dialing import Deps
from dialer.lease import Lease
from dialer.originate import campaign_of
from dialer.runner import CampaignRunner
from dialer.service import DialerService

log = get_logger(__name__)


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


WIND_DOWN_S = 2.0   # of the shutdown grace, kept for recording the last calls and letting go


class Engine:
    def __init__(self, deps: Deps, redis: aioredis.Redis, service: DialerService) -> None:
        self.d, self.redis, self.service = deps, redis, service
        self.runners: dict[int, CampaignRunner] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        deps.observer.on_change = self._attempt_changed

    def _attempt_changed(self, t: Any) -> None:
        """A call of ours rang, was answered, queued, connected or ended: its campaign's
        runner looks again now rather than at its next tick."""
        runner = self.runners.get(campaign_of(t.attempt_id))   # type: ignore[arg-type]
        if runner is not None:
            runner.wake.set()

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="dialer-engine")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._claim()
            except Exception:
                log.exception("dialer_engine_cycle_failed")
            await asyncio.sleep(min(self.d.settings.lease_renew_s, 1.0))

    async def _claim(self) -> None:
        async with self.d.pool.acquire() as conn:
            wanted = await repo.campaigns_to_lead(conn)
        for campaign_id in wanted:
            if campaign_id in self._tasks or self._stopping:
                continue
            lease = Lease(self.redis, self.d.pool, campaign_id, self.d.holder, self.d.settings.lease_ttl_s,
                          self.d.namespace)
            if await lease.acquire() is None:
                continue
            runner = CampaignRunner(self.d, self.redis, lease, self.service)
            self.runners[campaign_id] = runner
            task = asyncio.create_task(runner.run(), name=f"campaign:{campaign_id}")
            self._tasks[campaign_id] = task
            task.add_done_callback(lambda _t, cid=campaign_id: self._ended(cid))

    def _ended(self, campaign_id: int) -> None:
        self._tasks.pop(campaign_id, None)
        self.runners.pop(campaign_id, None)

    def leading(self) -> list[int]:
        return sorted(self.runners)

    async def stop(self, grace: float) -> None:
        """Stop dialing everywhere; in-flight calls get most of ``grace`` seconds to end and
        be recorded, the runners the rest to record the last ones and let go (a runner cut
        off while waiting for its calls would skip that); what is still live then is left
        (in the database) to the next leader."""
        self._stopping = True
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        for runner in list(self.runners.values()):
            await runner.stop(grace - min(WIND_DOWN_S, grace / 5))
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
