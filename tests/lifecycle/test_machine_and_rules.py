"""The stage table and the rules file, without a database."""

import tomllib

import pytest

from lifecycle import scoring
from lifecycle.errors import RulesError
from lifecycle.machine import Refused, StageMachine
from lifecycle.models import Band, Stage
from lifecycle.rules import load_rules, parse_rules, resolve

RULES = load_rules("config/lifecycle.toml")
MACHINE = StageMachine(RULES.transitions)
DECLARED = [("acquisition", "growth"), ("acquisition", "maturity"), ("growth", "maturity"),
            ("growth", "decline"), ("maturity", "decline"), ("decline", "maturity"),
            ("decline", "churned"), ("churned", "growth"), ("churned", "maturity")]


@pytest.mark.parametrize("src,dst", DECLARED)
def test_every_declared_transition_is_allowed_manually(src, dst):
    move = MACHINE.move(Stage(src), dst)
    assert (move.from_stage, move.to_stage) == (Stage(src), Stage(dst))


def test_every_undeclared_transition_is_refused_with_the_allowed_stages():
    for src in Stage:
        for dst in Stage:
            if (src, dst) in DECLARED or src == dst:
                continue
            with pytest.raises(Refused) as exc:
                MACHINE.move(src, str(dst))
            assert f"{src} -> {dst}" in exc.value.reason and "allowed stages" in exc.value.reason


def test_same_stage_and_unknown_stage_are_refused():
    with pytest.raises(Refused, match="already in"):
        MACHINE.move(Stage.GROWTH, "growth")
    with pytest.raises(Refused, match="unknown stage"):
        MACHINE.move(Stage.GROWTH, "retired")


def test_triggers_fire_only_their_declared_rules():
    assert MACHINE.fire(Stage.ACQUISITION, "tag:need_confirmed").to_stage == Stage.GROWTH
    assert MACHINE.fire(Stage.GROWTH, "purchase").to_stage == Stage.MATURITY
    assert MACHINE.fire(Stage.MATURITY, "risk_signal").to_stage == Stage.DECLINE
    assert MACHINE.fire(Stage.DECLINE, "purchase").to_stage == Stage.MATURITY
    assert MACHINE.fire(Stage.CHURNED, "tag:recall_interested").to_stage == Stage.GROWTH
    assert MACHINE.fire(Stage.ACQUISITION, "risk_signal") is None
    assert MACHINE.fire(Stage.DECLINE, "tag:need_confirmed") is None


def test_score_bands_use_the_configured_thresholds():
    assert scoring.band(80, 80, 30) == Band.HOT
    assert scoring.band(79, 80, 30) == Band.NORMAL
    assert scoring.band(30, 80, 30) == Band.NURTURE
    assert scoring.band(50, 60, 50) == Band.NURTURE


def test_score_decays_linearly_per_day_and_is_clamped():
    from datetime import datetime, timedelta, timezone

    rules = parse_rules({**_raw(), "scoring": {"decay_per_day": 2, "min": 0, "max": 100,
                                               "points": {"tag:high_intent": 50}}}).scoring
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert scoring.rescore(60, t0, t0 + timedelta(days=5), [], rules)[0] == 50
    assert scoring.rescore(60, t0, t0 + timedelta(days=5), ["tag:high_intent"], rules)[0] == 100
    assert scoring.rescore(10, t0, t0 + timedelta(days=30), [], rules)[0] == 0


def test_frequent_rescoring_decays_as_much_as_one_rescore_over_the_same_span():
    from datetime import datetime, timedelta, timezone

    rules = parse_rules({**_raw(), "scoring": {"decay_per_day": 1, "min": 0, "max": 100, "points": {}}}).scoring
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    score, since = 80, t0
    for step in range(1, 61):                      # a scoring event every 11 h for 27.5 days
        score, since = scoring.rescore(score, since, t0 + timedelta(hours=11 * step), [], rules)
    assert score == scoring.rescore(80, t0, t0 + timedelta(hours=660), [], rules)[0] == 53


def _raw() -> dict:
    return tomllib.loads(resolve("config/lifecycle.toml").read_text())


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["transitions"][0].update(to="retired"), "transitions[0].to: unknown stage 'retired'"),
    (lambda d: d["transitions"][1].update(on=["phase_of_moon"]), "transitions[1].on: unknown trigger"),
    (lambda d: d["cadences"][2].update(on="sometimes"), "cadences[2].on: unknown signal 'sometimes'"),
    (lambda d: d["scoring"]["points"].update({"tag:x": "ten"}), "scoring.points.tag:x: must be an integer"),
    (lambda d: d["intent"].pop("risk_tags"), "intent.risk_tags: is required"),
    (lambda d: d["cadences"][0].update(colour="red"), "cadences[0]: unknown key(s) ['colour']"),
    (lambda d: d["cadences"][0]["touches"][0].update(within_hours=-1), "touches[0].within_hours"),
])
def test_bad_rules_name_the_file_and_key(mutate, message):
    data = _raw()
    mutate(data)
    with pytest.raises(RulesError) as exc:
        parse_rules(data, "config/lifecycle.toml")
    assert str(exc.value).startswith("config/lifecycle.toml: ")
    assert message in str(exc.value)


def test_a_missing_rules_file_is_named(tmp_path):
    with pytest.raises(RulesError, match="nope.toml: file not found"):
        load_rules(tmp_path / "nope.toml")
