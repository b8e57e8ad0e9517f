"""Supervisor console: live calls, agents, queues, campaigns and stage KPIs in the browser;
listen, whisper, barge, hang up, pause an agent or a campaign; /metrics for Prometheus.

Rooms (see ../shared/STYLE.md): ``models`` (entity kinds, deltas), ``views`` (entities built
from pbx tables, pure), ``state`` (per-Asterisk live view fed by a router listener),
``board`` (the merged view of every instance), ``bus`` (Redis pub/sub between instances,
one publishing owner per Asterisk), ``feed`` (WebSocket/SSE fan-out with bounded
per-client queues), ``service`` (``Monitor``, ``app[keys.MONITOR]``), ``campaigns`` (the
registry the dialer publishes into), ``actions`` (audited supervisor actions),
``repository`` (audit SQL), ``metrics``, ``history`` (the chart), ``api``, ``plugin``
(wiring), ``static/`` (the page).

Publishing into the console from another feature::

    monitor = app[keys.MONITOR]
    monitor.campaigns.register(cid, name=..., pause=hook)   # hook(paused: bool), may be async
    monitor.campaigns.update(cid, lines=12, answered=120, abandoned=2, abandon_rate=0.0167)
    monitor.annotate_call(server, linkedid, flow_node="ask_need", intent=["high_intent"],
                          contact_id="42", stage="acquisition")   # or CALLCYCLE_* variables
    monitor.publish(kind, id, data)                           # any entity; data None removes

All of these are synchronous, never block, and reach every instance's consoles.
"""
