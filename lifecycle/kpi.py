"""Stage KPIs over a time range [start, end), computed from the records.

The five of DOMAIN.md, with the definitions we use:
- acquisition ``high_intent_rate``: acquisition-stage calls with intent ``high_intent``
  / acquisition-stage calls that reached a screening decision (intent set). Target 0.30.
- growth ``needs_capture_rate``: growth-stage contacts called in the range whose profile
  has ``attributes.needs`` / growth-stage contacts called. Target 0.90.
- maturity ``cross_sell_rate``: maturity-stage answered calls with disposition ``sale`` or
  ``cross_sell`` / maturity-stage answered calls. Target 0.20.
- decline ``win_back_rate``: moves decline -> maturity/growth / moves into decline. Target 0.30.
- churned ``recall_rate``: moves out of churned / contacts called while churned. Target 0.10.
Plus per stage ``conversion_rate`` (moves to a better stage, see _BETTER / entries into the
stage; maturity has none: its success is ``repeat_purchase_rate``),
``churn_rate`` (moves into churned / contacts not churned at start) and
``repeat_purchase_rate`` (buyers in range with an earlier purchase too / buyers in range).
A rate whose denominator is 0 is ``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from lifecycle.models import Stage

TARGETS = {"high_intent_rate": 0.30, "needs_capture_rate": 0.90, "cross_sell_rate": 0.20,
           "win_back_rate": 0.30, "recall_rate": 0.10}

_SQL = """
WITH h AS (SELECT * FROM stage_history WHERE at >= $1 AND at < $2),
     k AS (SELECT * FROM calls WHERE started_at >= $1 AND started_at < $2)
SELECT
  (SELECT count(*) FROM k WHERE stage = 'acquisition' AND intent = 'high_intent') AS hi_num,
  (SELECT count(*) FROM k WHERE stage = 'acquisition' AND intent IS NOT NULL) AS hi_den,
  (SELECT count(DISTINCT k.contact_id) FROM k JOIN contacts c ON c.id = k.contact_id
     WHERE k.stage = 'growth' AND jsonb_typeof(c.attributes -> 'needs') IS NOT NULL
       AND c.attributes -> 'needs' NOT IN ('null', '""', '[]', '{}')) AS needs_num,
  (SELECT count(DISTINCT contact_id) FROM k WHERE stage = 'growth') AS needs_den,
  (SELECT count(*) FROM k WHERE stage = 'maturity' AND talk_seconds > 0
     AND disposition IN ('sale', 'cross_sell')) AS xs_num,
  (SELECT count(*) FROM k WHERE stage = 'maturity' AND talk_seconds > 0) AS xs_den,
  (SELECT count(*) FROM h WHERE from_stage = 'decline' AND to_stage IN ('maturity', 'growth')) AS wb_num,
  (SELECT count(*) FROM h WHERE to_stage = 'decline') AS wb_den,
  (SELECT count(*) FROM h WHERE from_stage = 'churned') AS rc_num,
  (SELECT count(DISTINCT contact_id) FROM k WHERE stage = 'churned') AS rc_den,
  (SELECT count(*) FROM h WHERE to_stage = 'churned') AS churn_num,
  (SELECT count(*) FROM contacts c WHERE c.created_at < $1 AND COALESCE(
     (SELECT s.to_stage FROM stage_history s WHERE s.contact_id = c.id AND s.at < $1
      ORDER BY s.at DESC, s.id DESC LIMIT 1), c.stage) <> 'churned') AS churn_den,
  (SELECT count(DISTINCT p.contact_id) FROM purchases p WHERE p.purchased_at >= $1 AND p.purchased_at < $2
     AND EXISTS (SELECT 1 FROM purchases q WHERE q.contact_id = p.contact_id AND q.id <> p.id
                 AND q.purchased_at <= p.purchased_at)) AS rp_num,
  (SELECT count(DISTINCT contact_id) FROM purchases WHERE purchased_at >= $1 AND purchased_at < $2) AS rp_den
"""

# Moves that count as conversion out of a stage.
_BETTER = {"acquisition": {"growth", "maturity"}, "growth": {"maturity"}, "maturity": set(),
           "decline": {"growth", "maturity"}, "churned": {"growth", "maturity"}}

_FLOW = """SELECT from_stage, to_stage, count(*) AS n FROM stage_history
           WHERE at >= $1 AND at < $2 GROUP BY from_stage, to_stage"""


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


async def compute(conn: asyncpg.Connection, start: datetime, end: datetime) -> dict[str, Any]:
    r = await conn.fetchrow(_SQL, start, end)
    flows = {(f["from_stage"], f["to_stage"]): f["n"] for f in await conn.fetch(_FLOW, start, end)}
    stages: dict[str, dict[str, Any]] = {}
    for stage in map(str, Stage):
        entered = sum(n for (_, to), n in flows.items() if to == stage)
        better = sum(n for (fr, to), n in flows.items() if fr == stage and to in _BETTER[stage])
        stages[stage] = {"entered": entered,
                         "conversion_rate": _rate(better, entered) if _BETTER[stage] else None}
    kpis = {"acquisition": ("high_intent_rate", "hi"), "growth": ("needs_capture_rate", "needs"),
            "maturity": ("cross_sell_rate", "xs"), "decline": ("win_back_rate", "wb"),
            "churned": ("recall_rate", "rc")}
    for stage, (name, key) in kpis.items():
        stages[stage][name] = _rate(r[f"{key}_num"], r[f"{key}_den"])
        stages[stage][f"{name}_target"] = TARGETS[name]
        stages[stage]["sample"] = r[f"{key}_den"]
    return {"from": start.isoformat(), "to": end.isoformat(), "stages": stages,
            "churn_rate": _rate(r["churn_num"], r["churn_den"]),
            "repeat_purchase_rate": _rate(r["rp_num"], r["rp_den"])}
