"""The interpreter, a pure state machine: every node type, retries, type-ahead, branch
conditions and the caller hanging up, without Asterisk or a database."""

from __future__ import annotations

from datetime import datetime, timezone
from textwrap import dedent

import pytest

from ivr import interpreter as it
from ivr.calendar import parse as parse_calendar
from ivr.loader import load_text
from ivr.models import DTMF, CallerGone, Facts, Finish, Keys, NeedFacts, Prompt, Silence


def flow(nodes: str, start: str = "a"):
    body = "\n".join("  " + line for line in dedent(nodes).strip("\n").splitlines())
    text = f"name: t\nstart: {start}\nnodes:\n{body}\n"
    return load_text(text, "t.yaml", sounds=None)


def facts(stage="acquisition", tags=(), score=0, attributes=None, when=datetime(2026, 1, 5, 10, tzinfo=timezone.utc),
          open_=True) -> Facts:
    return Facts(stage, frozenset(tags), score, attributes or {}, when, open_)


MENU = """
a:
  type: menu
  prompt: [vm-press, digits/1]
  options: {1: accept, 2: reject}
  timeout: 3
  attempts: 2
  on_invalid: {prompt: invalid, next: undecided}
  on_timeout: {prompt: please-try-again, next: silent}
accept: {type: tag, intent: high_intent, score: 10, tags: [pressed_one], next: out}
reject: {type: tag, intent: low_intent, remove: [pressed_one], next: bye}
undecided: {type: hangup, outcome: undecided}
silent: {type: hangup, outcome: silent}
out: {type: transfer, queue: sales, prompt: pls-hold-while-try}
bye: {type: hangup, prompt: vm-goodbye}
"""


def test_menu_prompts_with_every_key_as_barge_in_and_waits_its_timeout():
    s, io = it.start(flow(MENU))
    assert io == Prompt(("vm-press", "digits/1"), DTMF, max_digits=1, first_wait=3.0)
    assert s.node == "a" and s.path == ("a",)


def test_menu_key_runs_tag_nodes_at_once_and_ends_in_a_transfer():
    f = flow(MENU)
    s, io = it.feed(f, it.start(f)[0], Keys("1"))
    assert isinstance(io, Finish) and io.transfer is not None and io.transfer.queue == "sales"
    assert io.files == ("pls-hold-while-try",)
    assert (s.outcome, s.intent, s.tags, s.score, s.digits) == ("transferred", "high_intent", ("pressed_one",), 10, "1")
    assert s.path == ("a", "accept", "out")
    assert s.intents[0] == it.Intent("high_intent", "accept", "1")


def test_invalid_key_retries_with_its_own_prompt_then_gives_up_to_on_invalid():
    f = flow(MENU)
    s, io = it.feed(f, it.start(f)[0], Keys("7"))
    assert io == Prompt(("invalid", "vm-press", "digits/1"), DTMF, 1, 3.0)
    assert (s.node, s.attempt) == ("a", 1)
    s, io = it.feed(f, s, Keys("#"))
    assert io == Finish(())
    assert (s.outcome, s.node, s.digits) == ("undecided", "undecided", "7#")
    assert [r.kind for r in s.records] == ["visit", "keys", "invalid", "keys", "invalid", "visit"]


def test_silence_retries_with_the_timeout_prompt_and_attempts_count_invalid_and_silence_together():
    f = flow(MENU)
    s, io = it.feed(f, it.start(f)[0], Silence())
    assert io == Prompt(("please-try-again", "vm-press", "digits/1"), DTMF, 1, 3.0)
    s, io = it.feed(f, s, Keys("9"))
    assert (s.outcome, s.node) == ("undecided", "undecided")   # the last failure decides where to go


def test_second_silence_goes_to_on_timeout():
    f = flow(MENU)
    s, _ = it.feed(f, it.start(f)[0], Silence())
    s, io = it.feed(f, s, Silence())
    assert (s.outcome, s.node, io) == ("silent", "silent", Finish(()))


def test_caller_hanging_up_mid_menu_is_abandoned_at_that_node():
    f = flow(MENU)
    s, io = it.feed(f, it.start(f)[0], CallerGone())
    assert (io, s.outcome, s.node, s.path) == (None, "abandoned_in_ivr", "a", ("a",))


def test_tag_removal_and_a_later_intent_win():
    f = flow(MENU)
    s, _ = it.feed(f, it.start(f)[0], Keys("2"))
    assert (s.intent, s.removed, s.outcome, s.node) == ("low_intent", ("pressed_one",), "completed", "bye")


