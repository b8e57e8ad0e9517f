"""Settings of the ``[lifecycle]`` section (imports nothing of ours; see callcycle.settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LifecycleSettings:
    # Region assumed for numbers written without a country code ("(415) 555-0123").
    default_region: str = "US"
    # score >= hot_threshold: routed first to agents; <= nurture_threshold: nurture pool.
    hot_threshold: int = 80
    nurture_threshold: int = 30
    # Transition, scoring and cadence rules; relative paths are tried against the working
    # directory, then the source tree.
    rules_file: str = "config/lifecycle.toml"
    # Rows per transaction in the bulk import.
    import_batch_size: int = 5000
    # Seconds between sweeps: task.due for cadence tasks that became workable, and claimed
    # leads not followed up in time released to the shared pool. 0: no sweeps here.
    sweep_interval: float = 30.0
