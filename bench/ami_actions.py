"""CPU per AMI action on the sandbox Asterisk: panoramisk's ``Action``/``Message`` path
(the baseline) against ours (``AmiClient.send`` -> ``FastAMIProtocol.request``), over the
same connection, alternating rounds in one run.

Each round sends ``--batch`` actions at once, ``--waves`` times, and takes this process's
CPU time (``time.process_time``: the loop's work, the socket calls included) per action:
a bare ``Ping`` (one reply) and ``CoreShowChannels`` (an event list: a reply and its
``Complete`` event; the sandbox is idle, so no channel events in between).

    eval "$(scripts/asterisk-sandbox env)"; .venv/bin/python bench/ami_actions.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callcycle import logs, settings as settings_mod  # noqa: E402
from pbx.service import Pbx  # noqa: E402
from tests.conftest import _sandbox_env  # noqa: E402

ACTIONS = {"Ping": ({"Action": "Ping"}, None), "CoreShowChannels": ({"Action": "CoreShowChannels"}, True)}


async def cpu_per_action(send, action: dict, as_list: bool | None, batch: int, waves: int) -> float:  # noqa: ANN001
    started = time.process_time()
    for _ in range(waves):
        replies = await asyncio.gather(*[send(action, as_list) for _ in range(batch)])
        assert all(replies), "an action went unanswered"
    return (time.process_time() - started) / (batch * waves) * 1e6


async def main(args: argparse.Namespace) -> None:
    logs.configure("console", "warning")
    s = settings_mod.load(ROOT / "config" / "callcycle.toml", _sandbox_env())
    pbx = Pbx(s.asterisk)
    await pbx.start()
    try:
        client = pbx.default.client
        await client.wait_connected(15)

        async def ours(action: dict, as_list: bool | None):  # noqa: ANN202
            return await client.send(action, as_list=as_list, timeout=10)

        async def panoramisk(action: dict, as_list: bool | None):  # noqa: ANN202
            # the Manager's own path: an Action written by panoramisk, its replies built into
            # Messages and matched by panoramisk's guess of whether more follow
            return await asyncio.wait_for(client._manager.send_action(dict(action), as_list=as_list), 10)

        for send in (ours, panoramisk):   # warm-up
            await cpu_per_action(send, *ACTIONS["Ping"], args.batch, 5)
        print(f"CPU per action, {args.batch} at once x {args.waves}, median of {args.rounds} alternating rounds")
        for name, (action, as_list) in ACTIONS.items():
            runs: dict[str, list[float]] = {"panoramisk": [], "ours": []}
            for _ in range(args.rounds):
                for label, send in (("panoramisk", panoramisk), ("ours", ours)):
                    runs[label].append(await cpu_per_action(send, action, as_list, args.batch, args.waves))
            base, mine = statistics.median(runs["panoramisk"]), statistics.median(runs["ours"])
            print(f"  {name:17s} panoramisk {base:6.1f} us   ours {mine:6.1f} us   ratio {mine / base:.2f}"
                  f"   (rounds: {[round(x) for x in runs['panoramisk']]} / {[round(x) for x in runs['ours']]})")
    finally:
        await pbx.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20, help="actions in flight at once")
    parser.add_argument("--waves", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
