"""What the dialer API may answer with (slug + detail; see callcycle.errors)."""

from __future__ import annotations

from callcycle.errors import AppError, Conflict, Invalid, NotFound


class NoSuchCampaign(NotFound):
    error_id = "no-such-campaign"


class NoSuchLead(NotFound):
    error_id = "no-such-lead"


class InvalidCampaign(Invalid):
    """A campaign setting breaks a rule; ``detail`` names the field."""

    error_id = "invalid-campaign"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__({"field": field, "problem": problem})


class CampaignStateConflict(Conflict):
    """The action is not allowed in the campaign's current state."""

    error_id = "campaign-state-conflict"


class LeaseLost(AppError):
    """Internal: this instance no longer holds the campaign's lease (the fence moved)."""

    status = 409
    error_id = "lease-lost"
