"""Wiring of the dialer into the application (a cleanup_ctx after pbx, lifecycle and
crm_sync; see callcycle/app.py).

Without a Pbx (``with_pbx=False``) or with ``[dialer] enabled = false`` the API still
serves campaigns and figures, and no campaign is dialed from this instance. On shutdown
the engine stops dialing first; calls in flight get the server's grace period to end and
be recorded; whatever is still live stays in the database for the next leader to adopt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcycle import keys
from callcycle.logs import get_logger
from dialer import repository as repo
from dialer.api import SERVICE
from dialer.config import DialerSettings
from dialer.dialing import Deps
from dialer.engine import Engine, instance_id
from dialer.observer import AttemptObserver
from dialer.service import DialerService

log = get_logger(__name__)


async def dialer_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    settings = s.feature("dialer", DialerSettings)
    service = DialerService(app[keys.DB], app[keys.REDIS], app[keys.LIFECYCLE], app[keys.CLOCK], settings)
    async with app[keys.DB].acquire() as conn:
        service.namespace = await repo.namespace(conn)
    app[SERVICE] = service
    app[keys.DIALER] = service
    pbx = app.get(keys.PBX)
    engine = None
    if pbx is not None and settings.enabled:
        if settings.ring_timeout_override_s:
            log.warning("dialer_ring_timeout_overridden", seconds=settings.ring_timeout_override_s,
                        why="sandbox setting: real destinations must ring at least 15 s")
        observer = AttemptObserver()
        pbx.default.router.add_listener(observer)
        monitor = app.get(keys.MONITOR)
        deps = Deps(app[keys.DB], app[keys.LIFECYCLE], pbx.default, observer, settings, app[keys.CLOCK],
                    instance_id(), namespace=service.namespace,
                    board=monitor.campaigns if monitor is not None else None)
        engine = Engine(deps, app[keys.REDIS], service)
        app[keys.DIALER_ENGINE] = engine
        engine.start()
    try:
        yield
    finally:
        if engine is not None:
            await engine.stop(s.server.shutdown_grace)
