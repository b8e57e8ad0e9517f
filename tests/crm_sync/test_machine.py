"""Delivery and endpoint machines, response classification and the retry schedule (pure)."""

from __future__ import annotations

import pytest

from crm_sync import machine
from crm_sync.config import DEFAULT_RETRY_SCHEDULE
from crm_sync.errors import IllegalTransition
from crm_sync.machine import DeliveryState as S, Outcome


def test_a_delivery_moves_pending_in_flight_then_delivered_retry_wait_or_dead():
    assert machine.next_delivery_state("pending", "claim") is S.IN_FLIGHT
    assert machine.next_delivery_state("in_flight", "succeeded") is S.DELIVERED
    assert machine.next_delivery_state("in_flight", "failed") is S.RETRY_WAIT
    assert machine.next_delivery_state("retry_wait", "claim") is S.IN_FLIGHT
    assert machine.next_delivery_state("in_flight", "exhausted") is S.DEAD
    assert machine.next_delivery_state("in_flight", "claim") is S.IN_FLIGHT  # lease ran out


@pytest.mark.parametrize("state, event", [("delivered", "claim"), ("dead", "claim"), ("pending", "succeeded"),
                                          ("retry_wait", "failed"), ("bogus", "claim")])
def test_a_delivery_refuses_events_it_does_not_expect(state, event):
    with pytest.raises(IllegalTransition):
        machine.next_delivery_state(state, event)


def test_410_disables_an_endpoint_and_an_admin_can_enable_it_again():
    assert machine.next_endpoint_state("active", "gone") is machine.EndpointState.DISABLED
    assert machine.next_endpoint_state("disabled", "enable") is machine.EndpointState.ACTIVE
    with pytest.raises(IllegalTransition):
        machine.next_endpoint_state("disabled", "gone")


@pytest.mark.parametrize("status, outcome", [(200, Outcome.SUCCEEDED), (204, Outcome.SUCCEEDED),
                                             (301, Outcome.FAILED), (302, Outcome.FAILED), (400, Outcome.FAILED),
                                             (410, Outcome.GONE), (429, Outcome.THROTTLED),
                                             (503, Outcome.THROTTLED), (500, Outcome.FAILED), (None, Outcome.FAILED)])
def test_responses_are_classified(status, outcome):
    assert machine.classify(status) is outcome


def test_the_schedule_is_immediate_5s_5min_30min_2h_5h_10h_14h_20h_24h_then_dead():
    delays = [machine.retry_delay(n, DEFAULT_RETRY_SCHEDULE, jitter=0) for n in range(1, 11)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400, None]
    assert DEFAULT_RETRY_SCHEDULE[0] == 0  # the first attempt is immediate


def test_jitter_spreads_delays_within_its_bounds():
    low = machine.retry_delay(2, DEFAULT_RETRY_SCHEDULE, jitter=0.1, rand=lambda: 0.0)
    high = machine.retry_delay(2, DEFAULT_RETRY_SCHEDULE, jitter=0.1, rand=lambda: 0.999999)
    assert low == pytest.approx(270) and high == pytest.approx(330, rel=1e-4)


def test_retry_after_is_honoured_on_throttling_only_and_capped():
    decide = machine.decide
    kw = dict(jitter=0.0, max_retry_after=3600.0)
    assert decide(Outcome.THROTTLED, 1, DEFAULT_RETRY_SCHEDULE, retry_after=120, **kw) == (S.RETRY_WAIT, 120)
    assert decide(Outcome.THROTTLED, 1, DEFAULT_RETRY_SCHEDULE, retry_after=1, **kw) == (S.RETRY_WAIT, 5)
    assert decide(Outcome.THROTTLED, 1, DEFAULT_RETRY_SCHEDULE, retry_after=10**9, **kw) == (S.RETRY_WAIT, 3600)
    assert decide(Outcome.FAILED, 1, DEFAULT_RETRY_SCHEDULE, retry_after=120, **kw) == (S.RETRY_WAIT, 5)
    assert decide(Outcome.SUCCEEDED, 10, DEFAULT_RETRY_SCHEDULE, retry_after=None, **kw) == (S.DELIVERED, 0)
    assert decide(Outcome.FAILED, 10, DEFAULT_RETRY_SCHEDULE, retry_after=None, **kw) == (S.DEAD, 0)
    assert machine.parse_retry_after(" 30 ") == 30 and machine.parse_retry_after("Wed, 21 Oct 2015") is None


def test_a_410_on_the_last_attempt_keeps_the_delivery_for_when_the_endpoint_is_enabled():
    kw = dict(jitter=0.0, max_retry_after=3600.0, retry_after=None)
    assert machine.decide(Outcome.GONE, 10, DEFAULT_RETRY_SCHEDULE, **kw) == (S.RETRY_WAIT, 86400)
    assert machine.decide(Outcome.GONE, 1, DEFAULT_RETRY_SCHEDULE, **kw) == (S.RETRY_WAIT, 5)
