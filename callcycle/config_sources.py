"""The generic part of loading settings: TOML text, secrets refused in files, merging,
``CALLCYCLE_*`` overrides coerced to the type of the value they replace, and frozen
dataclasses built from plain data with every key and type checked (see callcycle.settings
for what the sections are)."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

_SECRET_KEYS = {"secret", "secrets", "tokens", "password"}


class SettingsError(ValueError):
    """A setting is missing, malformed or in the wrong place; the message names it."""


def read_toml_text(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{name}: {exc}") from exc


def refuse_secrets(data: Mapping[str, Any], where: str, path: tuple[str, ...] = ()) -> None:
    for key, value in data.items():
        dotted = ".".join((*path, key))
        if isinstance(value, Mapping):
            refuse_secrets(value, where, (*path, key))
        elif key in _SECRET_KEYS:
            raise SettingsError(f"{where}: {dotted} is a secret; set it in the environment instead")
        elif isinstance(value, str) and "://" in value and urlsplit(value).password:
            raise SettingsError(f"{where}: {dotted} holds a password; set the URL in the environment instead")


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def env_name(path: tuple[str, ...]) -> str:
    if len(path) == 4 and path[:2] == ("asterisk", "servers"):
        path = ("asterisk", path[2], path[3])
    return "CALLCYCLE_" + "_".join(p.upper().replace("-", "_") for p in path)


def coerce(raw: str, like: Any, name: str) -> Any:
    try:
        if isinstance(like, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(like, (int, float)):
            # a file's "10" for a float setting must not make "2.5" invalid: the dataclass
            # field's type decides later (typed)
            return int(raw) if raw.strip().lstrip("+-").isdigit() else float(raw)
        if isinstance(like, list):
            items = [item.strip() for item in raw.split(",") if item.strip()]
            if like and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in like):
                return [float(item) for item in items]   # a list of numbers stays numbers
            return items
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(like).__name__}") from exc
    return raw


def apply_env(data: dict[str, Any], env: Mapping[str, str], path: tuple[str, ...] = ()) -> None:
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, dict):
            apply_env(value, env, here)
            continue
        name = env_name(here)
        if name in env:
            data[key] = coerce(env[name], value, name)
    if path == ():
        if "DATABASE_URL" in env and "CALLCYCLE_DATABASE_URL" not in env:
            data["database"]["url"] = env["DATABASE_URL"]
        if "REDIS_URL" in env and "CALLCYCLE_REDIS_URL" not in env:
            data["redis"]["url"] = env["REDIS_URL"]


def typed(cls: type, data: Mapping[str, Any], where: str, **extra: Any) -> Any:
    """Construct dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise SettingsError(f"[{where}] unknown setting(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = dict(extra)
    for key, value in data.items():
        expected = hints[key]
        kwargs[key] = check_type(value, expected, f"{where}.{key}")
    return cls(**kwargs)


def check_type(value: Any, expected: Any, where: str) -> Any:
    origin = typing.get_origin(expected)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (str, int, float, bool):
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise SettingsError(f"{where} must be {expected.__name__}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"{where} must be a list, got {value!r}")
        (item_type, *_rest) = typing.get_args(expected)
        return tuple(check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(expected):
            if option is type(None) and value is None:
                return None
            try:
                return check_type(value, option, where)
            except SettingsError:
                continue
        raise SettingsError(f"{where} has the wrong type: {value!r}")
    if origin is dict or origin is Mapping or expected is Any:
        return value
    if dataclasses.is_dataclass(expected):
        if not isinstance(value, Mapping):
            raise SettingsError(f"[{where}] must be a table")
        return typed(expected, value, where)
    return value
