"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}``, sent as ``v1,<base64>``; secrets are
``whsec_<base64 key>``. During a secret rotation a request carries one signature per
secret (space separated) and a receiver accepts any of its secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class SignatureError(ValueError):
    """Why a webhook was refused; ``error_id`` is the slug the API returns."""

    def __init__(self, error_id: str, detail: str) -> None:
        super().__init__(detail)
        self.error_id = error_id


def decode_secret(secret: str) -> bytes:
    if not secret.startswith(PREFIX):
        raise ValueError("webhook secrets start with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(PREFIX):], validate=True)
    except ValueError as exc:
        raise ValueError("webhook secret is not valid base64 after 'whsec_'") from exc
    if len(key) < 24:
        raise ValueError("webhook secret key must be at least 24 bytes")
    return key


def new_secret() -> str:
    import secrets

    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _sign_one(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: one ``v1,`` signature per secret."""
    return " ".join(_sign_one(decode_secret(s), msg_id, timestamp, body) for s in secrets_)


def headers(secrets_: Iterable[str], msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(secrets_, msg_id, ts, body)}


@dataclass(frozen=True)
class Verified:
    msg_id: str
    timestamp: int


def verify(secrets_: Iterable[str], headers_: Mapping[str, str], body: bytes, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> Verified:
    """Check a received webhook against any of ``secrets_``; raise :class:`SignatureError`."""
    msg_id = headers_.get("webhook-id")
    ts_raw = headers_.get("webhook-timestamp")
    sig_header = headers_.get("webhook-signature")
    if not msg_id or not ts_raw or not sig_header:
        raise SignatureError("signature-headers-missing",
                             "webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        ts = int(ts_raw)
    except ValueError as exc:
        raise SignatureError("bad-webhook-timestamp", "webhook-timestamp must be integer seconds") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise SignatureError("webhook-timestamp-out-of-tolerance",
                             f"webhook-timestamp is more than {tolerance} s from now")
    # bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a 401)
    offered = [part.split(",", 1)[1].encode() for part in sig_header.split() if part.startswith("v1,")]
    for secret in secrets_:
        expected = _sign_one(decode_secret(secret), msg_id, ts, body).split(",", 1)[1].encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return Verified(msg_id, ts)
    raise SignatureError("bad-signature", "no signature matches a configured secret")
