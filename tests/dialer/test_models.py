"""Campaign settings: what a campaign may set, within the server's rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dialer.config import DialerSettings
from dialer.errors import InvalidCampaign
from dialer.models import CampaignSettings, Mode
from dialer.service import DialerService

SERVER = DialerSettings()


@pytest.mark.parametrize("mode, values, field", [
    (Mode.PREDICTIVE, {"no_answer_timeout_s": 10}, "no_answer_timeout_s"),          # ring at least 15 s
    (Mode.PREDICTIVE, {"ring_timeout_override_s": 1}, "ring_timeout_override_s"),   # a server-only setting
    (Mode.PREDICTIVE, {"abandon_target": 0.05}, "abandon_target"),
    (Mode.PREDICTIVE, {"window_start": "07:00"}, "window_start"),                   # wider than the law
    (Mode.PREDICTIVE, {"window_end": "22:00"}, "window_end"),
    (Mode.PREDICTIVE, {"window_start": "12:00", "window_end": "11:00"}, "window_start"),
    (Mode.PREDICTIVE, {"window_start": "8:00"}, "window_start"),
    (Mode.PREDICTIVE, {"max_lines": 5000}, "max_lines"),
    (Mode.PREDICTIVE, {"queue": "sales,evil"}, "queue"),
    (Mode.PREDICTIVE, {"safe_harbour_message": "x\nAction: Originate"}, "safe_harbour_message"),
    (Mode.PREDICTIVE, {"caller_id": "+1415&"}, "caller_id"),
    (Mode.PREDICTIVE, {"local_presence": {"+1212": "Local/x"}}, "local_presence"),
    (Mode.PREDICTIVE, {"max_attempts_per_day": 9, "max_attempts": 3}, "max_attempts_per_day"),
    (Mode.PREDICTIVE, {"retry_delays": {"busy": -1}}, "retry_delays"),
    (Mode.PREDICTIVE, {"retry_delays": {"no_answer": 1e12}}, "retry_delays"),     # past year 9999
    (Mode.PREDICTIVE, {"retry_delays": {"busy": float("inf")}}, "retry_delays"),
    (Mode.PREDICTIVE, {"retry_delays": {"busy": True}}, "retry_delays"),
    # "$" would let a trailing newline through, and Asterisk ends a header line at a bare LF
    (Mode.PREDICTIVE, {"caller_id": "+14155550123\n"}, "caller_id"),
    (Mode.PREDICTIVE, {"queue": "sales\n"}, "queue"),
    (Mode.PREDICTIVE, {"local_presence": {"+1212": "+12125550100\n"}}, "local_presence"),
    (Mode.PREDICTIVE, {"local_presence": {"+1212\n": "+12125550100"}}, "local_presence"),
    (Mode.PROGRESSIVE, {"flow": "x\ny"}, "flow"),                                  # not only agentless
    (Mode.PROGRESSIVE, {"on_machine": "message", "machine_message": 5}, "machine_message"),
    (Mode.PREDICTIVE, {"ends_at": "2026-01-05T10:00"}, "ends_at"),                  # no offset
    (Mode.PREDICTIVE, {"expected_answer_rate": 0}, "expected_answer_rate"),
    (Mode.AGENTLESS, {}, "flow"),
    (Mode.PROGRESSIVE, {"on_machine": "message"}, "machine_message"),
])
def test_settings_outside_the_rules_are_refused_naming_the_field(mode, values, field):
    with pytest.raises(InvalidCampaign) as err:
        CampaignSettings.parse(values, SERVER, mode)
    assert err.value.detail["field"] == field


@pytest.mark.parametrize("mode, pacing", [("predictive", {"nonsense": 1}), ("power", {"ratio": 0.5})])
def test_pacing_parameters_the_policy_refuses_are_refused(mode, pacing):
    svc = DialerService(None, None, None, None, SERVER)  # type: ignore[arg-type]
    with pytest.raises(InvalidCampaign) as err:
        svc._parse(mode, {"pacing": pacing})
    assert err.value.detail["field"] == "pacing"


def test_a_campaign_may_narrow_the_window_and_the_ring_floor_is_overridden_only_by_the_server():
    s = CampaignSettings.parse({"window_start": "09:30", "window_end": "17:00", "no_answer_timeout_s": 25},
                               SERVER, Mode.PREDICTIVE)
    assert [t.strftime("%H:%M") for t in s.window(SERVER)] == ["09:30", "17:00"]
    assert s.ring_timeout(SERVER) == 25
    assert s.ring_timeout(replace(SERVER, ring_timeout_override_s=4)) == 4


def test_local_presence_picks_the_longest_matching_prefix():
    s = CampaignSettings.parse({"caller_id": "+14155550000", "local_presence": {"+1212": "+12125550000",
                                                                                 "+1212555": "+12125551111"}},
                               SERVER, Mode.PROGRESSIVE)
    assert s.caller_id_for("+12125550123") == "+12125551111"
    assert s.caller_id_for("+12127770123") == "+12125550000"
    assert s.caller_id_for("+13105550123") == "+14155550000"
