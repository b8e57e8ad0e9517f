"""The ``[crm_sync]`` settings section. Imports nothing of ours (settings loads it)."""

from __future__ import annotations

from dataclasses import dataclass

# Delay before attempt n+1 after attempt n failed (the first entry is the first attempt):
# immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h -> dead letter.
DEFAULT_RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)


@dataclass(frozen=True)
class CrmSyncSettings:
    """Webhook delivery: workers, claiming, retries, timeouts and destination policy."""

    # Delivery workers per server instance (0: this instance delivers nothing).
    workers: int = 2
    # Seconds between polls when no NOTIFY arrives (the fallback if LISTEN is down).
    poll_interval: float = 1.0
    # Rows claimed per query, and POSTs in flight per worker.
    batch_size: int = 100
    concurrency: int = 64
    # A claimed row not finished within the lease is claimed again by another worker.
    lease_seconds: float = 60.0
    # Endpoints on loopback/private/link-local/metadata addresses are refused unless true.
    allow_private_destinations: bool = False
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    # Each retry delay is multiplied by a random factor in [1 - jitter, 1 + jitter].
    retry_jitter: float = 0.1
    # Longest Retry-After we honour (a receiver cannot park an event forever).
    max_retry_after: float = 86400.0
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    # Bytes of a response body kept in the attempt log.
    response_body_limit: int = 1024
    # After a rotation, requests carry the old secret's signature too for this long.
    rotation_overlap: float = 86400.0

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule)
