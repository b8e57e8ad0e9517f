"""Errors of the monitor, each with its ``error_id`` slug (rendered by callcycle.errors)."""

from __future__ import annotations

from callcycle.errors import AppError, Conflict, NotFound


class NoSuchEntity(NotFound):
    error_id = "no-such-entity"


class ActionRefused(Conflict):
    """The PBX or the campaign's own control refused the action; ``detail`` says why."""

    error_id = "action-refused"


class NotConnectedHere(AppError):
    """No instance connected to that Asterisk server can act on it right now."""

    status = 503
    error_id = "server-not-connected"