PLAY = """
a: {type: play, prompt: [beep, vm-press], next: m}
m:
  type: menu
  prompt: digits/1
  options: {1: bye}
  on_invalid: {next: bye}
  on_timeout: {next: bye}
bye: {type: hangup}
"""


def test_play_barged_in_by_a_key_hands_the_key_to_the_next_menu_without_its_prompt():
    f = flow(PLAY)
    s, io = it.start(f)
    assert io == Prompt(("beep", "vm-press"), DTMF, max_digits=0)
    s, io = it.feed(f, s, Keys("1"))
    assert (s.node, s.outcome, io) == ("bye", "completed", Finish(()))
    assert [(r.kind, r.node, r.digits) for r in s.records] == [
        ("visit", "a", ""), ("barge", "a", "1"), ("visit", "m", ""), ("keys", "m", "1"), ("visit", "bye", "")]


def test_play_played_to_the_end_goes_on_and_a_play_without_barge_in_has_no_escape_keys():
    f = flow(PLAY.replace("next: m}", "next: m, barge_in: false}"))
    s, io = it.start(f)
    assert io.escape == ""
    s, io = it.feed(f, s, Silence())
    assert (s.node, io) == ("m", Prompt(("digits/1",), DTMF, 1, 5.0))


COLLECT = """
a:
  type: collect
  prompt: vm-enter-num-to-call
  max_digits: 6
  min_digits: 4
  timeout: 4
  into: account_number
  on_invalid: {prompt: invalid, next: bye}
  on_timeout: {next: bye}
  next: ok
ok: {type: hangup, outcome: collected}
bye: {type: hangup}
"""


def test_collect_reads_digits_up_to_the_terminator_into_an_attribute():
    f = flow(COLLECT)
    s, io = it.start(f)
    assert io == Prompt(("vm-enter-num-to-call",), DTMF, 6, 4.0, 4.0, "#")
    s, io = it.feed(f, s, Keys("12345#"))
    assert (s.outcome, s.collected) == ("collected", {"account_number": "12345"})


def test_collect_accepts_enough_digits_when_the_caller_stops_typing():
    f = flow(COLLECT)
    s, _ = it.feed(f, it.start(f)[0], Keys("1234", timed_out=True))
    assert s.collected == {"account_number": "1234"}


def test_collect_refuses_too_few_digits_and_retries_with_the_invalid_prompt():
    f = flow(COLLECT)
    s, io = it.feed(f, it.start(f)[0], Keys("12#"))
    assert io.files == ("invalid", "vm-enter-num-to-call") and s.attempt == 1


SURVEY = """
a:
  type: survey
  prompt: [vm-press, digits/1]
  on_invalid: {next: bye}
  on_timeout: {next: bye}
  next: judge
judge:
  type: branch
  cases:
    - {when: {satisfaction_at_least: 4}, next: happy}
    - {when: {satisfaction_below: 3}, next: unhappy}
  default: bye
happy: {type: hangup, outcome: happy}
unhappy: {type: stage, to: decline, reason: unhappy, next: cb}
cb: {type: callback, reason: call them, within_hours: 4, next: ev}
ev: {type: emit, event: complaint, data: {severity: high}, next: g}
g: {type: goto, next: bye}
bye: {type: hangup}
"""


@pytest.mark.parametrize("key, outcome", [("5", "happy"), ("4", "happy"), ("3", "completed"), ("1", "completed")])
def test_survey_stores_satisfaction_and_branches_on_it(key, outcome):
    f = flow(SURVEY)
    s, io = it.feed(f, it.start(f)[0], Keys(key))
    assert isinstance(io, NeedFacts) and s.node == "judge"
    s, io = it.resume(f, s, facts())
    assert (s.satisfaction, s.outcome) == (int(key), outcome)


def test_unhappy_survey_asks_for_a_stage_change_a_callback_and_a_custom_event():
    f = flow(SURVEY)
    s, _ = it.feed(f, it.start(f)[0], Keys("2"))
    s, io = it.resume(f, s, facts())
    assert s.stages == (("unhappy", "decline", "unhappy"),)
    assert [c.id for c in s.callbacks] == ["cb"] and s.callbacks[0].within_hours == 4.0
    assert [(e.event, dict(e.data)) for e in s.emits] == [("complaint", {"severity": "high"})]
    assert s.path == ("a", "judge", "unhappy", "cb", "ev", "g", "bye")


