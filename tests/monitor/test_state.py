"""The live view built from AMI events (headers as Asterisk sends them, through the real
router), the merged board, and the chart history: pure, no servers."""

from __future__ import annotations

from monitor.board import Board
from monitor.history import History
from monitor.models import Delta, latest_only
from monitor.state import LiveState
from pbx.router import Router


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _live() -> tuple[Router, LiveState, list[Delta], Clock]:
    router, deltas, clock = Router("main"), [], Clock()
    return router, LiveState("main", router, deltas.append, clock=clock), deltas, clock


def _chan(event: str, uid: str, linked: str = "100.1", **h: str) -> dict[str, str]:
    return {"Event": event, "Linkedid": linked, "Uniqueid": uid, "Channel": f"PJSIP/trunk-{uid}", **h}


def test_a_call_shows_caller_flow_intent_contact_stage_then_leaves_the_view():
    router, live, deltas, _ = _live()
    router.process(_chan("Newchannel", "100.1", ChannelState="4", CallerIDNum="+14155550123", CallerIDName="Zoë"))
    for var, value in (("CALLCYCLE_FLOW", "screening"), ("CALLCYCLE_FLOW_NODE", "ask_need"),
                       ("CALLCYCLE_INTENT", "high_intent"), ("CALLCYCLE_CONTACT_ID", "42"),
                       ("CALLCYCLE_STAGE", "acquisition")):
        router.process(_chan("VarSet", "100.1", Variable=var, Value=value))
    router.process(_chan("Newstate", "100.1", ChannelState="6"))
    call = live.views["call"]["main:100.1"]
    assert (call["direction"], call["state"], call["flow"], call["flow_node"]) == ("inbound", "answered",
                                                                                  "screening", "ask_need")
    assert call["intent"] == ["high_intent"] and call["contact_id"] == "42" and call["stage"] == "acquisition"
    assert call["caller"] == "+14155550123" and call["caller_name"] == "Zoë" and call["answered_at"]
    live.annotate("100.1", {"flow_node": "transfer", "intent": ["callback"]})
    assert live.views["call"]["main:100.1"]["flow_node"] == "transfer"
    assert live.views["call"]["main:100.1"]["intent"] == ["callback", "high_intent"]
    router.process(_chan("Hangup", "100.1", Cause="16"))
    assert "main:100.1" not in live.views["call"]
    assert deltas[-1] == Delta("call", "main:100.1", None, deltas[-1].at) and deltas[-1].at
    assert live.flow_outcomes == {("screening", "callback,high_intent"): 1}


def test_events_that_change_nothing_shown_send_no_delta():
    router, live, deltas, _ = _live()
    router.process(_chan("Newchannel", "100.1", ChannelState="6"))
    before = len(deltas)
    router.process(_chan("VarSet", "100.1", Variable="CALLCYCLE_UNRELATED", Value="x"))
    router.process(_chan("DTMFBegin", "100.1", Digit="1", Direction="Received"))
    assert len(deltas) == before


def test_a_batch_of_events_builds_each_call_view_once_stamped_with_its_first_event():
    router, live, deltas, _ = _live()
    first = [_chan("Newchannel", "100.1", ChannelState="4", CallerIDNum="+14155550123"),
             _chan("VarSet", "100.1", Variable="CALLCYCLE_FLOW", Value="screening"),
             _chan("Newchannel", "200.1", "200.1", ChannelState="4")]
    router.feed(first)
    router.feed([_chan("Newstate", "100.1", ChannelState="6"),
                 _chan("VarSet", "100.1", Variable="CALLCYCLE_FLOW_NODE", Value="ask_need")])
    stamp = router._items[0][0]
    assert router.drain()
    assert [d.id for d in deltas] == ["main:100.1", "main:200.1"]   # in the order of their first change
    call = deltas[0]
    assert (call.data["state"], call.data["flow"], call.data["flow_node"]) == ("answered", "screening", "ask_need")
    assert call.at == stamp
    router.feed([_chan("Newstate", "200.1", "200.1", ChannelState="6"), _chan("Hangup", "200.1", "200.1", Cause="16")])
    assert router.drain()
    assert deltas[2:] == [Delta("call", "main:200.1", None, deltas[2].at)]   # gone: no view built for it


