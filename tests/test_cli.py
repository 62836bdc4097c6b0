"""`python -m ivr`: the terminal phone, replays of recorded calls, and importing a real call."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree

import click
import pytest
from conftest import FLOWS

from ivr.cli import main
from ivr.phone.recording import read_recording
from ivr.testing import TwimlSchema

TESTS = Path(__file__).resolve().parent
CALLS = TESTS / "calls"
EVENTS = TESTS / "fixtures" / "twilio" / "call_events.json"
EVENTS_SID = "CA5e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"  # the call in call_events.json
PROMPT = (
    "For sales, press 1 or say sales. For support, press 2 or say support. "
    "To leave a message, press 3. For our opening hours, press 4."
)
SUPPORT = "For billing, press 1 or say billing. For technical support, press 2. To go back, press 9."

BROKEN_FLOW = """\
start: menu
error_state: oops
states:
  menu:
    say: Press 1 to hear your messages.
    gather: {num_digits: 1}
    routes: {"1": count}
  count:
    say: "You have {{ missing > 3 }} messages."
    hangup: true
  oops:
    say: Sorry, something went wrong.
    hangup: true
"""


def run(*args: str) -> int:
    """The CLI's exit status, whether main returns it or exits with it."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return exc.code


@pytest.fixture(autouse=True)
def shipped_flows(monkeypatch):
    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)


# -- phone ----------------------------------------------------------------------------------------


def test_phone_with_keys_prints_the_transcript_in_order(capsys):
    assert run("phone", "main", "--state", "menu", "--keys", "1 busy record:12") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Calling main from +15551230000 (CallSid CA")
    assert out[1:] == [
        f"  {PROMPT}",
        "  [main/menu waits for gather]",
        "> 1",
        "  Connecting you to sales.",
        "  [main/sales waits for dial]",
        "> busy",
        "  Please leave a message after the beep. Press the pound key when you are done.",
        "  [main/voicemail waits for record]",
        "> record:12",
        "  Thank you, we got your 12 second message.",
        "  Thanks for calling Acme. Goodbye.",
        "Call ended: hangup",
    ]


def test_phone_hangs_up_when_the_script_runs_out(capsys):
    assert run("phone", "main", "--state", "menu", "--keys", "2") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-4:] == [
        "> 2",
        f"  {SUPPORT}",
        "  [main/support_menu waits for gather]",
        "(script ended; hanging up)",
    ]


def test_phone_ending_in_the_flows_error_state_exits_1(capsys, monkeypatch, flows_dir):
    (flows_dir / "broken.yaml").write_text(BROKEN_FLOW, encoding="utf-8")
    monkeypatch.setenv("IVR_FLOWS_DIR", str(flows_dir))
    assert run("phone", "broken", "--keys", "1") == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-2:] == ["  Sorry, something went wrong.", "Call ended: hangup"]
    assert "The call ended in the flow's error state 'oops'." in captured.err


def test_phone_refuses_an_unknown_flow_naming_the_known_ones(capsys):
    assert run("phone", "nosuch", "--keys", "1") == 2
    known = ", ".join(sorted(p.stem for p in FLOWS.glob("*.yaml")))
    assert f"no flow 'nosuch' (flows: {known})" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("jump", "'jump' is not something a caller can do"),
        ("busy", "cannot give a dial result: the call is waiting for input to a <Gather>"),
        ("12x", "'12x' is not something a caller can do"),
    ],
)
def test_phone_stops_with_status_2_on_a_token_that_does_not_fit(capsys, keys, message):
    assert run("phone", "main", "--state", "menu", "--keys", keys) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "record:SECONDS" in err  # the list of what a caller can do


# -- replay ---------------------------------------------------------------------------------------


def test_replay_of_the_recorded_calls_exits_0(capsys):
    files = sorted(CALLS.glob("*.jsonl"))
    assert run("replay", *map(str, files)) == 0
    out = capsys.readouterr().out.splitlines()
    # An agent's conversation is a step of its own, before its <Connect action> request.
    steps = {path: sum(1 + bool(line.get("agent")) for line in read_recording(path)[1]) for path in files}
    assert out == [f"{path}: {steps[path]} steps, same as recorded" for path in files]


def test_replay_exits_1_with_the_diff_when_a_prompt_changed(capsys, monkeypatch, tmp_path):
    flows = shutil.copytree(FLOWS, tmp_path / "flows")
    main_yaml = flows / "main.yaml"
    text = main_yaml.read_text(encoding="utf-8")
    main_yaml.write_text(text.replace("say: Connecting you to sales.", "say: Sales, one moment."), encoding="utf-8")
    monkeypatch.setenv("IVR_FLOWS_DIR", str(flows))
    assert run("replay", str(CALLS / "sales_busy_leaves_voicemail.jsonl")) == 1
    out = capsys.readouterr().out
    assert '  -  <Say language="en-US" voice="Polly.Joanna">Connecting you to sales.</Say>' in out
    assert '  +  <Say language="en-US" voice="Polly.Joanna">Sales, one moment.</Say>' in out
    assert "1 of 5 steps differ (changed since recording: main)" in out


def test_replay_of_a_file_that_is_not_a_recording_exits_1_naming_it(capsys, tmp_path):
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"hello": 1}\n', encoding="utf-8")
    assert run("replay", str(bogus)) == 1
    assert f"{bogus}:1: not an ivr recording" in capsys.readouterr().err


