"""The composition root: builds every resource and feature, hands dependencies down.

Each resource is a ``cleanup_ctx`` async generator: started in order at start-up and
torn down in reverse on shutdown (SIGTERM included), so in-flight work is finished or
handed back before the database it writes to goes away.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

from aiohttp import web

from callcycle import health, keys, migrate
from callcycle.auth import TokenStore, auth_middleware
from callcycle.clock import Clock, SystemClock
from callcycle.db import database
from callcycle.errors import error_middleware
from callcycle.kv import redis_client
from callcycle.logs import get_logger
from callcycle.settings import Settings

log = get_logger(__name__)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    async with database(s.database.url, s.server.data_path,
                        min_size=s.database.pool_min, max_size=s.database.pool_max) as (pool, url):
        async with pool.acquire() as conn:
            await migrate.apply(conn)
        app[keys.DB] = pool
        app[keys.DB_URL] = url
        yield


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    s = app[keys.SETTINGS]
    async with redis_client(s.redis.url, s.server.data_path / "redis") as (client, _url):
        app[keys.REDIS] = client
        yield


async def _lifecycle_ctx(app: web.Application) -> AsyncIterator[None]:
    """The lifecycle service, and its sweeps (task.due, stale claims) on a timer."""
    from lifecycle import sweeper
    from lifecycle.config import LifecycleSettings
    from lifecycle.service import LifecycleService

    lifecycle = app[keys.SETTINGS].feature("lifecycle", LifecycleSettings)
    service = LifecycleService(app[keys.DB], app[keys.CLOCK], lifecycle, app[keys.LIFECYCLE_RULES])
    app[keys.LIFECYCLE] = service
    sweeps = asyncio.create_task(sweeper.run(service, lifecycle.sweep_interval), name="lifecycle-sweeps") \
        if lifecycle.sweep_interval > 0 else None
    try:
        yield
    finally:
        if sweeps is not None:
            sweeps.cancel()
            await asyncio.gather(sweeps, return_exceptions=True)


async def _crm_sync_ctx(app: web.Application) -> AsyncIterator[None]:
    """Webhook delivery workers; on shutdown they finish in-flight POSTs within the grace
    period, then hand unfinished rows back for the next instance to claim."""
    from crm_sync.config import CrmSyncSettings
    from crm_sync.worker import WorkerPool

    s = app[keys.SETTINGS]
    workers = WorkerPool(app[keys.DB], app[keys.DB_URL], s.feature("crm_sync", CrmSyncSettings), app[keys.CLOCK])
    app[keys.WEBHOOK_WORKERS] = workers
    workers.start()
    try:
        yield
    finally:
        await workers.stop(s.server.shutdown_grace)


async def _pbx_ctx(app: web.Application) -> AsyncIterator[None]:
    from pbx.service import Pbx

    pbx = Pbx(app[keys.SETTINGS].asterisk)
    app[keys.PBX] = pbx
    await pbx.start()
    try:
        yield
    finally:
        await pbx.stop()


def init_app(settings: Settings, *, clock: Clock | None = None, with_pbx: bool = True) -> web.Application:
    """The aiohttp application. ``with_pbx=False`` builds it without AMI connections
    (tools and tests that exercise only the database side)."""
    tokens = TokenStore(settings.api_tokens)
    app = web.Application(middlewares=[error_middleware, auth_middleware(tokens)], client_max_size=64 * 1024**2)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock or SystemClock()
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_crm_sync_ctx)
    app.cleanup_ctx.append(_lifecycle_ctx)
    if with_pbx:
        app.cleanup_ctx.append(_pbx_ctx)
    _add_monitor(app)
    app.add_routes(health.routes())
    _add_crm_sync(app)
    _add_lifecycle(app, settings)
    _add_ivr(app)
    _add_dialer(app)
    app.on_startup.append(_freeze_startup_objects)   # after every cleanup_ctx has started
    return app


async def _freeze_startup_objects(_app: web.Application) -> None:
    freeze_startup_heap()


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, flows, rules, pools) out of the garbage
    collector's full passes: with it, one full pass took 50-130 ms, a stall of every call's
    events and every console's deltas; without it, a pass scans only what came later."""
    gc.collect()
    gc.freeze()


def _add_lifecycle(app: web.Application, settings: Settings) -> None:
    from crm_sync import inbound
    from lifecycle import api
    from lifecycle.config import LifecycleSettings
    from lifecycle.rules import load_rules

    # Read while the app is built, so a bad config/lifecycle.toml stops start-up at once.
    app[keys.LIFECYCLE_RULES] = load_rules(settings.feature("lifecycle", LifecycleSettings).rules_file)
    app.add_routes(api.routes())
    app.add_routes(inbound.routes())


def _add_crm_sync(app: web.Application) -> None:
    from crm_sync import api as webhooks_api

    app.add_routes(webhooks_api.routes())


def _add_monitor(app: web.Application) -> None:
    """The supervisor console: after pbx (it listens to its routers; without pbx it only
    serves what other instances publish)."""
    from monitor import api as monitor_api
    from monitor.plugin import monitor_ctx

    app.cleanup_ctx.append(monitor_ctx)
    app.add_routes(monitor_api.routes())


def _add_ivr(app: web.Application) -> None:
    """IVR flows: read and checked while the app is built, so an invalid flow stops start-up
    (file, line, reason) before anything starts; the context comes after the lifecycle and
    pbx ones (it records through one and claims calls on the other)."""
    from ivr import api as ivr_api
    from ivr.plugin import ivr_ctx, load

    load(app)
    app.cleanup_ctx.append(ivr_ctx)
    app.add_routes(ivr_api.routes())


def _add_dialer(app: web.Application) -> None:
    """Campaigns and the dialing loop: after pbx, lifecycle and crm_sync (it dials through
    one and records through the others); on shutdown it stops dialing first."""
    from dialer import api as dialer_api
    from dialer.plugin import dialer_ctx

    app.cleanup_ctx.append(dialer_ctx)
    app.add_routes(dialer_api.routes())
