"""Typed application keys: everything the composition root hands to handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from callcycle.clock import Clock
from callcycle.settings import Settings

if TYPE_CHECKING:
    from pbx.service import Pbx

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", asyncpg.Pool)
DB_URL = web.AppKey("db_url", str)
REDIS = web.AppKey("redis", aioredis.Redis)
PBX = web.AppKey("pbx", "Pbx")
