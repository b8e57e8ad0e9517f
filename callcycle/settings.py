"""Typed, frozen settings: embedded defaults -> config/callcycle.toml -> environment.

Every key of the merged TOML can be overridden by ``CALLCYCLE_<SECTION>_<KEY>``
(``CALLCYCLE_SERVER_PORT=9000``); an Asterisk server's keys by
``CALLCYCLE_ASTERISK_<NAME>_<KEY>``. ``DATABASE_URL`` and ``REDIS_URL`` are honoured
as the usual names. Secrets are read from the environment only: a secret found in a
file is refused, so it cannot end up in version control by accident.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from callcycle import config_sources as sources
from callcycle.config_sources import SettingsError

_T = TypeVar("_T")

ROLES = ("admin", "supervisor", "agent", "crm")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    log_format: str = "console"
    log_level: str = "info"
    data_dir: str = "~/.local/share/callcycle"
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.log_format not in ("console", "json"):
            raise SettingsError(f"server.log_format must be 'console' or 'json', not {self.log_format!r}")
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise SettingsError(f"server.log_level must be debug, info, warning, error or critical, "
                                f"not {self.log_level!r}")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    pool_min: int = 10
    pool_max: int = 10


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""


@dataclass(frozen=True)
class AsteriskServer:
    name: str
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callcycle"
    secret: str = field(default="", repr=False)
    ping_interval: float = 1.0
    ping_timeout: float = 3.0
    connect_timeout: float = 5.0
    reconnect_min: float = 0.25
    reconnect_max: float = 30.0
    queue_size: int = 20000


@dataclass(frozen=True)
class AsteriskSettings:
    default: str
    servers: Mapping[str, AsteriskServer]

    @property
    def default_server(self) -> AsteriskServer:
        return self.servers[self.default]


@dataclass(frozen=True)
class ApiToken:
    subject: str
    role: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    database: DatabaseSettings
    redis: RedisSettings
    asterisk: AsteriskSettings
    api_tokens: tuple[ApiToken, ...] = ()
    # Standard Webhooks secrets (whsec_...) the CRM signs inbound events with; several
    # during a rotation. From CALLCYCLE_CRM_INBOUND_SECRETS only (space or comma separated).
    crm_inbound_secrets: tuple[str, ...] = field(default=(), repr=False)
    # Typed sections owned by feature packages, by section name.
    features: Mapping[str, Any] = field(default_factory=dict)


    def feature(self, name: str, cls: type[_T]) -> _T:
        """The typed settings of a feature section (see ``_feature_sections``)."""
        value = self.features[name]
        assert isinstance(value, cls), (name, cls)
        return value


def _feature_sections() -> dict[str, type]:
    """Sections owned by feature packages: ``[name]`` -> that package's frozen dataclass.
    Each lives in ``<package>/config.py``, a module that imports nothing of ours."""
    from crm_sync.config import CrmSyncSettings
    from dialer.config import DialerSettings
    from ivr.config import IvrSettings
    from lifecycle.config import LifecycleSettings
    from monitor.config import MonitorSettings

    return {"lifecycle": LifecycleSettings, "crm_sync": CrmSyncSettings, "monitor": MonitorSettings,
            "ivr": IvrSettings, "dialer": DialerSettings}


def load(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings once, at start-up. ``config_file`` defaults to
    ``$CALLCYCLE_CONFIG`` or ``./config/callcycle.toml`` when that exists."""
    env = os.environ if environ is None else environ
    merged = sources.read_toml_text(resources.files("callcycle").joinpath("defaults.toml").read_text(), "defaults.toml")
    path = config_file or env.get("CALLCYCLE_CONFIG")
    if path is None and Path("config/callcycle.toml").is_file():
        path = "config/callcycle.toml"
    if path:
        p = Path(path)
        if not p.is_file():
            raise SettingsError(f"config file {p} does not exist")
        site = sources.read_toml_text(p.read_text(), str(p))
        sources.refuse_secrets(site, str(p))
        merged = sources.merge(merged, site)
    sources.apply_env(merged, env)
    return _build(merged, env)


