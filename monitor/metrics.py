"""Prometheus metrics of one instance, in a CollectorRegistry of its own (two apps in one
process, as in the tests, never share or clash).

Read at scrape time from what already counts: the pbx routers and AMI clients (calls by
state, events, reconnects), the live board (dialer lines and abandon rate per campaign,
feed clients), the monitor's flow outcomes, and crm_sync's delivery tables when they
exist (webhook backlog and failures). Event-loop lag is measured by a probe task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pbx.calls import CallState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_WEBHOOK_SQL = """
SELECT (SELECT count(*) FROM webhook_deliveries WHERE state IN ('pending', 'in_flight', 'retry_wait')) AS backlog,
       (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead') AS dead,
       (SELECT coalesce(jsonb_object_agg(outcome, n), '{}'::jsonb)
          FROM (SELECT outcome, count(*) AS n FROM webhook_attempts WHERE outcome <> 'succeeded'
                GROUP BY outcome) f) AS failures
"""


class LagProbe:
    """How late the event loop wakes a sleeper: the delay every callback suffers."""

    def __init__(self, registry: CollectorRegistry, interval: float = 0.25) -> None:
        self.interval = interval
        self.last = 0.0
        self.histogram = Histogram("callcycle_event_loop_lag_seconds", "Event-loop lag (late wake-ups)",
                                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                                   registry=registry)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, loop.time() - start - self.interval)
            self.histogram.observe(self.last)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._pbx()
        yield from self._monitor()
        yield from self._webhooks()
        lag = GaugeMetricFamily("callcycle_event_loop_lag_last_seconds", "Event-loop lag at the last probe")
        lag.add_metric([], self.m.lag.last)
        yield lag

    def _pbx(self) -> Iterator[Metric]:
        calls = GaugeMetricFamily("callcycle_calls", "Live calls by state", labels=["server", "state"])
        events = CounterMetricFamily("callcycle_ami_events", "AMI events received", labels=["server", "kind"])
        reconnects = CounterMetricFamily("callcycle_ami_reconnects", "AMI connections lost (then re-made)",
                                         labels=["server"])
        connected = GaugeMetricFamily("callcycle_ami_connected", "1 while logged in to AMI", labels=["server"])
        backlog = GaugeMetricFamily("callcycle_ami_backlog", "AMI events queued in the router", labels=["server"])
        pbx = self.m.pbx
        for name, srv in (pbx.servers.items() if pbx is not None else ()):
            counts = {state.value: 0 for state in CallState if state is not CallState.ENDED}
            for call in srv.router.calls.calls.values():
                counts[call.state.value] = counts.get(call.state.value, 0) + 1
            for state, n in counts.items():
                calls.add_metric([name, state], n)
            for kind in ("events", "typed", "malformed", "handler_errors"):
                events.add_metric([name, kind], srv.router.stats[kind])
            reconnects.add_metric([name], srv.client.stats["disconnects"])
            connected.add_metric([name], 1 if srv.client.connected else 0)
            backlog.add_metric([name], srv.router.backlog)
        yield from (calls, events, reconnects, connected, backlog)

    def _monitor(self) -> Iterator[Metric]:
        mon = self.m.monitor
        lines = GaugeMetricFamily("callcycle_dialer_lines", "Lines in use per campaign", labels=["campaign"])
        abandon = GaugeMetricFamily("callcycle_dialer_abandon_rate", "Abandon rate per campaign (0..1)",
                                    labels=["campaign"])
        for cid, c in mon.board.entities["campaign"].items():
            if isinstance(c.get("lines"), (int, float)):
                lines.add_metric([cid], c["lines"])
            if isinstance(c.get("abandon_rate"), (int, float)):
                abandon.add_metric([cid], c["abandon_rate"])
        outcomes = CounterMetricFamily("callcycle_flow_outcomes", "Calls that ended in an IVR flow, by outcome",
                                       labels=["flow", "outcome"])
        for live in mon.lives.values():
            for (flow, outcome), n in live.flow_outcomes.items():
                outcomes.add_metric([flow, outcome], n)
        clients = GaugeMetricFamily("callcycle_monitor_clients", "Live-feed clients connected")
        clients.add_metric([], len(mon.hub.clients))
        dropped = CounterMetricFamily("callcycle_monitor_clients_dropped", "Live-feed clients dropped as too slow")
        dropped.add_metric([], mon.hub.stats["dropped"])
        yield from (lines, abandon, outcomes, clients, dropped)

    def _webhooks(self) -> Iterator[Metric]:
        w = self.m.webhooks
        if w is None:
            return
        backlog = GaugeMetricFamily("callcycle_webhook_backlog", "Webhook deliveries not finished yet")
        backlog.add_metric([], w["backlog"])
        dead = GaugeMetricFamily("callcycle_webhook_dead", "Webhook deliveries given up (dead letters)")
        dead.add_metric([], w["dead"])
        failures = CounterMetricFamily("callcycle_webhook_failed_attempts", "Failed webhook attempts by outcome",
                                       labels=["outcome"])
        for outcome, n in sorted(w["failures"].items()):
            failures.add_metric([outcome], n)
        yield from (backlog, dead, failures)


class Metrics:
    def __init__(self, monitor: Any, pbx: Any, pool: asyncpg.Pool | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.monitor, self.pbx, self.pool = monitor, pbx, pool
        self.lag = LagProbe(self.registry)
        self.webhooks: dict[str, Any] | None = None
        self.registry.register(_Collector(self))

    async def render(self) -> bytes:
        """Refresh what needs a query, then the exposition text."""
        self.webhooks = await self._webhook_figures()
        return generate_latest(self.registry)

    async def _webhook_figures(self) -> dict[str, Any] | None:
        if self.pool is None:
            return None
        async with self.pool.acquire() as conn:
            if await conn.fetchval("SELECT to_regclass('webhook_attempts') IS NULL"):
                return None  # crm_sync is not installed in this database
            row = await conn.fetchrow(_WEBHOOK_SQL)
        return {"backlog": row["backlog"], "dead": row["dead"], "failures": row["failures"] or {}}
