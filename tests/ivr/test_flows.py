"""Flow files: the shipped ones load; every kind of mistake is refused with file, line and
reason, by the loader, by `callcycle flows check`, and by start-up; reload keeps a good set
when the new one is bad. Sound files are checked against the sandbox's sounds directory."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from callcycle import cli, keys
from callcycle.app import init_app
from ivr import sounds
from ivr.errors import FlowsInvalid
from ivr.loader import load_dir, load_text
from ivr.models import Branch, Hangup, Menu, Tag, Transfer
from ivr.plugin import FLOWS as LOADED_FLOWS
from tests.conftest import ROOT, auth
from tests.ivr.conftest import IVR_ENV, SOUNDS_DIR

FLOWS = ROOT / "flows"


@pytest.fixture(scope="module")
def sandbox_sounds() -> sounds.SoundCatalogue:
    """The sound files of the sandbox Asterisk, listed from its chroot."""
    if not Path(IVR_ENV["CALLCYCLE_IVR_SOUNDS_CHROOT"]).is_dir():
        message = f"no sandbox Asterisk at {IVR_ENV['CALLCYCLE_IVR_SOUNDS_CHROOT']}; scripts/asterisk-sandbox up"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sounds.scan(SOUNDS_DIR, IVR_ENV["CALLCYCLE_IVR_SOUNDS_CHROOT"])


def problems(text: str, catalogue=None, name: str | None = None) -> list[str]:
    with pytest.raises(FlowsInvalid) as err:
        load_text(text, "f.yaml", catalogue, name=name)
    return [str(p) for p in err.value.problems]


GOOD = """\
name: f
start: ask
nodes:
  ask:
    type: menu
    prompt: [vm-press, digits/1]
    options:
      1: bye
    on_invalid: {next: bye}
    on_timeout: {next: bye}
  bye:
    type: hangup
    prompt: vm-goodbye
"""


def test_the_shipped_flows_load_against_the_sandbox_sounds(sandbox_sounds):
    flows = load_dir(FLOWS, sandbox_sounds)
    assert set(flows.flows) == {"screening", "csat_survey", "churn_recall"}
    s = flows.flows["screening"]
    ask = s.nodes["ask"]
    assert isinstance(ask, Menu) and dict(ask.options) == {"1": "interested", "2": "not_interested"}
    assert (ask.on_invalid.next, ask.on_timeout.next, ask.attempts) == ("undecided", "undecided", 2)
    assert isinstance(s.nodes["interested"], Tag) and s.nodes["interested"].intent == "high_intent"
    assert isinstance(s.nodes["to_sales"], Transfer) and s.nodes["to_sales"].queue == "sales"
    assert s.nodes["not_interested"].intent == "low_intent" and s.nodes["undecided"].intent == "undecided"
    assert isinstance(s.nodes["follow_up"], Branch) and isinstance(s.nodes["undecided_goodbye"], Hangup)
    assert len(s.version) == 12 and s.nodes["ask"].line == 13


def test_the_sandbox_sounds_directory_is_followed_through_its_chroot_links(sandbox_sounds):
    assert {"beep", "vm-press", "digits/1", "vm-goodbye"} <= sandbox_sounds.names
    assert "no-such-prompt" not in sandbox_sounds


@pytest.mark.parametrize("change, line, reason", [
    (("type: hangup\n    prompt", "type: frobnicate\n    prompt"), 12, "unknown node type 'frobnicate'"),
    (("      1: bye", "      1: nowhere"), 8, "node 'ask' goes to 'nowhere', which does not exist"),
    (("      1: bye", "      1: bye\n      12: bye"), 9, "menu option '12' is not one DTMF key"),
    (("      1: bye", "      1: bye\n      x: bye"), 9, "menu option 'x' is not one DTMF key"),
    (("prompt: vm-goodbye", "prompt: no-such-prompt"), 13, "unknown sound file 'no-such-prompt'"),
    (("[vm-press, digits/1]", "[vm-press,\n      digits/99x]"), 7, "unknown sound file 'digits/99x'"),
    (("    type: hangup\n", "    type: hangup\n    colour: red\n"), 13, "unknown field(s) 'colour'"),
    (("start: ask", "start: nothing"), 2, "start node 'nothing' does not exist"),
    (("    prompt: vm-goodbye\n", "    prompt: vm-goodbye\n  lost:\n    type: hangup\n"), 14,
     "node 'lost' is unreachable"),
    (("      1: bye\n    on_invalid: {next: bye}\n    on_timeout: {next: bye}",
      "      1: ask\n    on_invalid: {next: ask}\n    on_timeout: {next: ask}"), 4,
     "loop with no exit: ask -> ask never reaches a hangup or transfer"),
    (("  bye:\n", "  bye:\n    timeout: 3\n"), 12, "unknown field(s) 'timeout' in node 'bye'"),
    (("  bye:\n", "  ask:\n    type: hangup\n  bye:\n"), 11, "duplicate key 'ask' (first on line 4)"),
    (("options:\n", "options: [\n"), 9, "not valid YAML"),
])
def test_each_mistake_names_the_file_the_line_and_the_reason(sandbox_sounds, change, line, reason):
    old, new = change
    assert old in GOOD
    found = problems(GOOD.replace(old, new), sandbox_sounds)
    assert any(p.startswith(f"f.yaml:{line}: ") and reason in p for p in found), found


def test_a_loop_that_never_prompts_is_refused_even_with_an_exit():
    text = GOOD.replace("      1: bye", "      1: spin") + """\
  spin:
    type: branch
    cases: [{when: {score_at_least: 80}, next: bye}]
    default: spin2
  spin2:
    type: tag
    tags: [x]
    next: spin