def test_survey_key_outside_the_scale_is_invalid():
    f = flow(SURVEY)
    s, io = it.feed(f, it.start(f)[0], Keys("7"))
    assert (s.node, s.attempt, s.satisfaction) == ("a", 1, None)


BRANCH = """
a:
  type: branch
  cases:
    - {when: {stage: [churned]}, next: churned}
    - {when: {tags_any: [vip], score_at_least: 80}, next: hot}
    - {when: {attributes: {plan: gold}}, next: gold}
    - {when: {business_hours: false}, next: closed}
    - {when: {time_between: ["22:00", "06:00"]}, next: night}
    - {when: {weekdays: [sat, sun], tags_none: [blocked]}, next: weekend}
  default: other
churned: {type: hangup, outcome: churned}
hot: {type: hangup, outcome: hot}
gold: {type: hangup, outcome: gold}
closed: {type: hangup, outcome: closed}
night: {type: hangup, outcome: night}
weekend: {type: hangup, outcome: weekend}
other: {type: hangup, outcome: other}
"""
MONDAY_10 = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("f, outcome", [
    (facts(stage="churned"), "churned"),
    (facts(tags=["vip"], score=85), "hot"),
    (facts(tags=["vip"], score=79), "other"),
    (facts(attributes={"plan": "gold"}), "gold"),
    (facts(open_=False), "closed"),
    (facts(when=datetime(2026, 1, 5, 23, tzinfo=timezone.utc)), "night"),
    (facts(when=datetime(2026, 1, 6, 5, tzinfo=timezone.utc)), "night"),
    (facts(when=datetime(2026, 1, 10, 12, tzinfo=timezone.utc)), "weekend"),
    (facts(when=datetime(2026, 1, 10, 12, tzinfo=timezone.utc), tags=["blocked"]), "other"),
    (facts(when=MONDAY_10), "other"),
])
def test_branch_takes_the_first_case_whose_conditions_all_hold(f, outcome):
    fl = flow(BRANCH)
    s, io = it.start(fl)
    assert isinstance(io, NeedFacts)
    s, _ = it.resume(fl, s, f)
    assert s.outcome == outcome


def test_branch_sees_tags_and_score_this_call_earned_before_it():
    fl = flow("""
a: {type: tag, tags: [vip], score: 90, next: b}
b:
  type: branch
  cases: [{when: {tags_all: [vip], score_at_least: 80}, next: hot}]
  default: cold
hot: {type: hangup, outcome: hot}
cold: {type: hangup, outcome: cold}
""")
    s, io = it.start(fl, facts())
    assert s.outcome == "hot"


def test_transfer_to_an_agent_and_a_fixed_priority():
    fl = flow("a: {type: transfer, agent: Local/agent1@sim-agent, priority: 3, ring_timeout: 20}")
    s, io = it.start(fl)
    assert isinstance(io, Finish) and io.transfer.agent == "Local/agent1@sim-agent"
    assert (io.transfer.priority, io.transfer.ring_timeout, s.outcome) == (3, 20, "transferred")


def test_a_queue_transfer_takes_its_priority_from_the_score_unless_given():
    from ivr.recorder import queue_priority

    assert flow("a: {type: transfer, queue: sales}").nodes["a"].priority is None
    assert [queue_priority(None, s) for s in (0, 29, 55, 80, 100, 250)] == [0, 2, 5, 8, 10, 10]
    assert queue_priority(7, 99) == 7


def test_calendar_is_open_in_its_hours_and_closed_on_holidays_and_weekends():
    cal = parse_calendar(["mon-fri 09:00-18:00", "sat 10:00-12:00"], "Europe/Paris", ["2026-01-06"])
    assert cal.is_open(datetime(2026, 1, 5, 8, 30, tzinfo=timezone.utc))        # 09:30 in Paris
    assert not cal.is_open(datetime(2026, 1, 5, 7, 30, tzinfo=timezone.utc))    # 08:30
    assert not cal.is_open(datetime(2026, 1, 6, 10, tzinfo=timezone.utc))       # a holiday
    assert cal.is_open(datetime(2026, 1, 10, 10, tzinfo=timezone.utc))          # saturday 11:00
    assert not cal.is_open(datetime(2026, 1, 11, 10, tzinfo=timezone.utc))      # sunday
