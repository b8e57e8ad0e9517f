"""Destinations on our own network are refused, at creation and at connection time."""

from __future__ import annotations

import pytest

from crm_sync import ssrf
from crm_sync.errors import DestinationRefused


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1",
                                     "224.0.0.1"])
def test_non_public_addresses_are_refused(address):
    assert ssrf.refused_reason(address)


def test_public_addresses_pass():
    assert ssrf.refused_reason("93.184.216.34") is None
    assert ssrf.refused_reason("2606:2800:220:1:248:1893:25c8:1946") is None


async def test_127_0_0_1_and_localhost_are_refused_by_default_and_allowed_by_configuration():
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook"):
        with pytest.raises(DestinationRefused):
            await ssrf.check_destination(url, allow_private=False)
        await ssrf.check_destination(url, allow_private=True)
    with pytest.raises(DestinationRefused):
        ssrf.check_literal("http://169.254.169.254/latest/meta-data", allow_private=False)
    with pytest.raises(DestinationRefused, match="credentials"):
        ssrf.parse_url("https://user:pw@crm.example.com/hook")


async def test_the_connection_time_resolver_drops_refused_addresses():
    with pytest.raises(OSError, match="non-public"):
        await ssrf.GuardedResolver().resolve("localhost", 80)


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe", "2002:a00:1::",
                                     "::127.0.0.1", "::ffff:0:7f00:1"])
def test_ipv6_forms_that_lead_to_an_internal_ipv4_address_are_refused(address):
    # NAT64, 6to4, IPv4-translated and IPv4-compatible addresses reach the IPv4 inside them
    assert ssrf.refused_reason(address) is not None


def test_ipv6_forms_of_public_ipv4_addresses_stay_allowed():
    assert ssrf.refused_reason("64:ff9b::808:808") is None and ssrf.refused_reason("2002:808:808::1") is None