"""
    assert any("f.yaml:14: loop without a prompt: spin -> spin2 -> spin" in p for p in problems(text))


def test_the_flow_name_must_match_its_file_and_unknown_sounds_pass_when_the_check_is_off():
    assert problems(GOOD, name="other") == ["f.yaml:1: the flow is named 'f' but its file is other.yaml"]
    assert load_text(GOOD.replace("vm-goodbye", "made-up-prompt"), "f.yaml", None).name == "f"


def _bad_flows_dir(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    d.mkdir()
    shutil.copy(FLOWS / "screening.yaml", d / "screening.yaml")
    (d / "broken.yaml").write_text(GOOD.replace("name: f", "name: broken").replace("1: bye", "1: nowhere"))
    return d


def test_flows_check_command_prints_file_line_and_reason_and_fails(tmp_path, capsys):
    d = _bad_flows_dir(tmp_path)
    assert cli.main(["flows", "check", "--dir", str(d)]) == 1
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(d / 'broken.yaml'))}:8: node 'ask' goes to 'nowhere', which does not exist", err)
    assert "1 problem(s)" in err


def test_flows_check_command_passes_the_shipped_flows(sandbox_sounds, capsys):
    assert cli.main(["flows", "check"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 3 and "screening" in out


def test_server_does_not_start_on_an_invalid_flow(tmp_path, make_settings):
    settings = make_settings(**IVR_ENV, CALLCYCLE_IVR_FLOWS_DIR=str(_bad_flows_dir(tmp_path)))
    with pytest.raises(FlowsInvalid) as err:   # before any resource starts or any call is claimed
        init_app(settings)
    assert f"{tmp_path / 'flows' / 'broken.yaml'}:8: node 'ask' goes to 'nowhere'" in str(err.value)


def test_serve_refuses_an_invalid_flow_as_a_configuration_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CALLCYCLE_IVR_FLOWS_DIR", str(_bad_flows_dir(tmp_path)))
    monkeypatch.setenv("CALLCYCLE_API_TOKENS", "t:admin:" + "x" * 20)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and f"{tmp_path / 'flows' / 'broken.yaml'}:8:" in err


def test_server_does_not_start_when_the_sounds_cannot_be_listed_unless_the_check_is_off(make_settings):
    settings = make_settings(**{**IVR_ENV, "CALLCYCLE_IVR_SOUNDS_DIR": "/nonexistent/sounds/en"})
    with pytest.raises(FlowsInvalid) as err:
        init_app(settings, with_pbx=False)
    assert "/nonexistent/sounds/en" in str(err.value) and "check_sounds = false" in str(err.value)
    # Asterisk on another host: everything but the sound files is still checked.
    settings = make_settings(**{**IVR_ENV, "CALLCYCLE_IVR_SOUNDS_DIR": "/nonexistent", "CALLCYCLE_IVR_CHECK_SOUNDS": "0"})
    assert set(init_app(settings, with_pbx=False)[LOADED_FLOWS].flows) == {"screening", "csat_survey", "churn_recall"}


async def test_reload_through_the_api_swaps_flows_and_a_bad_set_is_refused_keeping_the_old(
        tmp_path, make_settings, aiohttp_client, sandbox_sounds):
    d = tmp_path / "flows"
    shutil.copytree(FLOWS, d)
    client = await aiohttp_client(init_app(make_settings(**IVR_ENV, CALLCYCLE_IVR_FLOWS_DIR=str(d)), with_pbx=False))
    body = await (await client.get("/api/ivr/flows", headers=auth("supervisor"))).json()
    before = {f["name"]: f["version"] for f in body["flows"]}
    (d / "screening.yaml").write_text((d / "screening.yaml").read_text().replace("timeout: 3", "timeout: 4"))
    (d / "broken.yaml").write_text(GOOD.replace("name: f", "name: broken").replace("vm-goodbye", "nope"))
    resp = await client.post("/api/ivr/flows/reload", headers=auth("admin"))
    assert resp.status == 422
    assert (await resp.json())["detail"] == [{"file": str(d / "broken.yaml"), "line": 13,
                                              "reason": f"unknown sound file 'nope' (not in {SOUNDS_DIR})"}]
    assert client.app[keys.IVR].flows.flows["screening"].version == before["screening"]
    (d / "broken.yaml").unlink()
    resp = await client.post("/api/ivr/flows/reload", headers=auth("admin"))
    assert resp.status == 200
    after = {f["name"]: f["version"] for f in (await resp.json())["flows"]}
    assert after["screening"] != before["screening"] and after["csat_survey"] == before["csat_survey"]
    assert (await client.get("/api/ivr/flows/screening", headers=auth("agent"))).status == 403
    one = await (await client.get("/api/ivr/flows/screening", headers=auth("supervisor"))).json()
    assert one["nodes"][0] == {"id": "ask", "type": "menu", "line": 13}
    assert (await client.get("/api/ivr/flows/nope", headers=auth("supervisor"))).status == 404
