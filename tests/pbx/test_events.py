import pytest

from pbx import events as ev
from pbx.actions import check_dial_string, parse_agi_result
from pbx.client import backoff
from pbx.errors import UnsafeDialString
from pbx.parsing import MalformedEvent, parse


def headers(**kw):
    return {k.replace("_", "-") if k == "Cause_txt" else k: v for k, v in kw.items()}


def test_known_events_become_frozen_typed_events_with_converted_fields():
    e = parse({"Event": "Hangup", "Channel": "Local/s@sim-customer-0001;1", "Uniqueid": "1.1",
               "Linkedid": "1.0", "Cause": "17", "Cause-txt": "User busy"})
    assert e == ev.Hangup("1.0", "1.1", "Local/s@sim-customer-0001;1", 17, "User busy")
    with pytest.raises(AttributeError):
        e.cause = 16  # type: ignore[misc]


def test_a_missing_required_header_is_named_not_turned_into_an_empty_string():
    with pytest.raises(MalformedEvent) as err:
        parse({"Event": "DTMFEnd", "Channel": "c", "Uniqueid": "u", "Linkedid": "l", "Direction": "Received"})
    assert err.value.header == "Digit" and err.value.event == "DTMFEnd"
    with pytest.raises(MalformedEvent, match="Linkedid"):
        parse({"Event": "Newchannel", "Channel": "c", "Uniqueid": "u", "ChannelState": "0"})
    with pytest.raises(MalformedEvent, match="Cause"):
        parse({"Event": "Hangup", "Channel": "c", "Uniqueid": "u", "Linkedid": "l", "Cause": "x"})


def test_an_agent_complete_sent_after_its_channels_were_gone_still_names_the_member():
    # as the sandbox sent it when the caller and the agent hung up at once
    e = parse({"Event": "AgentComplete", "Privilege": "agent,all", "Queue": "sales",
               "Interface": "Local/agent1@sim-agent", "MemberName": "agent1", "HoldTime": "0",
               "TalkTime": "3", "Reason": "caller"})
    assert e == ev.AgentCompleteDetached("sales", "Local/agent1@sim-agent", "agent1", 0, 3, "caller")
    with pytest.raises(MalformedEvent, match="Linkedid"):   # a channel without its call is still malformed
        parse({"Event": "AgentComplete", "Channel": "c", "Queue": "sales", "Interface": "i"})


def test_unknown_events_and_other_peoples_variables_are_skipped():
    assert parse({"Event": "RTCPSent", "Channel": "c"}) is None
    base = {"Event": "VarSet", "Channel": "c", "Uniqueid": "u", "Linkedid": "l"}
    assert parse({**base, "Variable": "BRIDGEPEER", "Value": "x"}) is None
    assert parse({**base, "Variable": "CALLCYCLE_ATTEMPT_ID", "Value": "a1"}) == ev.VarSet(
        "l", "u", "c", "CALLCYCLE_ATTEMPT_ID", "a1")


def test_dial_of_an_originate_without_caller_is_keyed_by_the_destination():
    e = parse({"Event": "DialBegin", "DestChannel": "PJSIP/x-01", "DestUniqueid": "9.1",
               "DestLinkedid": "9.0", "DialString": "x"})
    assert (e.linkedid, e.uniqueid, e.channel) == ("9.0", "9.1", "PJSIP/x-01")


def test_async_agi_env_and_result_are_url_decoded():
    start = parse({"Event": "AsyncAGIStart", "Channel": "c", "Uniqueid": "u", "Linkedid": "l",
                   "Env": "agi_request%3A%20async%0Aagi_callerid%3A%20%2B14155550123%0A"})
    assert start.env == {"agi_request": "async", "agi_callerid": "+14155550123"}
    r = parse_agi_result("200%20result%3D49%20(timeout)%0A")
    assert (r.code, r.result, r.digit, r.data) == (200, "49", "1", "timeout")
    assert parse_agi_result("200 result=0").digit is None
    # a variable's value holding "%41" reaches the flow as "%41", from either path
    raw = "200%20result%3D1%20(https%3A%2F%2Fx%2F%2541)%0A"
    assert parse_agi_result(raw).data == "https://x/%41"
    typed = parse({"Event": "AsyncAGIExec", "Channel": "c", "Uniqueid": "u", "Linkedid": "l", "CommandId": "1",
                   "Result": raw})
    assert parse_agi_result(typed.result, encoded=False).data == "https://x/%41"


async def test_an_agi_result_that_comes_as_an_event_is_decoded_once():
    import asyncio

    from ivr.channel import AgiChannel

    chan = AgiChannel(None, "l", "c", asyncio.Event(), 1.0, 1.0)  # type: ignore[arg-type]
    waiter = chan._awaited["ivr-7"] = asyncio.get_running_loop().create_future()
    chan.on_exec(parse({"Event": "AsyncAGIExec", "Channel": "c", "Uniqueid": "u", "Linkedid": "l",
                        "CommandId": "ivr-7", "Result": "200%20result%3D1%20(50%2541)%0A"}))
    assert waiter.result().data == "50%41"


def test_dial_strings_with_separators_are_refused():
    assert check_dial_string("Local/s@sim-customer") == "Local/s@sim-customer"
    for bad in ("Local/s@a&PJSIP/evil", "PJSIP/1,tT", "PJSIP/a/b", "PJSIP/x y", "Foo/x", "PJSIP/x\r\nAction: x"):
        with pytest.raises(UnsafeDialString):
            check_dial_string(bad)


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    assert backoff(1, 0.25, 30, rng=lambda: 0.0) == 0.125
    assert backoff(1, 0.25, 30, rng=lambda: 1.0) == 0.25
    assert backoff(4, 0.25, 30, rng=lambda: 1.0) == 2.0
    assert backoff(50, 0.25, 30, rng=lambda: 1.0) == 30
    assert backoff(50, 0.25, 30, rng=lambda: 0.0) == 15
