"""Routing: every call's events reach its handler in order; tables follow the events."""

import asyncio

from pbx import events as ev
from pbx.calls import CallState
from pbx.router import Outage, Resync, ResyncStart, Router


def chan(event, linkedid, uniqueid, **extra):
    return {"Event": event, "Channel": f"Local/s@sim-{uniqueid}", "Uniqueid": uniqueid, "Linkedid": linkedid, **extra}


def call_events(linkedid: str, digit: str = "1"):
    a, b = f"{linkedid}", f"{linkedid}.2"
    return [
        chan("Newchannel", linkedid, a, ChannelState="0", CallerIDNum="+14155550123", CallerIDName="Zoë"),
        chan("Newchannel", linkedid, b, ChannelState="0"),
        chan("Newstate", linkedid, a, ChannelState="6"),
        chan("VarSet", linkedid, a, Variable="CALLCYCLE_FLOW", Value="screening"),
        chan("VarSet", linkedid, a, Variable="BRIDGEPEER", Value="ignored"),
        chan("DTMFEnd", linkedid, a, Digit=digit, Direction="Received", DurationMs="120"),
        chan("Hangup", linkedid, b, Cause="16"),
        chan("Hangup", linkedid, a, Cause="16", **{"Cause-txt": "Normal Clearing"}),
    ]


def test_events_of_interleaved_calls_reach_each_calls_handler_in_order():
    router = Router("main")
    seen: dict[str, list] = {}
    router.add_call_factory(lambda call, event: (lambda c, e: seen.setdefault(c.linkedid, []).append(e)))
    one, two = call_events("100.1", "1"), call_events("200.1", "2")
    for a, b in zip(one, two):
        router.feed([a, b])
    router.drain()
    for linkedid, digit in (("100.1", "1"), ("200.1", "2")):
        kinds = [type(e).__name__ for e in seen[linkedid]]
        assert kinds == ["Newchannel", "Newchannel", "Newstate", "VarSet", "DTMFEnd", "Hangup", "Hangup", "CallEnded"]
        assert seen[linkedid][4].digit == digit
        ended = seen[linkedid][-1]
        assert (ended.reason, ended.cause) == ("hangup", 16)
    assert len(router.calls) == 0
    assert router.stats["typed"] == 14 and router.stats["events"] == 16


def test_call_state_follows_the_channels_and_a_late_event_does_not_resurrect_a_call():
    router = Router("main")
    states = []
    router.add_listener(lambda call, e: states.append(call.state if call else None))
    events = call_events("300.1")
    router.feed(events[:3])
    router.drain()
    call = router.calls.get("300.1")
    assert call.state is CallState.ANSWERED and call.caller.callerid_name == "Zoë"
    router.feed(events[3:])
    router.drain()
    assert states[-1] is CallState.ENDED
    assert call.variables == {"CALLCYCLE_FLOW": "screening"} and call.digits == ["1"]
    router.feed([chan("VarSet", "300.1", "300.1", Variable="CALLCYCLE_X", Value="late")])
    router.drain()
    assert router.calls.get("300.1") is None


def test_a_failing_handler_is_logged_and_does_not_stop_other_calls():
    router = Router("main")
    good = []

    def factory(call, event):
        if call.linkedid == "bad":
            def boom(c, e):
                raise RuntimeError("handler bug")
            return boom
        return lambda c, e: good.append(e)

    router.add_call_factory(factory)
    router.feed(call_events("bad") + call_events("good"))
    router.drain()
    assert router.stats["handler_errors"] == 8
    assert len(good) == 8


def test_malformed_events_are_counted_and_skipped():
    router = Router("main")
    router.feed([{"Event": "Hangup", "Channel": "c", "Uniqueid": "u", "Linkedid": "l"}])
    router.drain()
    assert router.stats["malformed"] == 1 and len(router.calls) == 0


