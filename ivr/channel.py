"""One channel parked in ``AGI(agi:async)``, driven with the AMI ``AGI`` action.

Asterisk facts this class is built around (measured on the sandbox, Asterisk 22):
- an AGI command is only queued by the action; its result comes later in
  ``AsyncAGIExec``. A command queued after the channel left AGI (hang-up, a failed
  command, a Redirect) is accepted and never answered, so every command races the
  session's "gone" signal (``AsyncAGIEnd``/``Hangup``/``CallEnded`` of the call);
- ``result=-1`` ends the AGI session (hang-up during the command, or a file that cannot
  be played): the caller is gone as far as the flow is concerned;
- a command sent to a channel that no longer exists fails at once (``Response: Error``);
- the channel thread polls its command queue every 100 ms when no media frames arrive
  (Local channels), every frame (20 ms) on a real RTP call;
- if the AMI connection drops, pending actions fail (pbx never re-sends them). The AGI
  session itself survives: after the reconnect and resync the lost command's result is
  taken from its AsyncAGIExec event (our CommandID), or the command is sent again (a
  prompt starts over); a call that vanished meanwhile ends the session.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from callcycle.logs import get_logger
from pbx import events as ev
from pbx.actions import AgiResult, parse_agi_result
from pbx.errors import ActionFailed, AmiConnectionLost, AmiNotConnected
from pbx.service import PbxServer

log = get_logger(__name__)
_command_ids = itertools.count(1)


class CallerGone(Exception):
    """The channel left the IVR: the caller hung up (or the AGI session ended)."""


class ChannelFailed(Exception):
    """A command got no answer, or AMI stayed down longer than the grace period."""


class AgiChannel:
    def __init__(self, server: PbxServer, linkedid: str, channel: str, gone: asyncio.Event,
                 command_grace: float, reconnect_grace: float, resume_wait: float = 3.0) -> None:
        self.server, self.linkedid, self.name = server, linkedid, channel
        self.gone = gone
        self.command_grace = command_grace
        self.reconnect_grace = reconnect_grace
        self.resume_wait = resume_wait
        self.resumed = 0   # commands sent again after an AMI reconnect
        self._awaited: dict[str, asyncio.Future[AgiResult]] = {}
        self._seen: list[str] = []     # keys of DTMFEnd events on this channel, in order
        self._consumed = 0             # of those, how many a command returned or dropped
        self._discard_until = 0.0
        self.missed_keys = 0           # keys recovered from a gap between commands

    async def command(self, command: str, expected_s: float = 0.0) -> AgiResult:
        """Run one AGI command; raises CallerGone or ChannelFailed. ``expected_s`` is how
        long it may legitimately take (a prompt's length, a wait for a key)."""
        loop = asyncio.get_running_loop()
        timeout = expected_s + self.command_grace
        verb = command.split()[0]
        while True:
            if self.gone.is_set():
                raise CallerGone(self.name)
            cid = f"ivr-{next(_command_ids)}"
            sent_at = loop.time()
            self._awaited[cid] = loop.create_future()
            try:
                result = await self._race(self._send(command, cid, timeout))
            except AmiNotConnected:
                await self._wait_for_ami()
                continue
            except AmiConnectionLost:
                await self._wait_for_ami()
                # The command may have reached Asterisk before the link broke: then it runs
                # (or ran) and its AsyncAGIExec comes as an event on the new connection. Take
                # that result rather than run the command twice (a key pressed during a
                # lost WAIT FOR DIGIT would be lost otherwise); send it again if none comes.
                left = max(0.0, expected_s - (loop.time() - sent_at))
                result = await self._late_result(cid, min(left + 0.5, self.resume_wait))
                if result is None:
                    self.resumed += 1
                    log.warning("ivr_command_sent_again_after_reconnect", channel=self.name, command=verb)
                    continue
            except ActionFailed as exc:
                if "does not exist" in exc.message or "No such channel" in exc.message:
                    raise CallerGone(self.name) from exc
                raise ChannelFailed(f"{verb}: {exc.message}") from exc
            except asyncio.TimeoutError:
                raise ChannelFailed(f"{verb}: no result within {timeout:.0f} s") from None
            finally:
                self._awaited.pop(cid, None)
            if result.result == "-1":
                raise CallerGone(self.name)
            return result

    async def _send(self, command: str, cid: str, timeout: float) -> AgiResult:
        resp = await self.server.client.send({"Action": "AGI", "Channel": self.name, "Command": command,
                                              "CommandID": cid}, timeout=timeout)
        for msg in resp if isinstance(resp, list) else [resp]:
            if msg.get("Event") == "AsyncAGIExec":
                return parse_agi_result(msg.get("Result", ""))
        return AgiResult(0, "", "no result")

    def on_exec(self, event: ev.AsyncAGIExec) -> None:
        """An AsyncAGIExec seen by the router (every command's result passes there too)."""
        waiter = self._awaited.get(event.command_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(parse_agi_result(event.result, encoded=False))

    async def _late_result(self, cid: str, wait: float) -> AgiResult | None:
        waiter = self._awaited.get(cid)
        if waiter is None:
            return None
        try:
            return await self._race(asyncio.wait_for(asyncio.shield(waiter), wait))
        except asyncio.TimeoutError:
            return None

    async def _race(self, work: Any) -> Any:
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise CallerGone(self.name)

    async def _wait_for_ami(self) -> None:
        """Until AMI is back and has resynced this call; CallerGone if it vanished meanwhile,
        ChannelFailed after ``reconnect_grace`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_grace
        router, client = self.server.router, self.server.client
        while not self.gone.is_set():
            call = router.calls.get(self.linkedid)
            if client.connected and call is not None and call.generation == router.calls.generation:
                return
            if loop.time() > deadline:
                raise ChannelFailed(f"AMI not back within {self.reconnect_grace:.0f} s")
            try:
                await asyncio.wait_for(self.gone.wait(), 0.05)
            except asyncio.TimeoutError:
                pass
        raise CallerGone(self.name)

    # -- the commands the IVR uses ------------------------------------------------------------

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream(self, sound: str, escape: str, expected_s: float = 60.0) -> str | None:
        """Play one sound file; the key that stopped it (or one pressed just before), if any."""
        if escape and (missed := self._take_missed()):
            return missed
        result = await self.command(f'STREAM FILE {sound} "{escape}"', expected_s)
        return self._returned(result, discard=not escape)

    async def get_option(self, sound: str, escape: str, wait_s: float, expected_s: float = 60.0) -> str | None:
        """Play one sound file, then wait ``wait_s`` for a key, in ONE command: no gap between
        the prompt and the wait in which a key would be lost."""
        if missed := self._take_missed():
            return missed
        result = await self.command(f'GET OPTION {sound} "{escape}" {int(wait_s * 1000)}', expected_s + wait_s)
        return self._returned(result)

    async def wait_digit(self, seconds: float) -> str | None:
        if missed := self._take_missed():
            return missed
        result = await self.command(f"WAIT FOR DIGIT {int(seconds * 1000)}", seconds)
        return self._returned(result)

    # -- keys pressed between two commands ---------------------------------------------------
    # Between two AGI commands the channel thread reads and drops the caller's frames, so a
    # key pressed in that gap (up to the 100 ms poll) reaches no command. Its DTMFEnd still
    # reaches us: every key seen that no command returned is such a key, and the next
    # command that reads keys takes it instead of running. Keys pressed during a prompt
    # that takes none (a play without barge-in) are dropped, as the caller heard them be.

    def on_dtmf(self, event: ev.DTMFEnd) -> None:
        self._seen.append(event.digit)
        if asyncio.get_running_loop().time() < self._discard_until:
            self._consumed = len(self._seen)

    def _take_missed(self) -> str | None:
        if len(self._seen) > self._consumed:
            self._consumed += 1
            self.missed_keys += 1
            return self._seen[self._consumed - 1]
        return None

    def _returned(self, result: AgiResult, *, discard: bool = False) -> str | None:
        if discard:
            self._consumed = len(self._seen)
            self._discard_until = asyncio.get_running_loop().time() + 0.05
            return None
        if result.digit:
            self._consumed += 1
        return result.digit

    async def hangup(self) -> None:
        await self.command("HANGUP")

    async def redirect(self, context: str, exten: str) -> None:
        """Leave AGI for the dialplan (AsyncAGIEnd follows); the IVR session is then over."""
        await self.server.actions.redirect(self.name, context, exten, 1)
