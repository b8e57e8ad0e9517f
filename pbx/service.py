"""The PBX side of callcycle: one AMI client, router and action set per named Asterisk."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from callcycle.settings import AsteriskSettings
from pbx.actions import Actions
from pbx.client import AmiClient
from pbx.router import Router


@dataclass
class PbxServer:
    name: str
    client: AmiClient
    router: Router
    actions: Actions
    task: asyncio.Task[None] | None = None


class Pbx:
    """All configured Asterisk servers; ``default`` is the one named in the settings."""

    def __init__(self, settings: AsteriskSettings) -> None:
        self.settings = settings
        self.servers: dict[str, PbxServer] = {}
        for name, server in settings.servers.items():
            router = Router(name, high_water=server.queue_size)
            client = AmiClient(server, router)
            self.servers[name] = PbxServer(name, client, router, Actions(client))

    @property
    def default(self) -> PbxServer:
        return self.servers[self.settings.default]

    def __getitem__(self, name: str) -> PbxServer:
        return self.servers[name]

    async def start(self) -> None:
        for srv in self.servers.values():
            srv.task = asyncio.create_task(srv.router.run(), name=f"router:{srv.name}")
            await srv.client.start()

    async def stop(self) -> None:
        for srv in self.servers.values():
            await srv.client.stop()
            if srv.task is not None:
                srv.router.drain()  # deliver what was already received before stopping
                srv.task.cancel()
                await asyncio.gather(srv.task, return_exceptions=True)

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: srv.client.status() for name, srv in self.servers.items()}
