from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from callcycle import settings as settings_mod
from pbx.service import Pbx
from tests.conftest import ROOT
from tests.pbx.tools import EventLog, TcpProxy


@pytest.fixture
async def make_pbx(asterisk_env) -> AsyncIterator[Callable]:
    """Start a Pbx on the sandbox (optionally through another port, e.g. a TcpProxy's)."""
    started: list[Pbx] = []

    async def make(port: int | None = None, log: EventLog | None = None, **env: str) -> Pbx:
        merged = dict(asterisk_env, **env)
        if port is not None:
            merged["CALLCYCLE_ASTERISK_MAIN_PORT"] = str(port)
        s = settings_mod.load(ROOT / "config" / "callcycle.toml", merged)
        pbx = Pbx(s.asterisk)
        if log is not None:
            pbx.default.router.add_listener(log)
        started.append(pbx)
        await pbx.start()
        await pbx.default.client.wait_connected(15)
        return pbx

    yield make
    for pbx in started:
        await pbx.stop()


@pytest.fixture
async def ami_proxy(asterisk_env) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(int(asterisk_env.get("CALLCYCLE_ASTERISK_MAIN_PORT", "5038")))
    await proxy.start()
    yield proxy
    await proxy.stop()