# -- import-call ----------------------------------------------------------------------------------


def test_import_call_writes_a_recording_that_replays(capsys, tmp_path):
    assert run("import-call", EVENTS_SID, "--file", str(EVENTS), "--out", str(tmp_path)) == 0
    path = tmp_path / f"{EVENTS_SID}.jsonl"
    assert f"wrote {path} (4 webhooks)" in capsys.readouterr().out
    header, lines = read_recording(path)
    assert header["call_sid"] == EVENTS_SID
    assert header["source"] == "twilio-events"
    assert header["public_url"] == "https://acme.example.com/ivr"
    assert len(lines) == 4
    assert run("replay", str(path)) == 0
    assert "4 steps, same as recorded" in capsys.readouterr().out


def test_import_call_of_a_call_not_in_the_file_exits_1_with_a_message(capsys, tmp_path):
    other = "CA" + "0" * 32
    assert run("import-call", other, "--file", str(EVENTS), "--out", str(tmp_path)) == 1
    assert f"no voice webhooks of {other}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_phone_refuses_an_unknown_state_naming_the_states(capsys):
    assert run("phone", "main", "--state", "nosuch") == 2
    assert "flow 'main' has no state 'nosuch' (states: after_hours_menu, apology," in capsys.readouterr().err


def test_phone_reports_an_unclosed_quote_in_the_script(capsys):
    assert run("phone", "main", "--keys", "1 'say:large") == 2
    assert "No closing quotation" in capsys.readouterr().err


def test_phone_suggests_the_outcome_meant(capsys):
    assert run("phone", "main", "--state", "sales", "--keys", "no_answer") == 2
    assert "'no_answer' is not something a caller can do (did you mean 'no-answer'?)" in capsys.readouterr().err


def test_phone_says_which_tokens_came_after_the_end_of_the_call(capsys):
    assert run("phone", "main", "--state", "menu", "--keys", "1 completed 2 3") == 0
    assert "(the call ended before: 2 3)" in capsys.readouterr().err


def test_each_phone_call_gets_its_own_callsid_so_recordings_never_merge(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("IVR_RECORD_DIR", str(tmp_path))
    assert run("phone", "main", "--state", "menu", "--keys", "1 completed") == 0
    assert run("phone", "main", "--state", "menu", "--keys", "1 completed") == 0
    files = sorted(tmp_path.glob("CA*.jsonl"))
    assert len(files) == 2
    assert all(len(read_recording(path)[1]) == 4 for path in files)  # entry, menu, dial, status callback


@pytest.mark.parametrize(
    ("at", "first_line"),
    [("2026-11-25T10:00-05:00", "For sales, press 1"), ("2026-11-25T20:00-05:00", "Our office is closed right now.")],
)
def test_phone_at_a_given_time_takes_the_route_of_that_hour(capsys, at, first_line):
    assert run("phone", "main", "--at", at, "--keys", "hangup") == 0
    assert capsys.readouterr().out.splitlines()[2].strip().startswith(first_line)


def test_phone_at_needs_an_offset(capsys):
    assert run("phone", "main", "--at", "2026-11-25T10:00", "--keys", "hangup") == 2
    assert "needs its offset" in capsys.readouterr().err


def _commands(group):
    for command in group.commands.values():
        yield command
        if isinstance(command, click.Group):
            yield from _commands(command)


def test_every_command_reports_an_ivr_error_the_same_way():
    """Each command is built on ivr/cli/base.py's classes: the one place an IvrError becomes click's error."""
    from ivr.cli import cli
    from ivr.cli.base import Command, Group

    strays = [c.name for c in _commands(cli) if not isinstance(c, Command | Group)]
    assert strays == []


def test_an_ivr_error_is_one_line_and_exit_status_1(tmp_path, monkeypatch, capsys):
    from ivr.cli import main

    monkeypatch.setenv("IVR_ENV", "production")
    monkeypatch.setenv("IVR_STORE", "memory://")
    monkeypatch.setenv("IVR_FLOWS_DIR", str(tmp_path))
    assert main(["messages"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: IVR_STORE=memory:// lives inside this command")
    assert "Traceback" not in err


# -- fallback-twiml -------------------------------------------------------------------------------


def test_fallback_twiml_prints_the_apps_own_fallback_apology_valid_for_a_twiml_bin(client, capsys):
    assert run("fallback-twiml") == 0
    printed = capsys.readouterr().out
    assert printed == client.post("/twilio/fallback").get_data(as_text=True) + "\n"
    TwimlSchema.shared().check(printed.encode())


def test_fallback_twiml_says_the_words_and_voice_asked_for(capsys):
    assert (
        run("fallback-twiml", "--say", "Acme is closed for a moment. Please call back.", "--voice", "Polly.Joanna") == 0
    )
    printed = capsys.readouterr().out
    TwimlSchema.shared().check(printed.encode())
    say = ElementTree.fromstring(printed.encode()).find("Say")
    assert (say.text, say.get("voice")) == ("Acme is closed for a moment. Please call back.", "Polly.Joanna")


def test_fallback_twiml_refuses_an_empty_apology(capsys):
    assert run("fallback-twiml", "--say", " ") == 2
    assert "give the words the caller hears" in capsys.readouterr().err
