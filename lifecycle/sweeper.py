"""The lifecycle's timed work: ``task.due`` for every cadence task that became workable, and
claimed leads not followed up in time going back to the shared pool.

Both sweeps lock their rows with ``FOR UPDATE SKIP LOCKED``, so every server instance may
run them: a row is handled once, by whichever instance gets to it first. A failed sweep
(the database restarting) is logged and tried again at the next interval; nothing is lost,
since what was not marked done is still there to be found.
"""

from __future__ import annotations

import asyncio

from callcycle.logs import get_logger
from lifecycle.service import LifecycleService

log = get_logger(__name__)
_BATCH = 1000


async def sweep_once(service: LifecycleService) -> tuple[int, int]:
    """One round of both sweeps: (task.due events emitted, claims released)."""
    emitted = 0
    while True:
        n = await service.emit_due_tasks(limit=_BATCH)
        emitted += n
        if n < _BATCH:
            break
    released = len(await service.release_stale_claims())
    if emitted or released:
        log.info("lifecycle_swept", tasks_due=emitted, claims_released=released)
    return emitted, released


async def run(service: LifecycleService, interval: float) -> None:
    """Sweep every ``interval`` seconds until cancelled."""
    while True:
        try:
            await sweep_once(service)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("lifecycle_sweep_failed", error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(interval)