def _fields_env(cls: type, path: tuple[str, ...], data: dict[str, Any], env: Mapping[str, str],
                skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``CALLCYCLE_<PATH>_<FIELD>`` for every field of ``cls``, including fields that no TOML
    file mentions (a feature setting, or the port of a server given only its host)."""
    for f in dataclasses.fields(cls):
        name = sources.env_name((*path, f.name))
        if f.name in skip or name not in env:
            continue
        like = data.get(f.name, f.default if f.default is not dataclasses.MISSING else "")
        if like is None or isinstance(like, tuple):
            like = list(like) if isinstance(like, tuple) else ""
        data[f.name] = sources.coerce(env[name], like, name)
    return data


def _parse_tokens(raw: str) -> tuple[ApiToken, ...]:
    tokens = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = item.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise SettingsError("CALLCYCLE_API_TOKENS entries must be subject:role:token")
        subject, role, token = parts
        if role not in ROLES:
            raise SettingsError(f"CALLCYCLE_API_TOKENS: unknown role {role!r} (roles: {', '.join(ROLES)})")
        if len(token) < 16:
            raise SettingsError(f"CALLCYCLE_API_TOKENS: token of {subject!r} is shorter than 16 characters")
        twin = next((t.subject for t in tokens if t.token == token), None)
        if twin is not None:   # one of them would silently get the other's role
            raise SettingsError(f"CALLCYCLE_API_TOKENS: {twin!r} and {subject!r} have the same token")
        tokens.append(ApiToken(subject, role, token))
    return tuple(tokens)


def _parse_webhook_secrets(raw: str) -> tuple[str, ...]:
    from crm_sync.signing import decode_secret   # imports nothing of ours

    secrets_ = tuple(s for s in raw.replace(",", " ").split() if s)
    for i, secret in enumerate(secrets_):
        try:
            decode_secret(secret)
        except ValueError as exc:   # found now, not as a 500 on every inbound request
            raise SettingsError(f"CALLCYCLE_CRM_INBOUND_SECRETS: secret {i + 1}: {exc}") from None
    return secrets_


def _build(data: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    core = {"server", "database", "redis", "asterisk"}
    sections = _feature_sections()
    unknown = set(data) - core - set(sections)
    if unknown:
        raise SettingsError(f"unknown section(s): {', '.join(sorted(unknown))}")
    ast = dict(data.get("asterisk", {}))
    servers_raw = ast.pop("servers", {})
    default = ast.pop("default", "")
    if ast:
        raise SettingsError(f"[asterisk] unknown setting(s): {', '.join(sorted(ast))}")
    if not servers_raw:
        raise SettingsError("[asterisk.servers] must name at least one server")
    servers = {}
    for name, raw in servers_raw.items():
        raw = _fields_env(AsteriskServer, ("asterisk", "servers", name), dict(raw), env, skip=("name", "secret"))
        secret = env.get(sources.env_name(("asterisk", "servers", name, "secret")), "")
        if not secret and name == default:
            secret = env.get("CALLCYCLE_AMI_SECRET", "")
        servers[name] = sources.typed(AsteriskServer, raw, f"asterisk.servers.{name}", name=name, secret=secret)
    if default not in servers:
        raise SettingsError(f"[asterisk] default = {default!r} names no configured server")
    features = {
        name: sources.typed(cls, _fields_env(cls, (name,), dict(data.get(name, {})), env), name)
        for name, cls in sections.items()
    }
    return Settings(
        server=sources.typed(ServerSettings, data.get("server", {}), "server"),
        database=sources.typed(DatabaseSettings, data.get("database", {}), "database"),
        redis=sources.typed(RedisSettings, data.get("redis", {}), "redis"),
        asterisk=AsteriskSettings(default=default, servers=types.MappingProxyType(servers)),
        api_tokens=_parse_tokens(env.get("CALLCYCLE_API_TOKENS", "")),
        crm_inbound_secrets=_parse_webhook_secrets(env.get("CALLCYCLE_CRM_INBOUND_SECRETS", "")),
        features=types.MappingProxyType(features),
    )


def with_changes(settings: Settings, **changes: Any) -> Settings:
    """A copy with top-level fields replaced (tests and the CLI use it)."""
    return dataclasses.replace(settings, **changes)
