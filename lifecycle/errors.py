"""Errors of the lifecycle feature, each with its ``error_id`` slug."""

from __future__ import annotations

from typing import Any

from callcycle.errors import AppError, Conflict, Invalid, NotFound


class RulesError(ValueError):
    """config/lifecycle.toml is wrong; the message names the file and the key."""


class InvalidPhone(Invalid):
    error_id = "invalid-phone"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__({"field": field, "reason": reason})


class ValidationFailed(Invalid):
    error_id = "validation-failed"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__({"field": field, "reason": reason})


class ContactChanged(Exception):
    """The contact is no longer at the version an unlocked commit read: it wrote nothing."""

    def __init__(self, contact_id: int) -> None:
        super().__init__(f"contact {contact_id} changed since it was read")
        self.contact_id = contact_id


class NoSuchContact(NotFound):
    error_id = "no-such-contact"

    def __init__(self, contact_id: Any) -> None:
        super().__init__({"contact_id": contact_id})


class NoSuchTask(NotFound):
    error_id = "no-such-task"

    def __init__(self, task_id: Any) -> None:
        super().__init__({"task_id": task_id})


class TransitionRefused(Conflict):
    error_id = "transition-refused"

    def __init__(self, from_stage: str, to_stage: str, reason: str) -> None:
        super().__init__({"from": from_stage, "to": to_stage, "reason": reason})


class AlreadyClaimed(Conflict):
    """Another agent holds the lead; it returns to the shared pool if not followed up in time."""

    error_id = "already-claimed"

    def __init__(self, contact_id: int, owner: str) -> None:
        super().__init__({"contact_id": contact_id, "owner_agent": owner})


class DuplicateContact(Conflict):
    error_id = "duplicate-contact"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__({"field": field, "reason": reason})


class TaskClosed(Conflict):
    error_id = "task-closed"


class BadSignature(AppError):
    """An inbound CRM webhook whose signature, headers or timestamp do not check out."""

    status = 401
    error_id = "bad-signature"