def test_resync_ends_calls_that_vanished_during_an_outage_but_keeps_live_and_new_ones():
    router = Router("main")
    ended = []
    router.add_listener(lambda call, e: ended.append(e) if isinstance(e, ev.CallEnded) else None)
    router.feed([chan("Newchannel", "gone", "gone", ChannelState="6"),
                 chan("Newchannel", "alive", "alive", ChannelState="6")])
    router.control(Outage("socket closed"))
    # a call that started after the reconnect, before the snapshot answer came back
    router.feed([chan("Newchannel", "fresh", "fresh", ChannelState="4")])
    router.control(Resync(
        channels=[{"Event": "CoreShowChannel", "Channel": "x", "Uniqueid": "alive", "Linkedid": "alive",
                   "ChannelState": "6", "BridgeId": ""},
                  {"Event": "CoreShowChannel", "Channel": "y", "Uniqueid": "other", "Linkedid": "other",
                   "ChannelState": "6", "BridgeId": "b1"}],
        queues=[{"Event": "QueueMember", "Queue": "sales", "Location": "Local/agent1@sim-agent", "Status": "1",
                 "Paused": "0", "InCall": "0"}]))
    router.drain()
    assert [e.linkedid for e in ended] == ["gone"]
    assert ended[0].reason == "vanished_during_ami_outage"
    assert set(router.calls.calls) == {"alive", "fresh", "other"}
    assert router.calls.get("other").state is CallState.BRIDGED
    assert router.queues.queues["sales"].available_agents == 1


def test_what_happens_while_the_snapshot_is_listed_wins_over_the_snapshot():
    # the three lists take a while; a hang-up, a new leg and a caller leaving the queue
    # reach the router before the snapshot is applied and must not be undone by it
    router = Router("main")
    ended = []
    router.add_listener(lambda call, e: ended.append(e.linkedid) if isinstance(e, ev.CallEnded) else None)
    router.feed([chan("Newchannel", "A", "A", ChannelState="6"), chan("Newchannel", "B", "B", ChannelState="6"),
                 chan("Newchannel", "B", "B.2", ChannelState="6"),
                 chan("QueueCallerJoin", "B", "B", Queue="sales", Position="1", Count="1")])
    router.control(Outage("socket closed"))
    router.control(ResyncStart())
    snapshot = [{"Event": "CoreShowChannel", "Channel": "x", "Uniqueid": u, "Linkedid": lid, "ChannelState": "6",
                 "BridgeId": ""} for lid, u in (("A", "A"), ("B", "B"), ("B", "B.2"))]
    queues = [{"Event": "QueueParams", "Queue": "sales"},
              {"Event": "QueueEntry", "Queue": "sales", "Linkedid": "B", "Uniqueid": "B", "Wait": "3"}]
    router.feed([chan("Hangup", "A", "A", Cause="16"),                          # A ends
                 chan("Hangup", "B", "B.2", Cause="16"),                        # a leg of B ends
                 chan("Newchannel", "B", "B.3", ChannelState="5"),              # and a new one rings
                 chan("QueueCallerLeave", "B", "B", Queue="sales", Position="1", Count="0")])
    router.control(Resync(channels=snapshot, queues=queues))
    router.drain()
    assert ended == ["A"] and set(router.calls.calls) == {"B"}
    assert set(router.calls.get("B").channels) == {"B", "B.3"}
    assert router.queues.queues["sales"].waiting == {}
    # the next resync, with nothing in between, takes the snapshot as it is
    router.control(ResyncStart())
    router.control(Resync(channels=snapshot[1:2], queues=queues))
    router.drain()
    assert set(router.calls.get("B").channels) == {"B"} and set(router.queues.queues["sales"].waiting) == {"B"}


