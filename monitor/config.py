"""Settings of the ``[monitor]`` section (imports nothing of ours; see callcycle.settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MonitorSettings:
    # Messages a live-feed client may have waiting; past that it is dropped (it reconnects
    # and gets a fresh snapshot), so one slow browser never holds the others back.
    feed_queue_size: int = 1000
    # Redis pub/sub channel every instance publishes its deltas to and listens on.
    bus_channel: str = "callcycle:monitor"
    # An instance that has not been heard of for this long is gone: its entities go too.
    peer_timeout: float = 10.0
    # Every instance announces its full state this often (heartbeat and self-healing).
    full_interval: float = 3.0
    # Only one instance publishes the calls/agents/queues of one Asterisk server (the
    # holder of a Redis lease of this length, renewed at a third of it).
    owner_lease: float = 6.0
    # Periodic reconcile of the live view with the pbx tables (resync, occupancy).
    tick_interval: float = 1.0
    # Chart samples (abandon rate, occupancy): one every sample_interval s, kept an hour.
    sample_interval: float = 10.0
    # Abandon rate in the chart: over the samples of this many seconds.
    abandon_window: float = 300.0
    # Stage KPIs (lifecycle) are recomputed this often, over the last kpi_window_hours.
    kpi_interval: float = 30.0
    kpi_window_hours: float = 24.0
    # The supervisor's own phone, rung for listen/whisper/barge. {subject} is the token's
    # subject, e.g. "PJSIP/{subject}" or, in the sandbox, "Local/{subject}@sim-supervisor".
    supervisor_endpoint: str = "PJSIP/{subject}"
    # Seconds an action waits for another instance to run it (campaign pause).
    remote_action_timeout: float = 5.0
