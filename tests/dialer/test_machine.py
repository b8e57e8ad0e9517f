"""State tables of campaigns, attempts and leads, and the decisions made from them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dialer.machine import (ATTEMPT_TRANSITIONS, CAMPAIGN_ACTIONS, CallTrace, Signal, after_attempt, after_refusal,
                            campaign_action, disposition)
from dialer.unseen import complete_unseen, ended_family
from dialer.models import AttemptState as A, CampaignSettings, CampaignState as C, Disposition as D

NOW = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)


def test_campaign_actions_follow_the_table_and_refuse_the_rest():
    assert campaign_action(C.DRAFT, "start") == (C.RUNNING, "campaign.started")
    assert campaign_action(C.RUNNING, "pause") == (C.PAUSED, "campaign.paused")
    assert campaign_action(C.PAUSED, "resume") == (C.RUNNING, "campaign.resumed")
    assert campaign_action(C.PAUSED, "stop") == (C.STOPPED, "campaign.finished")
    assert campaign_action(C.RUNNING, "finish") == (C.FINISHED, "campaign.finished")
    for state in C:
        for action, (allowed, _to, _event) in CAMPAIGN_ACTIONS.items():
            assert (campaign_action(state, action) is not None) == (state in allowed)
    assert campaign_action(C.STOPPED, "start") is None and campaign_action(C.FINISHED, "resume") is None


def trace(*signals: Signal) -> CallTrace:
    t = CallTrace("a-1", 100.0)
    for i, s in enumerate(signals):
        t.signal(s, 101.0 + i)
    return t


def test_an_attempt_moves_only_along_the_table():
    t = trace(Signal.RING, Signal.ANSWER, Signal.QUEUE, Signal.CONNECT)
    assert t.state is A.CONNECTED and t.answered_at == 102.0 and t.connected_at == 104.0
    assert not t.signal(Signal.MACHINE, 105.0) and t.refused_signals == 1   # too late to be a machine
    assert t.signal(Signal.END, 106.0) and t.ended and t.before_end is A.CONNECTED
    assert not t.signal(Signal.ANSWER, 107.0)                                # nothing after the end
    assert all(to is A.ENDED for (frm, sig), to in ATTEMPT_TRANSITIONS.items() if sig is Signal.END)


@pytest.mark.parametrize("signals, extra, expected", [
    ((Signal.RING, Signal.ANSWER, Signal.QUEUE, Signal.CONNECT, Signal.END), {}, D.ANSWERED),
    ((Signal.ANSWER, Signal.QUEUE, Signal.ABANDON, Signal.END), {}, D.ABANDONED),
    ((Signal.ANSWER, Signal.MACHINE, Signal.END), {}, D.MACHINE),
    ((Signal.RING, Signal.END), {"originate_reason": "busy"}, D.BUSY),
    ((Signal.RING, Signal.END), {"originate_reason": "no_answer"}, D.NO_ANSWER),
    ((Signal.END,), {"originate_reason": "congestion"}, D.CONGESTION),
    ((Signal.RING, Signal.END), {"causes": [0, 17]}, D.BUSY),
    ((Signal.RING, Signal.END), {"causes": [34]}, D.CONGESTION),
    ((Signal.RING, Signal.END), {"causes": [19]}, D.NO_ANSWER),
    # "hangup" only says the far end ended it before an answer: the cause says why
    ((Signal.END,), {"originate_reason": "hangup", "causes": [1]}, D.FAILED),       # unallocated number
    ((Signal.RING, Signal.END), {"originate_reason": "hangup", "causes": [21]}, D.BUSY),   # rejected
    ((Signal.RING, Signal.END), {"originate_reason": "hangup", "causes": [34]}, D.CONGESTION),
    ((Signal.RING, Signal.END), {"originate_reason": "hangup", "causes": [16]}, D.NO_ANSWER),
    ((Signal.RING, Signal.END), {}, D.FAILED),
    ((Signal.RING, Signal.END), {"end_reason": "vanished_during_ami_outage"}, D.UNKNOWN),
    ((Signal.ANSWER, Signal.END), {"end_reason": "unseen"}, D.UNKNOWN),
    ((Signal.ANSWER, Signal.END), {}, D.ANSWERED),   # agentless flow or AMD: a person hung up
])
def test_the_disposition_of_an_ended_attempt(signals, extra, expected):
    t = CallTrace("a-1", 100.0, **extra)
    for i, s in enumerate(signals):
        t.signal(s, 101.0 + i)
    assert disposition(t) is expected


def test_a_person_who_hangs_up_waiting_is_abandoned_only_after_two_seconds():
    quick = CallTrace("a", 0.0)
    quick.signal(Signal.ANSWER, 1.0), quick.signal(Signal.QUEUE, 2.0), quick.signal(Signal.END, 3.5)
    assert disposition(quick) is D.ANSWERED
    slow = CallTrace("b", 0.0)
    slow.signal(Signal.ANSWER, 1.0), slow.signal(Signal.QUEUE, 2.0), slow.signal(Signal.END, 4.0)
    assert disposition(slow) is D.ABANDONED


def unseen(*signals: Signal, reason: str = "vanished_during_ami_outage") -> CallTrace:
    """An attempt whose last events were missed: AMI came back at 200 s and the call was gone."""
    t = trace(*signals)
    t.end_reason = reason
    t.signal(Signal.END, 200.0)
    return t


@pytest.mark.parametrize("signals, value, expected, agent", [
    # joined the queue, then the connection dropped; an agent took the call meanwhile
    ((Signal.ANSWER, Signal.QUEUE), "101:150:agent::140:agent3", D.ANSWERED, "agent3"),
    ((Signal.ANSWER,), "101:150:agent::140:agent3", D.ANSWERED, "agent3"),   # AMD, then an agent
    ((Signal.ANSWER, Signal.QUEUE), "101:150:abandoned:played::", D.ABANDONED, None),
    ((Signal.ANSWER,), "101:150:machine:::", D.MACHINE, None),
    ((Signal.RING,), "110:150:agent::140:agent1", D.ANSWERED, "agent1"),    # even the answer was missed
    # left the queue without the safe-harbour message: within the 2 s, or to an agent of a
    # queue without setinterfacevar; either way not an abandon
    ((Signal.ANSWER, Signal.QUEUE), "101:103:ended:::", D.ANSWERED, None),
    ((Signal.ANSWER, Signal.QUEUE), "101:180:ended:::", D.ANSWERED, None),
    ((Signal.ANSWER,), "101:150:ended:::", D.ANSWERED, None),             # hung up before the queue
])
def test_an_attempt_that_ended_unseen_is_completed_from_what_the_dialplan_kept(signals, value, expected, agent):
    t = unseen(*signals)
    before = disposition(t)
    assert complete_unseen(t, value)
    assert disposition(t) is expected and t.agent == agent
    assert t.ended_at == float(value.split(":")[1]) and t.answered_at is not None
    assert t.safe_harbour == ("played" if expected is D.ABANDONED else None)
    assert t.connected_at == (140.0 if agent else None)   # the queue join plus its hold time
    # before: every such call was abandoned (waited "100 s" in the queue) or unknown
    assert before in (D.ABANDONED, D.UNKNOWN)


def test_a_malformed_dialplan_record_or_an_attempt_seen_to_its_end_changes_nothing():
    for value in ("", "x:y:agent:::a", "101:150:transferred:::", "101", "101:150:agent:agent3",
                  "101:150:agent::agent3", "101:150:agent::soon:agent3"):
        t = unseen(Signal.ANSWER, Signal.QUEUE)
        assert not complete_unseen(t, value)
        assert disposition(t) is D.ABANDONED and t.ended_at == 200.0
    seen = trace(Signal.ANSWER, Signal.QUEUE, Signal.ABANDON, Signal.END)
    assert not complete_unseen(seen, "101:150:agent::140:agent3") and disposition(seen) is D.ABANDONED
    assert ended_family(datetime(2026, 1, 5, 23, 59, 59, tzinfo=timezone.utc).timestamp()) == "callcycle-ended-20260105"


def test_an_attempt_that_lived_through_a_resync_takes_the_dialplans_record_even_when_its_end_was_seen():
    """Waiting in the queue when the connection dropped, connected meanwhile, its hang-up
    seen after the reconnect: without the record it would count as 98 s in the queue."""
    t = trace(Signal.ANSWER, Signal.QUEUE)
    t.resynced = True
    t.signal(Signal.END, 200.0)
    assert disposition(t) is D.ABANDONED
    assert complete_unseen(t, "101:199:agent::120:agent2")
    assert disposition(t) is D.ANSWERED and t.agent == "agent2" and t.end_reason is None
    assert (t.connected_at, t.ended_at) == (120.0, 200.0)   # a seen end keeps its time


async def test_the_engine_leaves_its_runners_time_to_wind_down_after_the_calls_grace():
    """The calls get most of the shutdown grace; a runner whose calls take all of it still
    has time to record them and let go before the engine gives up on it."""
    import asyncio
    from types import SimpleNamespace

    from dialer.engine import Engine
    from dialer.observer import AttemptObserver

    engine = Engine(SimpleNamespace(observer=AttemptObserver()), None, None)  # type: ignore[arg-type]
    runner, let_go = SimpleNamespace(stopped=asyncio.Event(), grace=0.0), []

    async def stop(grace: float) -> None:
        runner.grace = grace
        runner.stopped.set()

    async def run() -> None:
        await runner.stopped.wait()
        await asyncio.sleep(runner.grace)    # the live calls take all the time they are given
        await asyncio.sleep(0.05)            # recording them, releasing the lease
        let_go.append(True)

    runner.stop = stop
    engine.runners[1], engine._tasks[1] = runner, asyncio.create_task(run())
    await engine.stop(1.0)
    assert let_go and 0.5 < runner.grace < 1.0


def test_leads_are_retried_per_disposition_until_a_cap_or_the_campaign_end():
    s = CampaignSettings(max_attempts=3, retry_delays={**CampaignSettings().retry_delays, "busy": 60})
    assert after_attempt(D.ANSWERED, 1, s, NOW).final_disposition == "answered"
    assert after_attempt(D.BUSY, 1, s, NOW).next_at == NOW + timedelta(seconds=60)
    capped = after_attempt(D.BUSY, 3, s, NOW)
    assert capped.done and (capped.final_disposition, capped.final_reason) == ("busy", "max_attempts")
    short = CampaignSettings(retry_delays={**s.retry_delays, "abandoned": 5})
    assert after_attempt(D.ABANDONED, 1, short, NOW).next_at == NOW + timedelta(hours=72)   # never sooner
    ending = CampaignSettings(ends_at=(NOW + timedelta(minutes=30)).isoformat())
    closed = after_attempt(D.NO_ANSWER, 1, ending, NOW)
    assert closed.done and closed.final_reason == "campaign_ends"
    assert after_attempt(D.REFUSED, 1, s, NOW).final_reason == "dnc"


def test_a_refused_lead_waits_for_its_retry_time_or_closes():
    s = CampaignSettings()
    assert after_refusal("dnc", None, s).done
    later = after_refusal("calling_window", NOW + timedelta(hours=3), s)
    assert not later.done and later.next_at == NOW + timedelta(hours=3)
    ending = CampaignSettings(ends_at=(NOW + timedelta(hours=1)).isoformat())
    closed = after_refusal("calling_window", NOW + timedelta(hours=3), ending)
    assert closed.done and (closed.final_disposition, closed.final_reason) == ("refused", "calling_window")


def test_a_change_in_one_of_its_calls_wakes_the_campaigns_runner_at_once():
    import asyncio
    from types import SimpleNamespace

    from dialer.engine import Engine
    from dialer.observer import AttemptObserver

    observer = AttemptObserver()
    engine = Engine(SimpleNamespace(observer=observer), None, None)  # type: ignore[arg-type]
    seven, eight = SimpleNamespace(wake=asyncio.Event()), SimpleNamespace(wake=asyncio.Event())
    engine.runners.update({7: seven, 8: eight})
    t = CallTrace("d7-41-0123456789ab", 100.0)
    observer._signal(t, Signal.RING)                       # what the router's events do
    assert seven.wake.is_set() and not eight.wake.is_set()
    observer._signal(CallTrace("ivrtest-1", 100.0), Signal.RING)   # not a campaign's: ignored


@pytest.mark.parametrize("reason, expected", [
    ("no_answer", D.NO_ANSWER), ("busy", D.BUSY), ("congestion", D.CONGESTION),
    ("answered", D.FAILED),     # the agent answered, then hung up before the customer did
    (None, D.FAILED),           # the agent's phone never answered: the customer was not dialed
    ("hangup", D.FAILED),       # the agent refused the call
])
def test_an_agent_first_call_the_customer_never_answered_takes_the_dials_status(reason, expected):
    t = CallTrace("a", 0.0, agent_first=True, originate_reason=reason)
    t.causes.append(16)        # the agent's channel ended normally: it says nothing of the customer
    t.signal(Signal.END, 5.0)
    assert disposition(t) is expected
