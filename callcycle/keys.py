"""Typed application keys: everything the composition root hands to handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callcycle.clock import Clock
from callcycle.settings import Settings

if TYPE_CHECKING:
    from crm_sync.worker import WorkerPool
    from dialer.engine import Engine
    from dialer.service import DialerService
    from ivr.service import IvrService
    from lifecycle.models import Rules
    from lifecycle.service import LifecycleService
    from monitor.service import Monitor
    from pbx.service import Pbx

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", asyncpg.Pool)
DB_URL = web.AppKey("db_url", str)
REDIS = web.AppKey("redis", aioredis.Redis)
PBX = web.AppKey("pbx", "Pbx")
LIFECYCLE = web.AppKey("lifecycle", "LifecycleService")
LIFECYCLE_RULES = web.AppKey("lifecycle_rules", "Rules")
WEBHOOK_WORKERS = web.AppKey("webhook_workers", "WorkerPool")
MONITOR = web.AppKey("monitor", "Monitor")
IVR = web.AppKey("ivr", "IvrService")
DIALER = web.AppKey("dialer", "DialerService")
DIALER_ENGINE = web.AppKey("dialer_engine", "Engine")
