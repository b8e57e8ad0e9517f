"""Server-side request forgery guard: a webhook URL must not reach our own network.

Checked twice: when an endpoint is created or changed (resolve its host now), and at every
connection (a resolver wrapped around aiohttp's, so a name that later resolves to
127.0.0.1 -- DNS rebinding -- is refused at connect time, not only at creation).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from crm_sync.errors import DestinationRefused

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (well-known and
# local-use), IPv4-translated, and the deprecated IPv4-compatible form.
_EMBEDS_V4 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::/96"))


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (a NAT64 gateway, a 6to4 or Teredo relay)."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _EMBEDS_V4) and ip not in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refused_reason(address: str) -> str | None:
    """Why ``address`` may not be a webhook destination, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for v4 in _embedded_v4(ip):
            reason = refused_reason(str(v4))
            if reason is not None:
                return f"{reason} (inside {ip})"
    if ip in _METADATA:
        return "cloud metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_private:
        return "private address"
    # Shared (100.64/10), reserved, multicast, unspecified...: nothing a CRM lives on.
    if not ip.is_global or ip.is_multicast:
        return "non-public address"
    return None


def parse_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, or :class:`DestinationRefused`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"webhook URL must be http(s)://host/...: {url!r}")
    if parts.username or parts.password:
        raise DestinationRefused("webhook URL must not carry credentials; the signature authenticates us")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DestinationRefused(f"webhook URL has a bad port: {url!r}") from exc
    return parts.hostname, port


def check_literal(url: str, allow_private: bool) -> None:
    """Refuse a URL whose host is an IP literal in a refused range (no DNS involved; aiohttp
    does not consult the resolver for literals, so this runs before every request)."""
    host, _port = parse_url(url)
    if allow_private:
        return
    try:
        reason = refused_reason(host)
    except ValueError:
        return  # a name: the resolver checks it at connect time
    if reason:
        raise DestinationRefused(f"{host} is a {reason}")


async def check_destination(url: str, allow_private: bool) -> None:
    """Resolve the URL's host now and refuse it if any address is not public."""
    host, port = parse_url(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"{host} does not resolve: {exc}") from exc
    for info in infos:
        address = str(info[4][0])
        reason = refused_reason(address)
        if reason:
            raise DestinationRefused(f"{host} resolves to {address}, a {reason}")


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that drops refused addresses; with none left, the connection fails."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if refused_reason(r["host"]) is None]
        if not allowed:
            raise OSError(f"webhook destination {host} resolves only to non-public addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def resolver(allow_private: bool) -> Any:
    """The resolver a delivery session uses."""
    return DefaultResolver() if allow_private else GuardedResolver()
