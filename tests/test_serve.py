"""`callcycle serve` as an operator runs it: embedded PostgreSQL and Redis when no URL is
given, the sandbox Asterisk over AMI, ready when all three are, clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp

from tests.conftest import ROOT

TOKEN = "serve-test-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_on_embedded_defaults_becomes_ready_and_stops_cleanly_on_sigterm(tmp_path, asterisk_env):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(asterisk_env)
    env.update({"CALLCYCLE_SERVER_PORT": str(port), "CALLCYCLE_SERVER_DATA_DIR": str(tmp_path / "data"),
                "CALLCYCLE_API_TOKENS": f"ops:admin:{TOKEN}", "CALLCYCLE_SERVER_LOG_FORMAT": "json"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcycle", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            output.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        async with aiohttp.ClientSession() as http:
            async def ready() -> dict | None:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/ready",
                                        headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                        return await resp.json() if resp.status == 200 else None
                except aiohttp.ClientError:
                    return None

            body = None
            for _ in range(600):
                body = await ready()
                if body or proc.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            assert body, "".join(output)
            assert body["checks"]["asterisk"]["main"]["ok"]
            async with http.get(f"http://127.0.0.1:{port}/ready") as resp:
                assert resp.status == 401
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader
    text = "".join(output)
    assert f"embedded PostgreSQL data in {tmp_path / 'data' / 'pgdata'}" in text
    assert f"http://127.0.0.1:{port}/" in text
    assert '"event": "ami_connected"' in text
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
