"""Fixtures of the lifecycle tests: a service on the test's own database with a manual clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from callcycle.app import init_app
from callcycle.clock import ManualClock
from lifecycle.config import LifecycleSettings
from lifecycle.models import CallOutcome, Direction
from lifecycle.service import LifecycleService

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def service(db_pool, clock) -> LifecycleService:
    return LifecycleService(db_pool, clock, LifecycleSettings())


@pytest.fixture
async def client(aiohttp_client, settings, clock):
    return await aiohttp_client(init_app(settings, clock=clock, with_pbx=False))


def outcome(contact_id: int, clock: ManualClock, disposition: str = "answered", **kw) -> CallOutcome:
    """A call that ended now and lasted a minute (tests set only what matters)."""
    end = clock.now()
    kw.setdefault("talk_seconds", 60)
    return CallOutcome(contact_id, kw.pop("direction", Direction.INBOUND), disposition,
                       end - timedelta(seconds=70), end, **kw)


async def events(pool, contact_id: int | None = None, event_type: str | None = None) -> list[dict]:
    """Outbox rows, in order, as {"type", "data"}."""
    rows = await pool.fetch(
        """SELECT event_type, payload, ordering_key FROM outbox_events
           WHERE ($1::text IS NULL OR ordering_key = $1) AND ($2::text IS NULL OR event_type = $2) ORDER BY seq""",
        None if contact_id is None else f"contact:{contact_id}", event_type)
    return [{"type": r["event_type"], "data": r["payload"]} for r in rows]
