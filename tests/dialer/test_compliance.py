"""The compliance gate, rule by rule: pure, with a controlled clock (DST included)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from callcycle.clock import ManualClock
from dialer.compliance import DialFacts, Rules, check, next_window

LA = ZoneInfo("America/Los_Angeles")
RULES = Rules(window_start=time(8), window_end=time(21), allowed_countries=("US", "CA"), allowed_prefixes=(),
              denied_prefixes=("+1900", "+1976"), max_attempts=3, max_attempts_per_day=2)


def facts(now: datetime | None = None, **kw) -> DialFacts:
    base = DialFacts(phone="+14155550123", now=now or datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc),  # 10:00 in LA
                     time_zones=("America/Los_Angeles",), dnc_listed=False, contact_dnc=False, consent=True,
                     attempts=0, attempts_on=None, attempts_today=0, last_abandoned_at=None, machine_at=None)
    return replace(base, **kw)


def test_a_clean_number_inside_the_window_is_allowed_and_the_record_says_why():
    v = check(facts(), RULES)
    assert v.allowed and v.rule is None
    rules = v.record["rules"]
    assert set(rules) == {"number", "destination", "dnc", "window", "caps", "abandon_rest", "machine"}
    assert all(r["version"] >= 1 for r in rules.values())
    assert rules["window"]["local"] == {"America/Los_Angeles": "2026-01-05T10:00:00-08:00"}
    assert rules["dnc"] == {"version": 1, "listed": False, "contact_flag": False, "consent": True}
    assert rules["destination"]["country"] == "US"


@pytest.mark.parametrize("phone", [
    "+14155550123&PJSIP/evil", "+1415555/0123", "+1415555,0123", "+1415555abcd", "+1 415 555 0123",
    "+14155550123;x", "PJSIP/+14155550123", "+1415555012#", "+14155550123\n", "Local/1@default",
])
def test_dial_string_characters_are_refused_for_good(phone):
    v = check(facts(phone=phone), RULES)
    assert not v.allowed and v.rule == "dial_string" and v.retry_at is None


@pytest.mark.parametrize("phone", ["", "14155550123", "+0145555", "+1415555012345678", "+19765551234", "+1415"])
def test_malformed_numbers_are_refused_for_good(phone):
    v = check(facts(phone=phone), RULES)
    assert not v.allowed and v.rule == "malformed" and v.retry_at is None


def test_premium_rate_and_shared_cost_numbers_are_refused_even_when_allowlisted():
    premium = check(facts(phone="+19005550123"), RULES)
    assert (premium.allowed, premium.rule) == (False, "premium")
    uk = replace(RULES, allowed_countries=("GB",))
    shared = check(facts(phone="+448712345678", time_zones=("Europe/London",)), uk)
    assert (shared.allowed, shared.rule) == (False, "premium")


def test_destinations_outside_the_allowlist_or_on_a_denied_prefix_are_refused():
    paris = facts(phone="+33612345678", time_zones=("Europe/Paris",), now=datetime(2026, 1, 5, 10, tzinfo=timezone.utc))
    assert check(paris, RULES).rule == "destination"
    assert check(paris, replace(RULES, allowed_prefixes=("+336",))).allowed
    assert check(facts(), replace(RULES, denied_prefixes=("+1415",))).rule == "denied_prefix"


def test_do_not_call_in_the_list_or_on_the_contact_and_withdrawn_consent_refuse_for_good():
    for kw in ({"dnc_listed": True}, {"contact_dnc": True}):
        v = check(facts(**kw), RULES)
        assert (v.allowed, v.rule, v.retry_at) == (False, "dnc", None)
    assert check(facts(consent=False), RULES).rule == "no_consent"


def test_the_window_is_the_callees_local_time_in_every_candidate_zone():
    # 07:59 in LA is too early; 20:59 allowed; 21:00 too late
    at = lambda h, m: datetime(2026, 1, 5, h, m, tzinfo=LA)  # noqa: E731
    assert check(facts(now=at(7, 59)), RULES).rule == "calling_window"
    assert check(facts(now=at(8, 0)), RULES).allowed
    assert check(facts(now=at(20, 59)), RULES).allowed
    late = check(facts(now=at(21, 0)), RULES)
    assert late.rule == "calling_window" and late.retry_at == at(8, 0) + timedelta(days=1)
    # 10:00 in LA is 13:00 in New York: fine; 19:00 in LA is 22:00 in New York: refused
    both = ("America/Los_Angeles", "America/New_York")
    assert check(facts(now=at(10, 0), time_zones=both), RULES).allowed
    v = check(facts(now=at(19, 0), time_zones=both), RULES)
    assert v.rule == "calling_window"
    assert v.retry_at == datetime(2026, 1, 6, 8, 0, tzinfo=LA)  # 11:00 in New York, 08:00 in LA


def test_an_unknown_or_missing_time_zone_means_no_call():
    assert check(facts(time_zones=()), RULES).rule == "unknown_time_zone"
    assert check(facts(time_zones=("Mars/Olympus_Mons",)), RULES).rule == "unknown_time_zone"


def test_zones_whose_windows_never_overlap_are_never_callable():
    narrow = replace(RULES, window_start=time(8), window_end=time(10))
    v = check(facts(time_zones=("America/Los_Angeles", "Asia/Tokyo")), narrow)
    assert v.rule == "calling_window" and v.retry_at is None


def test_daylight_saving_spring_forward_moves_the_window_with_the_clock():
    # US DST starts 2026-03-08 02:00 local. 08:00 PDT on the 8th is 15:00 UTC (16:00 UTC the day before).
    clock = ManualClock(datetime(2026, 3, 7, 15, 30, tzinfo=timezone.utc))   # 07:30 PST on the 7th
    assert check(facts(now=clock.now()), RULES).retry_at == datetime(2026, 3, 7, 16, 0, tzinfo=timezone.utc)
    clock.advance(timedelta(hours=1))                                         # 08:30 PST
    assert check(facts(now=clock.now()), RULES).allowed
    clock.set(datetime(2026, 3, 8, 4, 59, tzinfo=timezone.utc))               # 20:59 PST on the 7th
    assert check(facts(now=clock.now()), RULES).allowed
    clock.advance(60)                                                         # 21:00 PST: too late
    v = check(facts(now=clock.now()), RULES)
    assert v.rule == "calling_window" and v.retry_at == datetime(2026, 3, 8, 15, 0, tzinfo=timezone.utc)
    clock.set(datetime(2026, 3, 8, 15, 30, tzinfo=timezone.utc))              # 08:30 PDT: one hour earlier in UTC
    assert check(facts(now=clock.now()), RULES).allowed
    clock.set(datetime(2026, 3, 8, 14, 30, tzinfo=timezone.utc))              # 07:30 PDT (08:30 in PST terms)
    assert check(facts(now=clock.now()), RULES).rule == "calling_window"


def test_daylight_saving_fall_back_and_the_london_change():
    # 2026-11-01: LA back to PST; 20:30 PDT (03:30 UTC) allowed, 21:30 PST on Nov 1 (05:30 UTC Nov 2) refused
    assert check(facts(now=datetime(2026, 11, 1, 3, 30, tzinfo=timezone.utc)), RULES).allowed
    assert check(facts(now=datetime(2026, 11, 2, 5, 30, tzinfo=timezone.utc)), RULES).rule == "calling_window"
    # 07:30 UTC on 2026-03-29 is 08:30 BST (allowed); the day before it is 07:30 GMT (too early)
    uk = replace(RULES, allowed_countries=("GB",))
    ldn = dict(phone="+442079460123", time_zones=("Europe/London",))
    assert check(facts(now=datetime(2026, 3, 29, 7, 30, tzinfo=timezone.utc), **ldn), uk).allowed
    assert check(facts(now=datetime(2026, 3, 28, 7, 30, tzinfo=timezone.utc), **ldn), uk).rule == "calling_window"


def test_next_window_searches_across_a_dst_change():
    at = datetime(2026, 3, 7, 22, 0, tzinfo=LA)
    assert next_window(at, [LA], RULES) == datetime(2026, 3, 8, 8, 0, tzinfo=LA)
    assert next_window(at, [LA], RULES).astimezone(timezone.utc).hour == 15


def test_lifetime_cap_refuses_for_good_and_daily_cap_until_the_callees_next_day():
    assert check(facts(attempts=3), RULES).rule == "max_attempts"
    assert check(facts(attempts=3), RULES).retry_at is None
    today = date(2026, 1, 5)
    v = check(facts(attempts=2, attempts_on=today, attempts_today=2), RULES)
    assert v.rule == "max_attempts_per_day" and v.retry_at == datetime(2026, 1, 6, 8, 0, tzinfo=LA)
    # yesterday's count does not hold today
    assert check(facts(attempts=2, attempts_on=today - timedelta(days=1), attempts_today=2), RULES).allowed


def test_an_abandoned_number_rests_72_hours_unless_an_agent_is_guaranteed():
    now = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)
    last = now - timedelta(hours=71)
    v = check(facts(last_abandoned_at=last), RULES)
    assert v.rule == "abandon_rest" and v.retry_at == last + timedelta(hours=72)
    assert check(facts(last_abandoned_at=now - timedelta(hours=72)), RULES).allowed
    assert check(facts(last_abandoned_at=last, guaranteed_agent=True), RULES).allowed


def test_a_machine_flagged_number_waits_for_the_callees_next_day_unless_an_agent_is_guaranteed():
    now = datetime(2026, 1, 5, 20, 0, tzinfo=timezone.utc)    # 12:00 in LA
    v = check(facts(now=now, machine_at=now - timedelta(hours=3)), RULES)
    assert v.rule == "machine_today" and v.retry_at == datetime(2026, 1, 6, 8, 0, tzinfo=LA)
    # 07:00 UTC on the 5th was still the 4th in LA: another day
    assert check(facts(now=now, machine_at=datetime(2026, 1, 5, 7, tzinfo=timezone.utc)), RULES).allowed
    assert check(facts(now=now, machine_at=now - timedelta(hours=3), guaranteed_agent=True), RULES).allowed


def test_the_first_refusing_rule_decides_and_is_recorded():
    v = check(facts(phone="+19005550123", dnc_listed=True), RULES)
    assert v.rule == "premium" and v.record["refused_by"] == "premium"
    assert "dnc" not in v.record["rules"]
