"""Recorded calls (tests/calls/) and Twilio's Call Events loaded into the journal with source `import`,
at their own times, so that a report can be made from them; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.analytics.database import open_events
from ivr.analytics.report import Window, build_report
from ivr.analytics.rows import keyed_hash
from ivr.cli import cli
from ivr.core.loader import load_flow
from ivr.errors import ConfigError
from ivr.phone.recording import read_recording
from ivr.settings import load_settings
from ivr.web.journal_load import load_calls

ROOT = Path(__file__).resolve().parent.parent
CALLS = sorted((ROOT / "tests" / "calls").glob("*.jsonl"))
MAIN_CALLS = [p for p in CALLS if read_recording(p)[1][0]["url"].endswith("/voice/main")]  # the calls into main
EVENTS = ROOT / "tests" / "fixtures" / "twilio" / "call_events.json"
EVENTS_CALL = "CA5e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
KEY = "l" * 64


def _settings(journal_url: str, **more) -> dict:
    return load_settings({"IVR_EVENTS": journal_url, "IVR_ANALYTICS_KEY": KEY, "IVR_FLOWS_DIR": str(ROOT / "flows"),
                          "IVR_ENV": "production", **more})  # fmt: skip


def _started(path: Path) -> float:
    return datetime.fromisoformat(read_recording(path)[1][0]["t"].replace("Z", "+00:00")).timestamp()


def test_a_report_from_the_loaded_recordings_shows_their_calls_and_the_states_they_entered(journal_url):
    loaded = load_calls(CALLS, _settings(journal_url))

    assert [item.skipped for item in loaded] == [None] * len(CALLS)
    assert all(item.differing == 0 for item in loaded)  # today's flows answer as recorded
    db = open_events(journal_url)
    report = build_report(db, load_flow(ROOT / "flows" / "main.yaml"), Window(source="import"))
    assert report["calls"] == 5
    states = report["states"]
    entered = {name: states[name]["entered"] for name in
               ("menu", "sales", "support_menu", "billing", "voicemail", "after_hours_menu")}  # fmt: skip
    assert entered == {"menu": 5, "sales": 1, "support_menu": 1, "billing": 1, "voicemail": 3, "after_hours_menu": 1}
    assert states["menu"]["routes"] == {"1": 1, "2": 1, "3": 1, "4": 1}  # back from the hours flow: 5 entries
    assert states["menu"]["max_reached"] == 1  # the silent caller
    assert states["sales"]["routes"] == {"busy": 1}
    assert build_report(db, "main", Window(source="replay"))["calls"] == 0
    assert build_report(db, "main", Window(source="twilio"))["calls"] == 0
    rows = db.query("SELECT call_sid, source, started_at, caller, status FROM calls ORDER BY call_sid")
    by_sid = {read_recording(p)[0]["call_sid"]: p for p in CALLS}
    assert [r[0] for r in rows] == sorted(by_sid)
    for sid, source, started, caller, status in rows:
        assert source == "import" and status == "completed"
        assert started == _started(by_sid[sid])  # the call's own time, not the time it was loaded
        assert caller == keyed_hash(KEY.encode(), "+15551230000")  # the app's key: forget-caller finds it
    assert {r[0] for r in db.query("SELECT DISTINCT source FROM events")} == {"import"}
    db.close()


def test_loading_twice_counts_nothing_twice(journal_url):
    settings = _settings(journal_url)
    load_calls(CALLS[:2], settings)
    db = open_events(journal_url)
    first = db.query("SELECT COUNT(*) FROM events")[0][0]
    assert [item.skipped for item in load_calls(CALLS[:2], settings)] == ["already in the journal"] * 2
    assert db.query("SELECT COUNT(*) FROM events") == [(first,)]
    again = load_calls(CALLS, settings)
    assert [item.skipped for item in again] == ["already in the journal"] * 2 + [None] * (len(CALLS) - 2)
    assert db.query("SELECT COUNT(*) FROM calls") == [(len(CALLS),)]
    db.close()


def test_twilio_call_events_are_converted_then_loaded(journal_url):
    [loaded] = load_calls([EVENTS], _settings(journal_url))
    assert (loaded.call_sid, loaded.skipped) == (EVENTS_CALL, None)
    assert loaded.steps == 4
    db = open_events(journal_url)
    [(source, started, flow)] = db.query("SELECT source, started_at, flow FROM calls WHERE call_sid = ?", [EVENTS_CALL])
    assert (source, flow) == ("import", "main")
    assert started == datetime.fromisoformat("2026-11-25T15:00:01+00:00").timestamp()  # Twilio's date_created
    states = [r[0] for r in db.query("SELECT state FROM events WHERE kind = 'entered' ORDER BY id")]
    assert states[0] == "welcome" and {"menu", "sales", "voicemail"} <= set(states)
    db.close()


def test_journal_load_command_prints_each_call_and_the_total(journal_url, tmp_path):
    env = {"IVR_EVENTS": journal_url, "IVR_ANALYTICS_KEY": KEY, "IVR_FLOWS_DIR": str(ROOT / "flows")}
    runner = CliRunner()
    shown = runner.invoke(cli, ["journal", "load", *map(str, MAIN_CALLS[:2]), str(EVENTS)], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"{MAIN_CALLS[0]}: " in shown.output and "loaded (4 webhooks)" in shown.output
    assert f"({EVENTS_CALL}): {EVENTS_CALL} loaded" in shown.output
    assert "3 of 3 calls loaded (source import)" in shown.output
    report = runner.invoke(cli, ["report", "main", "--source", "import", "--format", "json"], env=env)
    assert json.loads(report.output)["calls"] == 3
    again = runner.invoke(cli, ["journal", "load", str(MAIN_CALLS[0])], env=env)
    assert "skipped: already in the journal" in again.output and "0 of 1 calls loaded" in again.output


def test_a_changed_flow_is_loaded_along_todays_path_and_says_so(journal_url, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    for name in ("main.yaml", "hours.yaml", "hooks.py"):
        if (ROOT / "flows" / name).exists():
            (flows / name).write_text((ROOT / "flows" / name).read_text())
    main = flows / "main.yaml"
    main.write_text(main.read_text().replace("Connecting you to sales", "Putting you through to sales"))
    sales = next(p for p in CALLS if "sales" in p.name)
    [loaded] = load_calls([sales], _settings(journal_url), flows_dir=flows)
    assert loaded.differing >= 1 and loaded.changed_flows == ["main"]
    assert "answered differently by today's flows; changed since: main" in loaded.line()


def test_a_file_that_is_neither_is_refused(journal_url, tmp_path):
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"events": [{"request": {"url": "https://x/twilio/status", "parameters": {}}}]}))
    with pytest.raises(ValueError, match="no voice webhook of a call"):
        load_calls([page], _settings(journal_url))
    shown = CliRunner().invoke(
        cli, ["journal", "load", str(page)], env={"IVR_EVENTS": journal_url, "IVR_ANALYTICS_KEY": KEY}
    )
    assert shown.exit_code == 1 and "no voice webhook of a call" in shown.output


def test_production_without_the_key_loads_nothing(journal_url):
    with pytest.raises(ConfigError, match="IVR_ANALYTICS_KEY is not set"):
        load_calls(CALLS, _settings(journal_url, IVR_ANALYTICS_KEY=""))
    db = open_events(journal_url)
    assert db.query("SELECT COUNT(*) FROM calls") == [(0,)]
    db.close()


def test_a_masked_recording_keeps_no_caller(journal_url, tmp_path):
    """A masked number is shared by many callers: hashing it would merge them and hide them from forget-caller."""
    from ivr.phone.recording import mask_numbers

    source = CALLS[0]
    header, *lines = source.read_text().splitlines()
    head = json.loads(header)
    head["masked"] = True
    masked = tmp_path / source.name
    masked.write_text("\n".join([json.dumps(head), *(mask_numbers(line) for line in lines)]) + "\n")
    loaded = load_calls([masked], _settings(journal_url))
    assert [item.skipped for item in loaded] == [None]
    with open_events(journal_url) as db:
        assert db.query("SELECT caller FROM calls") == [(None,)]