def test_queue_waiting_agent_connect_and_occupancy():
    router, live, _, clock = _live()
    member = {"Event": "QueueMemberStatus", "Queue": "sales", "Interface": "Local/agent1@sim-agent",
              "MemberName": "agent1", "Status": "1", "Paused": "0", "InCall": "0", "CallsTaken": "0"}
    router.process(member)
    router.process(_chan("Newchannel", "100.1", ChannelState="6"))
    router.process(_chan("QueueCallerJoin", "100.1", Queue="sales", Position="1", Count="1"))
    assert live.views["queue"]["main:sales"]["waiting"] == 1
    assert live.views["call"]["main:100.1"]["phase"] == "queued"
    clock.now += 10
    router.process(_chan("AgentConnect", "100.1", Queue="sales", Interface="Local/agent1@sim-agent",
                         MemberName="agent1", DestChannel="Local/agent1@sim-agent-0001;1"))
    router.process(_chan("QueueCallerLeave", "100.1", Queue="sales", Position="1", Count="0"))
    agent = live.views["agent"]["main:Local/agent1@sim-agent"]
    assert agent["state"] == "in_call" and agent["current_call"] == "main:100.1"
    call = live.views["call"]["main:100.1"]
    assert (call["phase"], call["agent"], call["agent_channel"]) == ("agent", "agent1", "Local/agent1@sim-agent-0001;1")
    assert live.views["queue"]["main:sales"]["waiting"] == 0 and live.views["queue"]["main:sales"]["answered"] == 1
    clock.now += 30
    router.process(_chan("AgentComplete", "100.1", Queue="sales", Interface="Local/agent1@sim-agent",
                         MemberName="agent1", TalkTime="30"))
    agent = live.views["agent"]["main:Local/agent1@sim-agent"]
    assert agent["state"] == "available" and agent["calls_handled"] == 1
    assert agent["occupancy"] == 0.75  # 30 s in a call out of 40 s staffed


def test_an_agent_complete_sent_after_the_calls_channels_went_still_counts_the_agents_call():
    router, live, _, clock = _live()
    router.process({"Event": "QueueMemberStatus", "Queue": "sales", "Interface": "Local/agent1@sim-agent",
                    "MemberName": "agent1", "Status": "1", "Paused": "0", "InCall": "0", "CallsTaken": "0"})
    router.process(_chan("Newchannel", "100.1", ChannelState="6"))
    router.process(_chan("AgentConnect", "100.1", Queue="sales", Interface="Local/agent1@sim-agent",
                         MemberName="agent1", DestChannel="Local/agent1@sim-agent-0001;1"))
    clock.now += 30
    router.process(_chan("Hangup", "100.1", Cause="16"))
    router.process({"Event": "AgentComplete", "Queue": "sales", "Interface": "Local/agent1@sim-agent",
                    "MemberName": "agent1", "HoldTime": "0", "TalkTime": "30", "Reason": "caller"})
    agent = live.views["agent"]["main:Local/agent1@sim-agent"]
    assert agent["state"] == "available" and agent["current_call"] is None and agent["calls_handled"] == 1


def test_a_paused_agent_shows_the_reason():
    router, live, _, _ = _live()
    router.process({"Event": "QueueMemberPause", "Queue": "sales", "Interface": "Local/agent2@sim-agent",
                    "Paused": "1", "PausedReason": "lunch"})
    agent = live.views["agent"]["main:Local/agent2@sim-agent"]
    assert agent["state"] == "paused" and agent["paused_reason"] == "lunch"


