"""Attempts whose last events were missed (an AMI outage, a takeover), completed from what
the dialplan kept of them: its hangup handler (config/asterisk/extensions.conf,
``callcycle-dialer-ended``) writes how an answered call went into AstDB, one family per UTC
day, which the dialer reads back with ``DBGet`` before it records the attempt."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone

from callcycle.logs import get_logger
from dialer.machine import ATTEMPT_TRANSITIONS, LOST, CallTrace, Signal
from dialer.models import AttemptState as A
from pbx.errors import PbxError
from pbx.service import PbxServer

log = get_logger(__name__)

_LATE = {"agent": Signal.CONNECT, "abandoned": Signal.ABANDON, "machine": Signal.MACHINE, "ended": None}
_SAFE_HARBOUR = frozenset({"", "playing", "played"})


def missed(t: CallTrace) -> bool:
    """It ended while nobody listened, or lived through a resync: events may be missing."""
    return t.end_reason in LOST or t.resynced


def ended_family(epoch: float) -> str:
    return "callcycle-ended-" + datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y%m%d")


def complete_unseen(t: CallTrace, value: str) -> bool:
    """Complete an attempt whose last events may have been missed (it ended while nobody
    listened, or lived through a resync) from the dialplan's record, ``<answered epoch>:
    <ended epoch>:<agent|abandoned|machine|ended>:<safe-harbour state>:<connect epoch>:
    <member>``: the steps we missed and when it really ended. False if ``value`` is not of
    that form."""
    answered, ended, how, safe_harbour, took, member = (value.split(":", 5) + [""] * 6)[:6]
    try:
        answered_at, ended_at = float(answered), float(ended)
        connected_at = float(took) if took else None
    except ValueError:
        return False
    if how not in _LATE or safe_harbour not in _SAFE_HARBOUR or not missed(t):
        return False
    if t.answered_at is None:
        t.answered_at = answered_at
    state = t.before_end if t.before_end not in (A.DIALING, A.RINGING) else A.ANSWERED
    sig = _LATE[how]
    if sig is None and state is A.WAITING:
        # it left the queue without the safe-harbour message (which is an abandon, and says
        # so): it hung up within the 2 s, or an agent took it on a queue without setinterfacevar
        state = A.ANSWERED
    t.before_end = ATTEMPT_TRANSITIONS.get((state, sig), state) if sig is not None else state
    if how == "agent":
        t.agent = t.agent or member or None
        if connected_at is not None and (t.connected_at is None or connected_at < t.connected_at):
            t.connected_at = connected_at   # not when a resync first saw it bridged
    t.safe_harbour = t.safe_harbour or safe_harbour or None
    if t.end_reason in LOST:   # a seen end keeps its time (the app's clock, like the others)
        t.ended_at = ended_at
        t.end_reason = "ended_during_ami_outage"
    return True


async def complete(server: PbxServer, now: float, attempt_id: str, t: CallTrace) -> None:
    """Read the dialplan's record of an attempt whose events may be missing (under the day
    it ended, today, yesterday or the day it was first seen: a restart after midnight) and
    apply it. Without a record (never answered, or unreadable) the attempt is recorded as it
    was seen."""
    if not missed(t) or (t.answered_at is None and t.end_reason not in LOST):
        return   # its end was seen, and it was never answered: there is no record
    # the day it ended first (or, if unseen, today); then yesterday and the day first seen
    days = list(dict.fromkeys(ended_family(at) for at in (t.ended_at or now, now, now - 86400, t.first_seen)))
    for tries in (1, 2):
        try:
            for family in days:
                value = await server.actions.db_get(family, attempt_id)
                if value is not None and complete_unseen(t, value):
                    log.info("dialer_unseen_end_completed", attempt_id=attempt_id, state=str(t.before_end))
                    return
            return
        except (PbxError, TimeoutError) as exc:
            log.warning("dialer_unseen_end_unread", attempt_id=attempt_id, error=f"{type(exc).__name__}: {exc}")
            if tries == 1:
                with contextlib.suppress(TimeoutError, PbxError):
                    await server.client.wait_connected(5)   # within a shutdown's grace
