"""Wiring of the IVR into the application (see callcycle/app.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcycle import keys
from ivr.config import IvrSettings
from ivr.models import FlowSet
from ivr.service import IvrService, load_flows

FLOWS = web.AppKey("ivr_flows", FlowSet)


def load(app: web.Application) -> None:
    """Read and check every flow now, while the app is built: FlowsInvalid (file, line,
    reason) stops start-up before any resource is started or any call claimed."""
    app[FLOWS] = load_flows(app[keys.SETTINGS].feature("ivr", IvrSettings))


async def ivr_ctx(app: web.Application) -> AsyncIterator[None]:
    """The IVR service with the flows loaded at build time; claims IVR calls on every
    Asterisk server when the app has a Pbx (``with_pbx=True``)."""
    settings = app[keys.SETTINGS].feature("ivr", IvrSettings)
    ivr = IvrService(settings, app[keys.LIFECYCLE], app[keys.CLOCK], flows=app.get(FLOWS))
    app[keys.IVR] = ivr
    pbx = app.get(keys.PBX)
    if pbx is not None:
        ivr.register(pbx)
    try:
        yield
    finally:
        await ivr.stop(app[keys.SETTINGS].server.shutdown_grace)
