"""The campaign registry: where the dialer (or any feature) publishes live campaign
figures for the console and /metrics, and hands over its pause/resume control.

How a feature publishes (the dialer, once it exists)::

    campaigns = app[keys.MONITOR].campaigns
    campaigns.register("spring-renewals", name="Spring renewals", pause=dialer.set_paused)
    # pause(paused: bool) -> None | Awaitable[None]; raise to refuse (the error is shown)
    campaigns.update("spring-renewals", state="running", lines=12, dialed=340, answered=120,
                     abandoned=2, abandon_rate=0.0167, agents=5)     # as often as it likes
    campaigns.unregister("spring-renewals")                          # it leaves the board

Figures the console, its chart and /metrics read: ``state`` (running | paused | ...),
``lines`` (lines dialing or connected now), ``dialed``, ``answered``, ``abandoned``,
``abandon_rate`` (0..1, the regulated figure), ``agents``; any other JSON-able key is
shown as is. ``update`` never blocks (it is safe in a router listener) and reaches every
instance's supervisors. A pause clicked on another instance is forwarded over the bus to
the instance that registered the campaign. For any other kind of live entity, use
``app[keys.MONITOR].publish(kind, id, data)`` (``data`` None removes it).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

PauseHook = Callable[[bool], Awaitable[None] | None]


class CampaignRegistry:
    def __init__(self, publish: Callable[[str, dict[str, Any] | None], None]) -> None:
        self._publish = publish
        self.figures: dict[str, dict[str, Any]] = {}
        self._hooks: dict[str, PauseHook] = {}

    def register(self, campaign_id: str, *, name: str | None = None, pause: PauseHook | None = None,
                 **figures: Any) -> None:
        """Put a campaign on the board; ``pause`` is its pause/resume control."""
        if pause is not None:
            self._hooks[campaign_id] = pause
        self.figures[campaign_id] = {"id": campaign_id, "name": name or campaign_id, "state": "running",
                                     "controllable": pause is not None}
        self.update(campaign_id, **figures)

    def update(self, campaign_id: str, **figures: Any) -> None:
        """Merge new figures into the campaign's and publish them."""
        current = self.figures.setdefault(campaign_id, {"id": campaign_id, "name": campaign_id,
                                                         "state": "running", "controllable": False})
        current.update(figures)
        self._publish(campaign_id, dict(current))

    def unregister(self, campaign_id: str) -> None:
        self.figures.pop(campaign_id, None)
        self._hooks.pop(campaign_id, None)
        self._publish(campaign_id, None)

    def controls(self, campaign_id: str) -> bool:
        return campaign_id in self._hooks

    async def set_paused(self, campaign_id: str, paused: bool) -> None:
        """Run the campaign's own pause hook, then show its new state."""
        hook = self._hooks[campaign_id]
        result = hook(paused)
        if inspect.isawaitable(result):
            await result
        self.update(campaign_id, state="paused" if paused else "running")

    def full(self) -> dict[str, dict[str, Any]]:
        return {cid: dict(f) for cid, f in self.figures.items()}
