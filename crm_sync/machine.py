"""Delivery and endpoint states as tables, plus the pure decisions of one attempt:
how a response is classified and when the next attempt is due. No I/O here."""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import StrEnum

from crm_sync.errors import IllegalTransition


class DeliveryState(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    RETRY_WAIT = "retry_wait"
    DELIVERED = "delivered"
    DEAD = "dead"


class EndpointState(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


UNFINISHED = frozenset({DeliveryState.PENDING, DeliveryState.IN_FLIGHT, DeliveryState.RETRY_WAIT})

# (state, event) -> next state. Anything else is refused.
DELIVERY_TRANSITIONS: dict[tuple[DeliveryState, str], DeliveryState] = {
    (DeliveryState.PENDING, "claim"): DeliveryState.IN_FLIGHT,
    (DeliveryState.RETRY_WAIT, "claim"): DeliveryState.IN_FLIGHT,
    # The lease ran out (the worker died or hung): another worker takes the row over.
    (DeliveryState.IN_FLIGHT, "claim"): DeliveryState.IN_FLIGHT,
    (DeliveryState.IN_FLIGHT, "succeeded"): DeliveryState.DELIVERED,
    (DeliveryState.IN_FLIGHT, "failed"): DeliveryState.RETRY_WAIT,
    (DeliveryState.IN_FLIGHT, "exhausted"): DeliveryState.DEAD,
}

ENDPOINT_TRANSITIONS: dict[tuple[EndpointState, str], EndpointState] = {
    (EndpointState.ACTIVE, "disable"): EndpointState.DISABLED,
    # 410 Gone: the receiver asked us to stop.
    (EndpointState.ACTIVE, "gone"): EndpointState.DISABLED,
    (EndpointState.DISABLED, "enable"): EndpointState.ACTIVE,
    (EndpointState.ACTIVE, "enable"): EndpointState.ACTIVE,
    (EndpointState.DISABLED, "disable"): EndpointState.DISABLED,
}


def next_delivery_state(state: str, event: str) -> DeliveryState:
    try:
        return DELIVERY_TRANSITIONS[(DeliveryState(state), event)]
    except (KeyError, ValueError):
        raise IllegalTransition(f"a delivery in state {state!r} cannot take {event!r}") from None


def next_endpoint_state(state: str, event: str) -> EndpointState:
    try:
        return ENDPOINT_TRANSITIONS[(EndpointState(state), event)]
    except (KeyError, ValueError):
        raise IllegalTransition(f"an endpoint in state {state!r} cannot take {event!r}") from None


class Outcome(StrEnum):
    """What one attempt's response means."""

    SUCCEEDED = "succeeded"  # 2xx
    GONE = "gone"  # 410: disable the endpoint, keep the delivery for when it is enabled
    THROTTLED = "throttled"  # 429/503: honour Retry-After
    FAILED = "failed"  # anything else, 3xx included (never followed), timeouts, refused


def classify(status: int | None) -> Outcome:
    if status is None:
        return Outcome.FAILED
    if 200 <= status < 300:
        return Outcome.SUCCEEDED
    if status == 410:
        return Outcome.GONE
    if status in (429, 503):
        return Outcome.THROTTLED
    return Outcome.FAILED


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; the HTTP-date form is not used by CRMs we know,
    so it is ignored (the schedule applies)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def retry_delay(attempt: int, schedule: tuple[float, ...], *, jitter: float = 0.1,
                retry_after: float | None = None, max_retry_after: float = 86400.0,
                rand: Callable[[], float] = random.random) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or None when the
    schedule is exhausted. Jitter spreads the retries of a recovering CRM's backlog."""
    if attempt >= len(schedule):
        return None
    delay = schedule[attempt] * (1 + jitter * (2 * rand() - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_retry_after))
    return max(delay, 0.0)


def decide(outcome: Outcome, attempt: int, schedule: tuple[float, ...], *, jitter: float,
           retry_after: float | None, max_retry_after: float,
           rand: Callable[[], float] = random.random) -> tuple[DeliveryState, float]:
    """The state a delivery moves to after attempt number ``attempt`` (1-based) ended with
    ``outcome``, and the seconds until it is due again."""
    if outcome is Outcome.SUCCEEDED:
        return next_delivery_state(DeliveryState.IN_FLIGHT, "succeeded"), 0.0
    delay = retry_delay(attempt, schedule, jitter=jitter, max_retry_after=max_retry_after, rand=rand,
                        retry_after=retry_after if outcome is Outcome.THROTTLED else None)
    if delay is None and outcome is Outcome.GONE:
        # the endpoint is disabled, not failing: the delivery waits for it to be enabled
        delay = schedule[-1] if schedule else 0.0
    if delay is None:
        return next_delivery_state(DeliveryState.IN_FLIGHT, "exhausted"), 0.0
    return next_delivery_state(DeliveryState.IN_FLIGHT, "failed"), delay
