"""Dialer use cases: campaigns (create, change, start/pause/resume/stop), their leads (from
lifecycle segments, due cadence tasks, named contacts), preview choices, live figures.
Each method is one transaction; a state change and its ``campaign.*`` outbox row commit
together."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from callcycle.clock import Clock
from crm_sync import outbox
from dialer import leads as lead_sources, repository as repo
from dialer.config import DialerSettings
from dialer.errors import CampaignStateConflict, InvalidCampaign, NoSuchCampaign, NoSuchLead
from dialer.machine import campaign_action
from dialer.models import Campaign, CampaignSettings, CampaignState, Lead, Mode
from dialer.pacing import make_policy
from dialer.live import live_key
from lifecycle.service import LifecycleService



class DialerService:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, lifecycle: LifecycleService, clock: Clock,
                 settings: DialerSettings) -> None:
        self.pool, self.redis, self.lifecycle, self.clock, self.settings = pool, redis, lifecycle, clock, settings
        self.namespace = ""   # set at start-up (repository.namespace)

    # -- campaigns ------------------------------------------------------------------------------

    def _parse(self, mode: str, raw: dict[str, Any]) -> tuple[Mode, CampaignSettings]:
        try:
            m = Mode(mode)
        except ValueError:
            raise InvalidCampaign("mode", f"one of {', '.join(m.value for m in Mode)}") from None
        if not isinstance(raw, dict):
            raise InvalidCampaign("settings", "an object")
        s = CampaignSettings.parse(raw, self.settings, m)
        if m in (Mode.PREDICTIVE, Mode.POWER):
            try:
                make_policy(str(m), **s.pacing)
            except (TypeError, ValueError) as exc:
                raise InvalidCampaign("pacing", str(exc)) from None
        return m, s

    async def create(self, name: str, mode: str, settings: dict[str, Any]) -> Campaign:
        name = _name(name)
        m, s = self._parse(mode, settings)
        async with self.pool.acquire() as conn:
            return await repo.insert_campaign(conn, name, m, s, self.clock.now())

    async def get(self, campaign_id: int) -> Campaign:
        async with self.pool.acquire() as conn:
            campaign = await repo.get_campaign(conn, campaign_id)
        if campaign is None:
            raise NoSuchCampaign(campaign_id)
        return campaign

    async def list(self, state: str | None = None, limit: int = 100, offset: int = 0) -> list[Campaign]:
        async with self.pool.acquire() as conn:
            return await repo.list_campaigns(conn, state, limit, offset)

    async def update(self, campaign_id: int, name: str | None, settings: dict[str, Any] | None) -> Campaign:
        """Change the name or settings of a draft or paused campaign."""
        async with self.pool.acquire() as conn, conn.transaction():
            campaign = await self._locked(conn, campaign_id)
            if campaign.state not in (CampaignState.DRAFT, CampaignState.PAUSED):
                raise CampaignStateConflict({"state": str(campaign.state), "allowed": ["draft", "paused"]})
            fields: dict[str, Any] = {}
            if name is not None:
                fields["name"] = _name(name)
            if settings is not None:
                merged = {**campaign.settings.to_json(), **settings} if isinstance(settings, dict) else settings
                fields["settings"] = self._parse(str(campaign.mode), merged)[1]
            return await repo.update_campaign(conn, campaign_id, self.clock.now(), **fields) if fields else campaign

    async def control(self, campaign_id: int, action: str, by: str | None) -> Campaign:
        """start | pause | resume | stop, with its campaign.* event."""
        async with self.pool.acquire() as conn, conn.transaction():
            campaign = await self._locked(conn, campaign_id)
            return await change_state(conn, campaign, action, by, self.clock.now())

    async def finish_if_done(self, campaign_id: int, token: int, ended: bool) -> bool:
        """Called by the leader (fenced): finished when no lead is left to try."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            if await repo.hold_fence(conn, campaign_id, token) is not CampaignState.RUNNING:
                return False
            if ended:
                await conn.execute(
                    """UPDATE dialer_leads SET state = 'done', updated_at = $2, final_reason = 'campaign_ends',
                              final_disposition = COALESCE(last_disposition, 'not_dialed')
                       WHERE campaign_id = $1 AND state = 'ready'""", campaign_id, now)
            counts = await repo.lead_counts(conn, campaign_id)
            live = await conn.fetchval("SELECT count(*) FROM dialer_attempts WHERE campaign_id = $1 AND "
                                       "ended_at IS NULL", campaign_id)
            if counts["ready"] or counts["dialing"] or live:
                return False
            campaign = await self._locked(conn, campaign_id)
            await change_state(conn, campaign, "finish", None, now)
            return True

    async def _locked(self, conn: asyncpg.Connection, campaign_id: int) -> Campaign:
        campaign = await repo.get_campaign(conn, campaign_id, lock=True)
        if campaign is None:
            raise NoSuchCampaign(campaign_id)
        return campaign

    # -- leads ----------------------------------------------------------------------------------

    async def add_leads(self, campaign_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Leads from the sources the body names (see :mod:`dialer.leads`)."""
        campaign = await self.get(campaign_id)
        if campaign.state in (CampaignState.STOPPED, CampaignState.FINISHED):
            raise CampaignStateConflict({"state": str(campaign.state)})
        rows, callbacks = await lead_sources.from_body(self.lifecycle, body)
        now = self.clock.now()
        missed: list[int] = []
        async with self.pool.acquire() as conn, conn.transaction():
            added = await repo.insert_leads(conn, campaign_id, rows, now, now)
            for contact_id, at in callbacks:
                if not await repo.schedule_callback(conn, campaign_id, contact_id, at,
                                                    lead_sources.PRIORITY["callback"], now):
                    missed.append(contact_id)   # being dialed now: not moved
        out: dict[str, Any] = {"added": added, "offered": len(rows)}
        if callbacks:
            out["callbacks_scheduled"] = len(callbacks) - len(missed)
            out["callbacks_not_scheduled"] = missed   # their lead is being dialed: ask again after
        return out

    async def leads(self, campaign_id: int, state: str | None, limit: int, offset: int) -> list[Lead]:
        await self.get(campaign_id)
        async with self.pool.acquire() as conn:
            return await repo.list_leads(conn, campaign_id, state, limit, offset)

    async def attempts(self, campaign_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
        """Recent attempts, each with the gate's record of why it was allowed."""
        await self.get(campaign_id)
        async with self.pool.acquire() as conn:
            return await repo.list_attempts(conn, campaign_id, limit, offset)

    async def next_preview(self, campaign_id: int) -> dict[str, Any] | None:
        """Preview: the best due lead, with its contact, for an agent to look at."""
        campaign = await self.get(campaign_id)
        if campaign.mode is not Mode.PREVIEW:
            raise CampaignStateConflict({"mode": str(campaign.mode), "needs": "preview"})
        async with self.pool.acquire() as conn:
            ids = await repo.hopper_batch(conn, campaign_id, self.clock.now(), 1, [], False)
            lead = await repo.get_lead(conn, campaign_id, ids[0]) if ids else None
        if lead is None:
            return None
        contact = await self.lifecycle.get(lead.contact_id)
        return {"lead": lead.to_json(), "contact": {"id": contact.id, "name": contact.name, "stage": str(contact.stage),
                                                    "score": contact.score, "tags": list(contact.tags)}}

    async def approve(self, campaign_id: int, lead_id: int, agent: str) -> None:
        """Preview: the agent chose to dial this lead (the runner dials it next)."""
        async with self.pool.acquire() as conn:
            if not await repo.approve_lead(conn, campaign_id, lead_id, agent, self.clock.now()):
                raise NoSuchLead({"campaign_id": campaign_id, "lead_id": lead_id, "needs": "a ready lead"})

    # -- figures ----------------------------------------------------------------------------------

    async def figures(self, campaign_id: int) -> dict[str, Any]:
        """Live figures (from the leader, via Redis) and rates from the records."""
        campaign = await self.get(campaign_id)
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            counts = await repo.lead_counts(conn, campaign_id)
            rates = await conn.fetchrow(_RATES, campaign_id, now, now - timedelta(hours=24), now - timedelta(days=30),
                                        now - timedelta(minutes=5), now - timedelta(hours=1))
        raw = await self.redis.get(live_key(self.namespace, campaign_id))
        live = json.loads(raw) if raw else None
        ratio = lambda a, b: round(a / b, 4) if b else 0.0  # noqa: E731
        return {
            "campaign": {"id": campaign.id, "state": str(campaign.state), "mode": str(campaign.mode)},
            "leads": counts,
            "dial_rate_per_min": round(rates["dialed_5m"] / 5, 2),
            "lines_in_use": live["lines_in_use"] if live else rates["live"],
            "answer_rate_1h": ratio(rates["answered_1h"], rates["ended_1h"]),
            "abandon_rate_24h": ratio(rates["abandoned_24h"], rates["live_24h"]),
            "abandon_rate_30d": ratio(rates["abandoned_30d"], rates["live_30d"]),
            "live_answers_24h": rates["live_24h"], "live_answers_30d": rates["live_30d"],
            "agent_occupancy": live["agent_occupancy"] if live else None,
            "hopper_size": live["hopper_size"] if live else None,
            "leader": live["holder"] if live else None,
            "pacing": live["pacing"] if live else None,
            "model": live["stats"] if live else None,
        }


# live answers are people: answered (connected) and abandoned calls.
_RATES = """
SELECT count(*) FILTER (WHERE dialed_at >= $5) AS dialed_5m,
       count(*) FILTER (WHERE ended_at IS NULL AND dialed_at IS NOT NULL) AS live,
       count(*) FILTER (WHERE ended_at >= $6 AND disposition <> 'refused') AS ended_1h,
       count(*) FILTER (WHERE ended_at >= $6 AND disposition IN ('answered', 'abandoned', 'machine')) AS answered_1h,
       count(*) FILTER (WHERE ended_at >= $3 AND disposition = 'abandoned') AS abandoned_24h,
       count(*) FILTER (WHERE ended_at >= $3 AND disposition IN ('answered', 'abandoned')) AS live_24h,
       count(*) FILTER (WHERE ended_at >= $4 AND disposition = 'abandoned') AS abandoned_30d,
       count(*) FILTER (WHERE ended_at >= $4 AND disposition IN ('answered', 'abandoned')) AS live_30d
FROM dialer_attempts WHERE campaign_id = $1 AND created_at <= $2"""


async def change_state(conn: asyncpg.Connection, campaign: Campaign, action: str, by: str | None,
                       now: datetime) -> Campaign:
    """Apply a campaign action through the state table and emit its event, on ``conn``."""
    move = campaign_action(campaign.state, action)
    if move is None:
        raise CampaignStateConflict({"state": str(campaign.state), "action": action})
    to, event_type = move
    fields: dict[str, Any] = {"state": to}
    if action == "start":
        fields["started_at"] = now
    if to in (CampaignState.STOPPED, CampaignState.FINISHED):
        fields["ended_at"] = now
    updated = await repo.update_campaign(conn, campaign.id, now, **fields)
    await outbox.enqueue(conn, event_type, {"campaign": updated.ref(), "by": by, "state": str(to)},
                         ordering_key=f"campaign:{campaign.id}", occurred_at=now)
    return updated


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise InvalidCampaign("name", "1-200 characters")
    return name.strip()
