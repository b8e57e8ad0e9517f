"""Errors the webhook API returns, each with its ``error_id`` slug."""

from __future__ import annotations

from callcycle.errors import AppError, Conflict, Invalid, NotFound


class NoSuchEndpoint(NotFound):
    error_id = "no-such-webhook-endpoint"


class NoSuchDelivery(NotFound):
    error_id = "no-such-webhook-delivery"


class NoSuchEvent(NotFound):
    error_id = "no-such-event"


class DestinationRefused(Invalid):
    """The endpoint's address is loopback, private, link-local, metadata or unresolvable."""

    error_id = "webhook-destination-refused"


class InvalidEndpoint(Invalid):
    error_id = "invalid-webhook-endpoint"


class UnknownEventType(Invalid):
    error_id = "unknown-event-type"


class InvalidEvent(Invalid):
    """An event's data does not match its JSON Schema."""

    error_id = "invalid-event"


class InvalidReplay(Invalid):
    error_id = "invalid-replay"


class IllegalTransition(Conflict):
    """A state machine refused an event it does not expect in the current state."""

    error_id = "illegal-transition"


__all__ = ["AppError", "DestinationRefused", "IllegalTransition", "InvalidEndpoint", "InvalidEvent",
           "InvalidReplay", "NoSuchDelivery", "NoSuchEndpoint", "NoSuchEvent", "UnknownEventType"]