def test_a_spy_leg_marks_the_call_it_spies_on():
    router, live, _, _ = _live()
    router.process(_chan("Newchannel", "100.1", ChannelState="6"))
    router.process(_chan("Newchannel", "200.1", linked="200.1", ChannelState="6"))
    for var, value in (("CALLCYCLE_ATTEMPT_ID", "spy-abc"), ("CALLCYCLE_SPY_SUPERVISOR", "boss"),
                       ("CALLCYCLE_SPY_MODE", "listen"), ("CALLCYCLE_SPY_CALL", "main:100.1")):
        router.process(_chan("VarSet", "200.1", linked="200.1", Variable=var, Value=value))
    assert live.views["call"]["main:200.1"]["direction"] == "spy"
    assert live.views["call"]["main:100.1"]["spied_by"] == [{"supervisor": "boss", "mode": "listen"}]
    router.process(_chan("Hangup", "200.1", linked="200.1", Cause="16"))
    assert live.views["call"]["main:100.1"]["spied_by"] == []


def test_tick_picks_up_calls_a_resync_discovered_and_drops_vanished_ones():
    router, live, _, _ = _live()
    router.calls.resync([{"Linkedid": "300.1", "Uniqueid": "300.1", "Channel": "PJSIP/x-1", "ChannelState": "6"}])
    assert "main:300.1" not in live.views["call"]
    live.tick()
    assert live.views["call"]["main:300.1"]["state"] == "answered"
    router.calls.begin_outage()
    router.calls.resync([])
    live.tick()
    assert "main:300.1" not in live.views["call"]


def test_board_keeps_entities_per_origin_and_forgets_a_gone_instance():
    told: list[tuple[int, Delta]] = []
    board = Board(lambda seq, d: told.append((seq, d)))
    board.apply(Delta("campaign", "c", {"lines": 1}), "a")
    board.apply(Delta("campaign", "c", {"lines": 1}), "a")  # no change: nobody is told
    board.apply(Delta("call", "m:1", {"id": "m:1", "duration": 1}), "b")
    board.apply(Delta("call", "m:1", {"id": "m:1", "duration": 2}), "b")  # only a volatile field
    assert [s for s, _ in told] == [1, 2]
    board.apply(Delta("call", "m:1", None), "a")  # not a's to remove
    assert board.get("call", "m:1")
    board.replace_origin("a", {"campaign": {"d": {"lines": 2}}})
    assert board.get("campaign", "c") is None and board.get("campaign", "d") == {"lines": 2}
    assert board.forget_origin("b") == 1 and board.get("call", "m:1") is None


def test_history_gives_abandon_rate_over_the_window_and_occupancy():
    h = History(interval=10, window=60)
    agents = {"a": {"state": "in_call"}, "b": {"state": "available"}, "c": {"state": "paused"}}
    p = h.sample(0, {"queue": {"q": {"answered": 9, "abandoned": 1}}, "campaign": {}, "agent": agents})
    assert p["abandon_rate"] == 0.1 and p["occupancy"] == 0.5
    p = h.sample(70, {"queue": {"q": {"answered": 19, "abandoned": 1}},
                      "campaign": {"c": {"answered": 10, "abandoned": 0}}, "agent": {}})
    assert p["abandon_rate"] == 0.0 and p["occupancy"] is None


def test_a_flush_sends_each_entity_once_in_its_latest_state_stamped_with_its_oldest_change():
    pending = [(1, Delta("call", "a", {"state": "ringing"}, 10.0)), (2, Delta("call", "b", {"state": "up"}, 11.0)),
               (3, Delta("call", "a", {"state": "up"}, 12.0)), (4, Delta("agent", "a", {"state": "busy"}, 13.0))]
    kept = latest_only(pending)
    assert [(seq, d.kind, d.id, d.data, d.at) for seq, d in kept] == [
        (2, "call", "b", {"state": "up"}, 11.0), (3, "call", "a", {"state": "up"}, 10.0),
        (4, "agent", "a", {"state": "busy"}, 13.0)]
    assert latest_only(pending[:2]) == pending[:2]   # nothing superseded: the list as it was
