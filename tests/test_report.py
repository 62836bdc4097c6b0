"""Calls driven with the built-in phone, each way a call can go, and every figure of the report checked,
on SQLite and on PostgreSQL (tests/flows/reports/desk.yaml)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from conftest import DESK, Desk
from helpers import T0

from ivr.analytics.calls import call_steps, recent_calls, state_calls
from ivr.analytics.report import Window, build_report
from ivr.cli import cli
from ivr.web.services import services

REGULAR = "+15550000001"  # calls twice: once at the start, once at the end


def seven_calls(desk: Desk) -> dict[str, str]:
    """Seven calls, one per way through the desk; their CallSids by name."""
    sids = {}
    call = desk.dial(REGULAR)  # contained: opening hours
    desk.wait(4)
    call.press("1")
    sids["contained"] = call.sid
    call = desk.dial()  # transferred, after one silence
    desk.wait(5)
    call.wait()
    desk.wait(3)
    call.press("2")
    desk.wait(60)
    call.dial_result("completed")
    sids["transferred"] = call.sid
    call = desk.dial()  # a wrong key, then a message
    desk.wait(2)
    call.press("9")
    desk.wait(2)
    call.press("3")
    desk.wait(10)
    call.record(10)
    sids["voicemail"] = call.sid
    call = desk.dial()  # hangs up in the menu
    desk.wait(7)
    call.hangup()
    sids["hung_up"] = call.sid
    call = desk.dial()  # silence until the menu gives up
    desk.wait(5)
    call.wait()
    desk.wait(5)
    call.wait()
    sids["max"] = call.sid
    call = desk.dial()  # the person is busy; nothing recorded
    desk.wait(1)
    call.press("2")
    desk.wait(20)
    call.dial_result("busy")
    desk.wait(3)
    call.record_nothing()
    sids["busy"] = call.sid
    call = desk.dial(REGULAR)  # the account look-up finds the caller: opening hours again
    desk.wait(2)
    call.press("4")
    sids["lookup"] = call.sid
    for name, sid in sids.items():
        assert desk.phone and sid, name
    return sids


def test_every_figure_of_the_report(desk):
    seven_calls(desk)
    db = desk.finish()
    flow = services(desk.app).flows.engine("desk").flow
    report = build_report(db, flow, Window(source="phone"))
    assert report["flow"] == "desk"
    assert report["calls"] == 7
    outcomes = {k: report[k] for k in ("contained", "transferred", "voicemail", "failed", "abandoned", "in_progress")}
    assert outcomes == {"contained": 2, "transferred": 1, "voicemail": 2, "failed": 0, "abandoned": 2, "in_progress": 0}
    # Time in the IVR, up to the transfer or the end: 4, 8, 14, 7, 10, 24, 2 seconds.
    assert report["time_in_ivr"] == {"median": 8.0, "p90": 24.0}
    assert report["callers"] == 6
    assert report["callers_again_24h"] == 1
    states = report["states"]
    assert set(states) == set(flow.states)
    menu = states["menu"]
    assert {k: menu[k] for k in ("entered", "calls", "no_input", "no_match", "max_reached", "hung_up_here")} == {
        "entered": 7, "calls": 7, "no_input": 2, "no_match": 1, "max_reached": 1, "hung_up_here": 1,
    }  # fmt: skip
    assert menu["routes"] == {"1": 1, "2": 2, "3": 1, "4": 1}
    # Seconds before each press, silence, wrong key or hang-up: 4; 5, 3; 2, 2; 7; 5, 5; 1; 2.
    assert menu["seconds"] == {"median": 3.0, "p90": 5.0}
    person = states["person"]
    assert (person["entered"], person["transferred"], person["routes"]) == (2, 1, {"completed": 1, "busy": 1})
    assert person["seconds"] == {"median": 20.0, "p90": 60.0}
    message = states["message"]
    assert (message["entered"], message["no_input"], message["routes"]) == (2, 1, {"recorded": 1})
    assert message["seconds"] == {"median": 3.0, "p90": 10.0}
    assert (states["thanks"]["entered"], states["thanks"]["texts"]) == (1, 1)
    lookup = states["lookup"]
    assert lookup["routes"] == {"found": 1}
    assert lookup["hook_ms"]["median"] >= 20
    assert states["bye"]["entered"] == 6
    assert states["hours"]["calls"] == 2
    untouched = states["sorry"]
    assert untouched["entered"] == 0 and untouched["seconds"] == {"median": None, "p90": None}
    assert all(s["errors"] == 0 for s in states.values())


def test_the_report_counts_twilio_calls_unless_asked(desk):
    seven_calls(desk)
    db = desk.finish()
    flow = services(desk.app).flows.engine("desk").flow
    assert build_report(db, flow)["calls"] == 0  # the built-in phone's calls are not Twilio's
    assert build_report(db, flow, Window(source=None))["calls"] == 7


def test_a_window_reads_the_calls_that_started_in_it(desk):
    seven_calls(desk)
    db = desk.finish()
    # The first four calls start within 60 s of T0 + 0 ... the fifth at T0 + 98.
    report = build_report(db, "desk", Window(since=T0 + 90, source="phone"))
    assert report["calls"] == 3
    assert build_report(db, "desk", Window(until=T0, source="phone"))["calls"] == 0


def test_json_and_csv_carry_the_same_figures(desk, monkeypatch):
    seven_calls(desk)
    desk.finish()
    monkeypatch.setenv("IVR_EVENTS", desk.app.config["IVR_EVENTS"])
    runner = CliRunner()
    args = ["report", "desk", "--flows", str(DESK), "--source", "phone"]
    shown = runner.invoke(cli, [*args, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    for key in ("flow", "calls", "abandoned", "contained"):
        assert key in report
    for figures in report["states"].values():
        for key in ("entered", "no_input", "no_match", "hung_up_here"):
            assert isinstance(figures[key], int)
    table = runner.invoke(cli, [*args, "--format", "csv"])
    rows = {row["state"]: row for row in csv.DictReader(io.StringIO(table.output))}
    assert rows["menu"]["no_input"] == str(report["states"]["menu"]["no_input"]) == "2"
    assert rows["sorry"]["seconds_median"] == ""
    text = runner.invoke(cli, args)
    assert "Flow desk: 7 calls (phone)" in text.output
    assert "abandoned          2" in text.output


def test_calls_lists_a_flow_and_tells_one_call(desk, monkeypatch):
    sids = seven_calls(desk)
    db = desk.finish()
    listed = recent_calls(db, "desk", Window(source="phone"))
    assert listed[0].call_sid == sids["lookup"]
    assert {c.call_sid: c.outcome for c in listed}[sids["hung_up"]] == "abandoned"
    summary, steps = call_steps(db, sids["voicemail"])
    assert summary.outcome == "voicemail"
    kinds = [(s.state, s.kind, s.detail) for s in steps]
    assert kinds[:3] == [(None, "call", "inbound"), ("menu", "entered", None), ("menu", "no_match", "no_match")]
    assert ("message", "recording", "recorded") in kinds
    assert kinds[-1] == (None, "ended", "completed")
    reached = state_calls(db, "desk", "person", Window(source="phone"))
    assert {c.call_sid for c in reached} == {sids["transferred"], sids["busy"]}
    monkeypatch.setenv("IVR_EVENTS", desk.app.config["IVR_EVENTS"])
    told = CliRunner().invoke(cli, ["calls", sids["lookup"]])
    assert told.exit_code == 0, told.output
    assert "hook found" in told.output and "look_up_account" not in told.output.split("hook found")[0][-5:]
    assert " ms" in told.output
    listing = CliRunner().invoke(cli, ["calls", "desk", "--source", "phone"])
    assert sids["max"] in listing.output and "abandoned" in listing.output


def test_a_failed_hook_counts_as_an_error_and_its_call_as_failed(desk, hooks):
    hooks.raises("look_up_account", RuntimeError("the accounts service is down"))
    call = desk.dial()
    desk.wait(2)
    call.press("4")
    assert call.heard[-1] == "Sorry, something went wrong."
    db = desk.finish()
    report = build_report(db, services(desk.app).flows.engine("desk").flow, Window(source="phone"))
    assert (report["calls"], report["failed"], report["abandoned"]) == (1, 1, 0)
    lookup = report["states"]["lookup"]
    assert (lookup["errors"], lookup["routes"]) == (1, {"error": 1})
    assert report["states"]["sorry"]["entered"] == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["report", "nosuch"], "the journal has no call of a flow 'nosuch'"),
        (["calls", "nosuch"], "the journal has no call of a flow 'nosuch'"),
        (["calls", "CA65ea3c92"], "is not a CallSid"),
        (["report", "desk", "--since", "99999999d"], "give a shorter span"),
        (["calls", "desk", "--limit", "0"], "--limit"),
    ],
)
def test_mistakes_on_the_command_line_say_what_to_do(desk, monkeypatch, args, says):
    seven_calls(desk)
    desk.finish()
    monkeypatch.setenv("IVR_EVENTS", desk.app.config["IVR_EVENTS"])
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 2, done.output
    assert says in done.output and "Traceback" not in done.output


def test_reading_a_journal_that_is_not_there_makes_none(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_EVENTS", f"sqlite:///{tmp_path}/nodir/x.sqlite3")
    done = CliRunner().invoke(cli, ["report", "main"])
    assert done.exit_code == 1 and "no call journal at" in done.output
    assert not (tmp_path / "nodir").exists()