def test_a_call_that_began_before_we_connected_is_found_with_its_attempt_and_its_end_is_seen():
    # A standby instance connects mid-campaign: the call's VarSet went to nobody, the resync's
    # Status brings the attempt id, and a dialer observer ties the call to its attempt.
    from dialer.observer import AttemptObserver

    router, observer, found = Router("main"), AttemptObserver(), []
    router.add_listener(observer)
    router.add_listener(lambda call, e: found.append(e.linkedid) if isinstance(e, ev.CallFound) else None)
    router.feed([chan("Newstate", "seen", "seen", ChannelState="6")])   # an event before the snapshot
    router.control(Resync(
        channels=[{"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-seen", "Uniqueid": "seen", "Linkedid": "seen",
                   "ChannelState": "6", "BridgeId": ""},
                  {"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-new", "Uniqueid": "new", "Linkedid": "new",
                   "ChannelState": "5", "BridgeId": ""},
                  {"Event": "CoreShowChannel", "Channel": "PJSIP/trunk-plain", "Uniqueid": "plain",
                   "Linkedid": "plain", "ChannelState": "6", "BridgeId": ""}],
        queues=[], variables={"seen": {"CALLCYCLE_ATTEMPT_ID": "d1-1-a"}, "new": {"CALLCYCLE_ATTEMPT_ID": "d1-2-b"}}))
    router.drain()
    assert sorted(found) == ["new", "plain", "seen"]
    assert router.calls.get("seen").variables["CALLCYCLE_ATTEMPT_ID"] == "d1-1-a"
    assert observer.get("d1-1-a").linkedid == "seen" and observer.get("d1-2-b").linkedid == "new"
    router.feed([chan("Hangup", "new", "new", Cause="17")])
    router.drain()
    assert observer.get("d1-2-b").ended and observer.get("d1-2-b").causes == [17]
    router.control(Resync(channels=[], queues=[], variables={}))   # found once, not at every resync
    router.drain()
    assert sorted(found) == ["new", "plain", "seen"]


def test_a_waiting_call_found_bridged_at_the_resync_was_taken_by_an_agent_while_nobody_listened():
    """Two of our calls wait in the queue when the connection drops. At the resync one is
    bridged (an agent took it); the other's far half is bridged with the carrier (a Local
    trunk that dials on), which is no agent. The dialer learns which is which."""
    from dialer.machine import Signal, disposition
    from dialer.models import AttemptState as A, Disposition as D
    from dialer.observer import AttemptObserver

    router, observer = Router("main"), AttemptObserver(clock=lambda: 150.0)
    router.add_listener(observer)
    for linkedid, attempt in (("T", "d1-1-a"), ("N", "d1-2-b")):
        router.feed([chan("Newchannel", linkedid, linkedid, ChannelState="0"),
                     chan("VarSet", linkedid, linkedid, Variable="CALLCYCLE_ATTEMPT_ID", Value=attempt),
                     chan("Newchannel", linkedid, f"{linkedid}.2", ChannelState="0"),
                     chan("Newstate", linkedid, linkedid, ChannelState="6"),
                     chan("QueueCallerJoin", linkedid, linkedid, Queue="sales", Position="1", Count="1")])
    router.drain()
    assert observer.get("d1-1-a").state is observer.get("d1-2-b").state is A.WAITING
    router.control(Outage("cut"))
    router.control(ResyncStart())

    def row(linkedid, uniqueid, bridge):
        return {"Event": "CoreShowChannel", "Channel": f"Local/s@sim-{uniqueid}", "Uniqueid": uniqueid,
                "Linkedid": linkedid, "ChannelState": "6", "BridgeId": bridge}
    router.control(Resync(channels=[row("T", "T", "b1"), row("T", "T.2", ""), row("T", "agent", "b1"),
                                    row("N", "N", ""), row("N", "N.2", "b2"), row("N", "carrier", "b2")],
                          queues=[], variables={}))
    router.drain()
    taken, waiting = observer.get("d1-1-a"), observer.get("d1-2-b")
    assert taken.state is A.CONNECTED and taken.connected_at == 150.0 and taken.resynced
    assert waiting.state is A.WAITING and waiting.resynced
    taken.signal(Signal.END, 200.0)
    assert disposition(taken) is D.ANSWERED   # not 98 s in the queue for nobody
    # a second outage: the trace now knows every channel of its call, still only ours counts;
    # and a call whose first channel the snapshot lacks tells us nothing
    router.control(Outage("cut again"))
    router.control(ResyncStart())
    router.control(Resync(channels=[row("N", "N", ""), row("N", "N.2", "b2"), row("N", "carrier", "b2")],
                          queues=[], variables={}))
    router.drain()
    assert waiting.state is A.WAITING
    router.control(Outage("and again"))
    router.control(ResyncStart())
    router.control(Resync(channels=[row("N", "N.2", "b2"), row("N", "carrier", "b2")], queues=[], variables={}))
    router.drain()
    assert waiting.state is A.WAITING


