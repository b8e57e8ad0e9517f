"""Phone numbers to E.164 with ``phonenumbers``, plus the country and candidate time zones."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone as pn_timezone

from lifecycle.errors import InvalidPhone


@dataclass(frozen=True)
class Phone:
    e164: str
    country: str | None
    time_zones: tuple[str, ...]


def parse(raw: object, default_region: str, field: str = "phone") -> Phone:
    """Normalise ``raw`` or raise :class:`InvalidPhone` naming ``field`` (never the number)."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhone(field, "a phone number is required")
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(field, f"not a phone number: {exc._msg}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(field, "not a valid number for its region")
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                 phonenumbers.region_code_for_number(number), zones)


def normalise(raw: object, default_region: str, field: str = "phone") -> str:
    return parse(raw, default_region, field).e164
