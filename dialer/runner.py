"""The dialing loop of one campaign, run by the instance holding its lease.

Each tick (and whenever a call of ours is answered or ends): read the campaign, build the
pacing inputs from the live queue and our calls, ask the policy how many lines to start,
and start them from the hopper. Each line is a task: reserve (gate, fenced) -> originate
-> follow -> record. A refused lead does not use up the line: the task takes the next.

On start (a takeover, or a restart) the runner first looks for attempts left live in the
database by an earlier leader: each is tied to its call if the call is still up or was
seen, or recorded as ``unknown`` if it ended unseen — never dialed again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from callcycle.logs import get_logger
from dialer import repository as repo
from dialer.dialing import Deps, Dialing, Reservation
from dialer.errors import LeaseLost
from dialer.hopper import Hopper
from dialer.lease import Lease
from dialer.live import LiveView
from dialer.machine import IN_FLIGHT, LEADING_STATES, NEEDS_AGENT
from dialer.models import Campaign, CampaignState, Mode
from dialer.pacing import CampaignStats, Decision, PacingInputs, inputs_summary, policy_for
from pbx.queues import DEVICE_UNAVAILABLE

if TYPE_CHECKING:
    from dialer.service import DialerService

log = get_logger(__name__)
_MAX_REFUSALS_PER_LINE = 25
_SWEEP_S = 15.0


class CampaignRunner:
    def __init__(self, deps: Deps, redis: aioredis.Redis, lease: Lease, service: DialerService) -> None:
        self.d, self.redis, self.lease, self.service = deps, redis, lease, service
        self.campaign_id = lease.campaign_id
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()
        self.live: dict[str, asyncio.Task[None]] = {}
        self.pending = 0
        self.lines_started = 0
        self.last: dict[str, Any] = {}
        self.last_inputs: dict[str, Any] | None = None
        self.grace = 0.0
        self.occupancy = 0.0
        self.stats: CampaignStats | None = None
        self.hopper: Hopper | None = None
        self.dialing: Dialing | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.view = LiveView(redis, deps.namespace, self.campaign_id, deps.board,
                             max(5.0, deps.settings.tick_s * 10))

    # -- life ---------------------------------------------------------------------------------

    async def run(self) -> None:
        token = self.lease.token
        assert token is not None
        renew = asyncio.create_task(self._renew(), name=f"lease:{self.campaign_id}")
        try:
            campaign = await self._load()
            s = campaign.settings
            self.stats = CampaignStats(prior_answer=s.expected_answer_rate, prior_handle=s.expected_handle_s)
            self.dialing = Dialing(self.d, campaign, token, self.stats)
            self.hopper = Hopper(self.d.pool, campaign.id, max(self.d.settings.hopper_size, 3 * campaign.settings.max_lines),
                                 self.d.settings.hopper_low, approved_only=campaign.mode is Mode.PREVIEW)
            await self._seed_stats()
            self.view.show(campaign, lambda paused: self.service.control(
                campaign.id, "pause" if paused else "resume", "monitor"))
            await self._sweep()
            await self._loop(campaign)
        except LeaseLost:
            log.warning("dialer_runner_fenced_out", campaign_id=self.campaign_id)
        except Exception:
            log.exception("dialer_runner_failed", campaign_id=self.campaign_id)   # the engine starts another
        finally:
            try:
                await self._wind_down()        # still renewing: calls are recorded under the lease
            finally:
                renew.cancel()
                await asyncio.gather(renew, return_exceptions=True)
                await self.lease.release()

    async def stop(self, grace: float) -> None:
        """Stop dialing; live calls then get ``grace`` seconds to end and be recorded."""
        self.grace = grace
        self.stopping.set()
        self.wake.set()

    async def _loop(self, campaign: Campaign) -> None:
        policy = policy_for(campaign, campaign.settings.ring_timeout(self.d.settings))
        swept = finish_checked = time.monotonic()
        while self.lease.held and not self.stopping.is_set():
            previous, campaign = campaign, await self._load()
            self.dialing.campaign = campaign
            if campaign.settings != previous.settings:   # changed while paused
                policy = policy_for(campaign, campaign.settings.ring_timeout(self.d.settings))
            if campaign.state not in LEADING_STATES and not self.live and not self.pending:
                return
            now = self.d.clock.now()
            begins, ends = campaign.settings.begins(), campaign.settings.ends()
            dialing_allowed = (campaign.state is CampaignState.RUNNING and self.d.server.client.connected
                               and (begins is None or now >= begins) and (ends is None or now < ends))
            self.hopper.top_up(now)
            decision = self._decide(campaign, policy, now.timestamp()) if dialing_allowed else None
            for _ in range(decision.lines_to_dial if decision else 0):
                self._spawn(self._line())
            idle = campaign.state is CampaignState.RUNNING and not self.live and not self.pending
            if idle and time.monotonic() - finish_checked >= 1.0:   # a query: not every tick
                finish_checked = time.monotonic()
                await self._maybe_finish(campaign, ends is not None and now >= ends)
            await self._publish(campaign)
            if time.monotonic() - swept > _SWEEP_S:
                swept = time.monotonic()
                await self._sweep()
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.d.settings.tick_s)
            except asyncio.TimeoutError:
                pass

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.d.settings.lease_renew_s)
            if not await self.lease.renew():
                self.wake.set()
                return

    async def _wind_down(self) -> None:
        """Stop dialing, give live calls the grace period to end and be recorded, then let
        go: what is still live stays in the database for the next leader to adopt."""
        if self.live and self.grace > 0 and self.lease.held:
            await asyncio.wait(list(self.live.values()), timeout=self.grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.hopper is not None:
            await self.hopper.close()
        await self.view.withdraw()

    # -- pacing -------------------------------------------------------------------------------

    def _decide(self, campaign: Campaign, policy: Any, now: float) -> Decision:
        s = campaign.settings
        traces = [t for t in (self.d.observer.get(a) for a in self.live) if t is not None]
        # a line just dialed has no trace until its first event: it is in flight all the same
        fresh = self.pending + len(self.live) - len(traces)
        in_flight = fresh + sum(t.state in IN_FLIGHT for t in traces)
        waiting = sum(t.state in NEEDS_AGENT for t in traces)
        if campaign.mode is Mode.AGENTLESS:   # no agents: keep max_lines busy
            n = max(0, s.max_lines - len(self.live) - self.pending)
            decision = Decision(n, {"mode": "agentless", "live": len(self.live), "lines_to_dial": n})
        elif campaign.mode is Mode.PREVIEW:   # an agent chose each lead: dial what was chosen
            n = max(0, min(len(self.hopper), s.max_lines - in_flight))
            decision = Decision(n, {"mode": "preview", "approved_in_hopper": len(self.hopper), "lines_to_dial": n})
        else:
            decision = policy.decide(self._inputs(campaign, now, in_flight, waiting, traces, fresh))
        self.last = {"at": now, "decision": decision.explanation, "lines_to_dial": decision.lines_to_dial}
        return decision

    def _inputs(self, campaign: Campaign, now: float, in_flight: int, waiting: int, traces: list,
                fresh: int) -> PacingInputs:
        q = self.d.server.router.queues.queues.get(campaign.settings.queue)
        members = [m for m in q.members.values() if not m.paused and m.status != DEVICE_UNAVAILABLE] if q else []
        ready = sum(m.available for m in members)
        started = self.d.observer.agent_started
        elapsed = tuple(max(0.0, now - started[m.name]) if m.name in started else 0.0
                        for m in members if not m.available)
        weight = min(1.0, self.d.settings.tick_s / 60.0)   # about a minute's average
        self.occupancy += weight * ((len(elapsed) / len(members) if members else 0.0) - self.occupancy)
        inputs = PacingInputs(
            now=now, agents_ready=ready, agents_busy=len(elapsed),
            agents_free_soon=tuple(self.stats.expected_remaining(e) for e in elapsed), lines_in_flight=in_flight,
            answered_waiting=waiting, stats=self.stats, abandon_target=campaign.settings.abandon_target,
            max_lines=campaign.settings.max_lines, agents_busy_elapsed=elapsed,
            lines_in_flight_ages=(0.0,) * fresh + tuple(max(0.0, now - t.first_seen)
                                                        for t in traces if t.state in IN_FLIGHT))
        self.last_inputs = {**inputs_summary(inputs), "agents_free_soon": [round(x, 1) for x in inputs.agents_free_soon],
                            "answer_probability": round(self.stats.answer_probability(now), 4)}
        return inputs

    # -- lines --------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _line(self) -> None:
        """One line: the first lead the gate allows, dialed and followed to its record."""
        self.pending += 1
        try:
            for _ in range(_MAX_REFUSALS_PER_LINE):
                lead_id = self.hopper.pop()
                if lead_id is None:
                    return
                try:
                    reserved = await self.dialing.reserve(lead_id)
                finally:
                    self.hopper.release(lead_id)
                if isinstance(reserved, Reservation):
                    break
            else:
                return
            try:
                sent = await self.dialing.originate(reserved)
                if sent is None:
                    return
                self.lines_started += 1
                self.live[reserved.attempt_id] = asyncio.current_task()
            finally:
                if reserved.attempt_id not in self.live:   # ended unsent, or left for the sweep
                    self.dialing.claimed.discard(reserved.attempt_id)
        except LeaseLost:
            self.lease.token = None
            self.wake.set()
            return
        except Exception:   # the database or AMI failed: nothing was dialed, or the sweep adopts it
            log.exception("dialer_line_failed", campaign_id=self.campaign_id)
            return
        finally:
            self.pending -= 1
        await self._follow(reserved.attempt_id, sent)

    async def _follow(self, attempt_id: str, sent: Any) -> None:
        try:
            await self.dialing.follow(attempt_id, sent)
        except LeaseLost:
            self.lease.token = None
        except Exception:
            log.exception("dialer_follow_failed", campaign_id=self.campaign_id, attempt_id=attempt_id)
        finally:
            self.live.pop(attempt_id, None)
            self.dialing.claimed.discard(attempt_id)
            self.wake.set()

    async def _sweep(self) -> None:
        """Adopt attempts live in the database that no task of ours follows (an earlier
        leader's, or one whose recording failed)."""
        async with self.d.pool.acquire() as conn:
            rows = await repo.live_attempts(conn, self.campaign_id)
        orphans = [r["id"] for r in rows if r["id"] not in self.live and r["id"] not in self.dialing.claimed]
        if not orphans:
            return
        log.info("dialer_adopting_attempts", campaign_id=self.campaign_id, attempts=len(orphans))
        await self.dialing.look_up(orphans)
        for attempt_id in orphans:
            self.live[attempt_id] = self._spawn(self._follow(attempt_id, None))

    async def _seed_stats(self) -> None:
        since = self.d.clock.now() - timedelta(days=30)
        async with self.d.pool.acquire() as conn:
            rows = await repo.recent_attempts(conn, self.campaign_id, since)
        for r in rows:
            at, d = r["ended_at"].timestamp(), r["disposition"]
            answered = d in ("answered", "abandoned", "machine")
            self.stats.record_attempt(at, answered, float(r["ring_seconds"]), machine=d == "machine")
            if d in ("answered", "abandoned"):
                self.stats.record_live_answer(at, d == "abandoned")
            if r["talk_seconds"]:
                self.stats.record_connect(at, float(r["talk_seconds"]))

    # -- state --------------------------------------------------------------------------------

    async def _load(self) -> Campaign:
        async with self.d.pool.acquire() as conn:
            campaign = await repo.get_campaign(conn, self.campaign_id)
        if campaign is None or campaign.lease_token != self.lease.token:
            raise LeaseLost(self.campaign_id)
        return campaign

    async def _maybe_finish(self, campaign: Campaign, ended: bool) -> None:
        """Nothing live and nothing in the hopper: finished if no lead is left to try (or
        the campaign's end passed: its untried leads are closed first)."""
        if len(self.hopper) and not ended:
            return
        await self.service.finish_if_done(self.campaign_id, self.lease.token or -1, ended)

    async def _publish(self, campaign: Campaign) -> None:
        traces = [t for t in (self.d.observer.get(a) for a in self.live) if t is not None]
        snapshot = {
            "holder": self.d.holder, "at": time.time(), "state": str(campaign.state),
            "lines_in_use": len(self.live) + self.pending,
            "dialing": self.pending + sum(t.state in IN_FLIGHT for t in traces),
            "answered_waiting": sum(t.state in NEEDS_AGENT for t in traces),
            "hopper_size": len(self.hopper), "agent_occupancy": round(self.occupancy, 3),
            "pacing": {"inputs": self.last_inputs, **self.last},
            "stats": self.stats.snapshot(time.time()),
        }
        await self.view.publish(campaign, snapshot, self.lines_started, self.stats)