def test_an_agent_complete_without_channels_ends_the_agents_call_for_the_dialer_and_is_not_malformed():
    from dialer.observer import AttemptObserver

    now = [1000.0]
    router, observer = Router("main"), AttemptObserver(clock=lambda: now[0])
    router.add_listener(observer)
    detached = {"Event": "AgentComplete", "Queue": "sales", "Interface": "Local/agent1@sim-agent",
                "MemberName": "agent1", "HoldTime": "0", "TalkTime": "30", "Reason": "caller"}
    observer.agent_started["agent1"] = 970.0    # connected 30 s ago: the call that ended
    router.feed([detached])
    router.drain()
    assert "agent1" not in observer.agent_started
    assert router.stats["malformed"] == 0 and router.stats["typed"] == 1
    observer.agent_started["agent1"] = 999.0    # already on a newer call: that one is kept
    router.feed([detached])
    router.drain()
    assert observer.agent_started["agent1"] == 999.0


def test_backpressure_pauses_reading_above_high_water_and_resumes_below_low_water():
    router = Router("main", high_water=10)
    calls = []
    router.pause_reading = calls.append
    router.feed([chan("Newchannel", str(i), str(i), ChannelState="0") for i in range(11)])
    assert calls == [True]
    router.drain()
    assert calls == [True, False]


def test_queue_members_added_and_removed_at_runtime_follow_the_events():
    router = Router("main")
    router.feed([{"Event": "QueueMemberAdded", "Queue": "sales", "Interface": "Local/agent9@sim-agent",
                  "MemberName": "agent9", "Status": "1", "Paused": "0"}])
    router.drain()
    assert router.queues.queues["sales"].available_agents == 1
    router.feed([{"Event": "QueueMemberRemoved", "Queue": "sales", "Interface": "Local/agent9@sim-agent"}])
    router.drain()
    assert router.queues.queues["sales"].members == {}


async def test_a_long_burst_is_processed_in_slices_that_let_the_loop_run_in_between() -> None:
    """What the first events of a burst cause goes out before the whole burst is processed."""
    router = Router("main", slice_s=0.0)   # every slice ends at its first clock check
    seen: list[tuple[str, int]] = []
    router.add_listener(lambda call, event: seen.append(("event", len(seen))))
    burst = [chan("Newchannel", f"1.{i}", f"1.{i}", ChannelState="0") for i in range(40)]
    loop_turns: list[int] = []

    async def other_task() -> None:
        while len(seen) < 40:
            loop_turns.append(len(seen))
            await asyncio.sleep(0)

    router.feed(burst)
    task = asyncio.create_task(router.run())
    await asyncio.wait_for(other_task(), 5)
    task.cancel()
    assert len(seen) == 40 and router.backlog == 0
    # the other task ran between slices of 16 events: not only before and after the burst
    assert any(0 < n < 40 for n in loop_turns), loop_turns
    assert [n for _kind, n in seen] == list(range(40))   # in order


def test_a_channel_given_another_linkedid_moves_to_that_call_and_its_old_call_ends():
    # attended transfer: bridged with the customer, the colleague's channel takes the customer
    # call's (older) Linkedid; the consult call must end, not linger as a ghost
    router = Router("main")
    ended = []
    router.add_listener(lambda call, e: ended.append((e.linkedid, e.reason)) if isinstance(e, ev.CallEnded) else None)
    router.feed([chan("Newchannel", "A", "A", ChannelState="6"), chan("Newchannel", "C", "C", ChannelState="6"),
                 chan("BridgeEnter", "A", "C", BridgeUniqueid="b1")])
    router.drain()
    assert ended == [("C", "linkedid_changed")] and set(router.calls.get("A").channels) == {"A", "C"}
    assert router.calls.by_uniqueid("C") is router.calls.get("A")
    router.feed([chan("Hangup", "A", "C", Cause="16"), chan("Hangup", "A", "A", Cause="16")])
    router.drain()
    assert ended[-1] == ("A", "hangup") and len(router.calls) == 0
