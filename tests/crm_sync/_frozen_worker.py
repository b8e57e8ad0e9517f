"""A delivery worker that stops dead after its POST got an answer and before the result is
recorded, so the test can SIGKILL it in exactly that window.

    python -m tests.crm_sync._frozen_worker DATABASE_URL
"""

import asyncio
import sys

from callcycle.clock import SystemClock
from callcycle.db import create_pool
from crm_sync.config import CrmSyncSettings
from crm_sync.worker import Worker


class FrozenWorker(Worker):
    async def _record(self, batch):  # noqa: ANN001
        print("answered", ",".join(str(r.status) for r in batch), flush=True)
        await asyncio.Event().wait()


async def main(url: str) -> None:
    pool = await create_pool(url, min_size=1, max_size=2)
    settings = CrmSyncSettings(allow_private_destinations=True, poll_interval=0.05, lease_seconds=30.0)
    await FrozenWorker(pool, settings, SystemClock(), name="frozen").run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
