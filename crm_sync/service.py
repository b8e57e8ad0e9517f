"""Use cases of the webhook side: manage endpoints, record attempt results, replay, read
the delivery log. Handlers and workers call these; SQL lives in ``repository``."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from callcycle.clock import Clock
from callcycle.logs import get_logger
from crm_sync import catalogue, machine, outbox, repository, signing, ssrf
from crm_sync.config import CrmSyncSettings
from crm_sync.errors import InvalidEndpoint, InvalidReplay, NoSuchDelivery, NoSuchEndpoint, NoSuchEvent
from crm_sync.machine import DeliveryState, Outcome
from crm_sync.models import AttemptResult, Endpoint

log = get_logger(__name__)
_EDITABLE = {"url": str, "description": str, "event_types": list, "allow_full_phone": bool, "state": str}


def _check_fields(body: Any, *, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidEndpoint("the body must be a JSON object")
    unknown = set(body) - set(_EDITABLE)
    if unknown:
        raise InvalidEndpoint(f"unknown field(s): {', '.join(sorted(unknown))}")
    if creating and "url" not in body:
        raise InvalidEndpoint("url is required")
    for key, kind in _EDITABLE.items():
        if key in body and not isinstance(body[key], kind):
            raise InvalidEndpoint(f"{key} must be a {kind.__name__}")
    if "url" in body and len(body["url"]) > 2000:
        raise InvalidEndpoint("url is longer than 2000 characters")
    known = set(catalogue.load().types())
    if not all(isinstance(t, str) for t in body.get("event_types", [])):
        raise InvalidEndpoint("event_types must be a list of event type names")
    bad = [t for t in body.get("event_types", []) if t not in known]
    if bad:
        raise InvalidEndpoint(f"unknown event type(s): {', '.join(map(str, bad))}")
    return body


async def create_endpoint(pool: asyncpg.Pool, settings: CrmSyncSettings, body: Any) -> tuple[Endpoint, str]:
    """Create an endpoint after the SSRF check; returns it with its secret (shown only now)."""
    fields = _check_fields(body, creating=True)
    await ssrf.check_destination(fields["url"], settings.allow_private_destinations)
    secret = signing.new_secret()
    row = await repository.insert_endpoint(
        pool, url=fields["url"], description=fields.get("description", ""),
        event_types=fields.get("event_types", []), allow_full_phone=fields.get("allow_full_phone", False),
        secret=secret)
    log.info("webhook_endpoint_created", endpoint_id=row["id"])
    return Endpoint.from_row(row), secret


async def get_endpoint(pool: asyncpg.Pool, endpoint_id: int) -> Endpoint:
    row = await repository.get_endpoint(pool, endpoint_id)
    if row is None:
        raise NoSuchEndpoint(f"no webhook endpoint {endpoint_id}")
    return Endpoint.from_row(row)


async def list_endpoints(pool: asyncpg.Pool) -> list[Endpoint]:
    return [Endpoint.from_row(r) for r in await repository.list_endpoints(pool)]


async def update_endpoint(pool: asyncpg.Pool, settings: CrmSyncSettings, endpoint_id: int, body: Any) -> Endpoint:
    """Change URL, filters, phone policy, or enable/disable (through the endpoint machine)."""
    changes = dict(_check_fields(body, creating=False))
    if "url" in changes:
        await ssrf.check_destination(changes["url"], settings.allow_private_destinations)
    async with pool.acquire() as conn, conn.transaction():
        current = await repository.get_endpoint(conn, endpoint_id, for_update=True)
        if current is None:
            raise NoSuchEndpoint(f"no webhook endpoint {endpoint_id}")
        if "state" in changes:
            event = {"active": "enable", "disabled": "disable"}.get(changes["state"])
            if event is None:
                raise InvalidEndpoint("state must be 'active' or 'disabled'")
            changes["state"] = machine.next_endpoint_state(current["state"], event).value
            changes["disabled_reason"] = None if changes["state"] == "active" else "disabled through the API"
        row = await repository.update_endpoint(conn, endpoint_id, changes) if changes else current
    return Endpoint.from_row(row)


async def rotate_secret(pool: asyncpg.Pool, settings: CrmSyncSettings, clock: Clock,
                        endpoint_id: int) -> tuple[Endpoint, str]:
    """A new secret; the old one keeps signing (a second signature) for ``rotation_overlap``."""
    secret = signing.new_secret()
    until = clock.now() + timedelta(seconds=settings.rotation_overlap)
    row = await repository.rotate_secret(pool, endpoint_id, secret, until)
    if row is None:
        raise NoSuchEndpoint(f"no webhook endpoint {endpoint_id}")
    log.info("webhook_secret_rotated", endpoint_id=endpoint_id)
    return Endpoint.from_row(row), secret


async def delete_endpoint(pool: asyncpg.Pool, endpoint_id: int) -> None:
    if not await repository.delete_endpoint(pool, endpoint_id):
        raise NoSuchEndpoint(f"no webhook endpoint {endpoint_id}")


def _plan(results: Sequence[AttemptResult], settings: CrmSyncSettings, now: datetime,
          rand: Callable[[], float]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], set[int]]:
    finished, attempts, gone = [], [], set()
    for r in results:
        c, n = r.delivery, r.delivery.attempts + 1
        outcome = machine.classify(r.status)
        state, delay = machine.decide(outcome, n, settings.retry_schedule, jitter=settings.retry_jitter,
                                      retry_after=r.retry_after, max_retry_after=settings.max_retry_after,
                                      rand=rand)
        if outcome is Outcome.GONE:
            gone.add(c.endpoint_id)
        finished.append((c.id, c.lease, state.value, now + timedelta(seconds=delay), r.status, r.error))
        attempts.append((c.id, n, r.started_at, r.latency_ms, r.status, outcome.value, r.error, r.response_body))
    return finished, attempts, gone


async def record_results(pool: asyncpg.Pool, settings: CrmSyncSettings, now: datetime,
                         results: Sequence[AttemptResult], rand: Callable[[], float] = random.random) -> set[int]:
    """Store a batch of attempt results in one transaction: delivery states, attempt rows,
    endpoints that answered 410, dead letters and their ``webhook.exhausted`` events.
    Returns the ids whose result counted (their lease was still ours)."""
    finished, attempts, gone = _plan(results, settings, now, rand)
    async with pool.acquire() as conn, conn.transaction():
        # Losing this commit in a crash only means the rows are sent again with the same
        # webhook-id (at-least-once, receivers dedupe), so it need not wait for the WAL flush.
        await conn.execute("SET LOCAL synchronous_commit TO off")
        done = await repository.finish(conn, finished)
        await repository.record_attempts(conn, attempts)
        if gone:
            await repository.disable_endpoints(conn, sorted(gone), "the receiver answered 410 Gone")
            log.warning("webhook_endpoint_disabled", endpoint_ids=sorted(gone), reason="410")
        dead = [row[0] for row in finished if row[2] == DeliveryState.DEAD and row[0] in done]
        if dead:
            await _dead_letters(conn, dead)
    return done


async def _dead_letters(conn: asyncpg.Connection, ids: list[int]) -> None:
    for letter in await repository.add_dead_letters(conn, ids):
        log.warning("webhook_exhausted", delivery_id=letter["delivery_id"], endpoint_id=letter["endpoint_id"])
        # An exhausted webhook.exhausted is not announced again: that could loop forever.
        if letter["event_type"] == "webhook.exhausted":
            continue
        await outbox.enqueue(conn, "webhook.exhausted", {
            "event_id": str(letter["event_id"]), "event_type": letter["event_type"],
            "endpoint_id": letter["endpoint_id"], "attempts": letter["attempts"],
            "last_status": letter["last_status"]})


async def replay(pool: asyncpg.Pool, body: Any) -> int:
    """New deliveries of one event (``event_id``) or of a time range (``from``/``to``,
    ISO-8601), optionally to one ``endpoint_id``. The webhook-id stays the event's."""
    if not isinstance(body, dict):
        raise InvalidReplay("the body must be a JSON object")
    endpoint_id = body.get("endpoint_id")
    if endpoint_id is not None:
        if not isinstance(endpoint_id, int):
            raise InvalidReplay("endpoint_id must be an integer")
        await get_endpoint(pool, endpoint_id)
    if "event_id" in body:
        try:
            event_id = uuid.UUID(str(body["event_id"]))
        except ValueError as exc:
            raise InvalidReplay("event_id must be a UUID") from exc
        if not await repository.event_exists(pool, event_id):
            raise NoSuchEvent(f"no event {event_id}")
        count = await repository.replay_event(pool, event_id, endpoint_id)
    elif "from" in body and "to" in body:
        start, end = _instant(body["from"], "from"), _instant(body["to"], "to")
        if end <= start:
            raise InvalidReplay("'to' must be after 'from'")
        count = await repository.replay_range(pool, start, end, endpoint_id)
    else:
        raise InvalidReplay("give event_id, or from and to")
    log.info("webhook_replay", deliveries=count, endpoint_id=endpoint_id)
    return count


def _instant(value: Any, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidReplay(f"{name} must be an ISO-8601 time") from exc
    if when.tzinfo is None:
        raise InvalidReplay(f"{name} must carry a time zone offset")
    return when


async def deliveries(pool: asyncpg.Pool, query: dict[str, Any]) -> list[dict[str, Any]]:
    rows = await repository.list_deliveries(pool, **query)
    return [dict(r) for r in rows]


async def attempts(pool: asyncpg.Pool, delivery_id: int) -> list[dict[str, Any]]:
    if not await repository.delivery_exists(pool, delivery_id):
        raise NoSuchDelivery(f"no webhook delivery {delivery_id}")
    return [dict(r) for r in await repository.list_attempts(pool, delivery_id)]


async def dead_letters(pool: asyncpg.Pool, query: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in await repository.list_dead_letters(pool, **query)]
