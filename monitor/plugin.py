"""Wiring of the supervisor console, used by the composition root (callcycle/app.py):
``monitor_ctx`` is a cleanup_ctx that runs after the pbx one (and without it, for an
instance with no AMI connection that only serves consoles)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from callcycle import keys
from monitor.actions import SupervisorActions
from monitor.config import MonitorSettings
from monitor.metrics import Metrics
from monitor.service import Monitor

ACTIONS = web.AppKey("monitor_actions", SupervisorActions)
METRICS = web.AppKey("monitor_metrics", Metrics)


def _kpi_source(app: web.Application, hours: float) -> Any:
    async def kpis() -> dict[str, Any]:
        lifecycle = app.get(keys.LIFECYCLE)
        if lifecycle is None:
            return {}
        end = datetime.now(timezone.utc)
        # "from"/"to" move every time; rounded to the minute so an idle board stays quiet.
        end = end.replace(second=0, microsecond=0)
        return {"window_hours": hours, **await lifecycle.kpis(end - timedelta(hours=hours), end)}

    return kpis


async def monitor_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS].feature("monitor", MonitorSettings)
    monitor = Monitor(settings, app[keys.REDIS], kpi_source=_kpi_source(app, settings.kpi_window_hours))
    pbx = app.get(keys.PBX)
    if pbx is not None:
        for name, server in pbx.servers.items():
            monitor.watch(name, server.router)
    app[keys.MONITOR] = monitor
    app[ACTIONS] = SupervisorActions(monitor, pbx, app[keys.DB])
    metrics = app[METRICS] = Metrics(monitor, pbx, app[keys.DB])
    await monitor.start()
    lag = asyncio.create_task(metrics.lag.run(), name="monitor-lag-probe")
    try:
        yield
    finally:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        await monitor.stop()
