"""The call journal's machinery: migrations on both databases, the background writer, where rows come
from, and A/B splits read back with their comparison."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import BASE, caller_params, sign
from helpers import T0, FakeClock

from ivr.analytics import EventWriter, open_events
from ivr.analytics.database import PostgresEvents, SQLiteEvents
from ivr.analytics.report import Window, build_report
from ivr.analytics.schema import MIGRATIONS, latest
from ivr.errors import EventsError
from ivr.testing import TwimlSchema, phone_for
from ivr.web.services import services

AB = Path(__file__).parent / "flows" / "ab"
DESK = Path(__file__).parent / "flows" / "reports"


@pytest.fixture(autouse=True)
def _desk_hook(hooks):
    """The desk flow runs a hook: the app refuses a flow whose hooks are not registered."""
    hooks.returns("look_up_account", outcome="found")


def event(sid: str = "CA1", at: float = T0, kind: str = "entered", state: str = "menu") -> tuple:
    return (sid, "desk", state, kind, None, None, None, None, None, at, None, None, "twilio")


# -- migrations ----------------------------------------------------------------------------------


def test_a_new_journal_is_made_at_the_latest_version(journal_url):
    with open_events(journal_url) as db:
        assert db.version() == latest() == MIGRATIONS[-1].version
        db.write([event()])
        assert db.query("SELECT call_sid, kind FROM events") == [("CA1", "entered")]
    with open_events(journal_url) as again:  # opening it again changes nothing
        assert again.version() == latest()
        assert again.query("SELECT COUNT(*) FROM journal_schema") == [(1,)]


def test_a_journal_at_version_1_is_migrated_keeping_its_rows(journal_url):
    # open_events always migrates: a version-1 journal is built by hand, as that version shipped it.
    if journal_url.startswith("sqlite"):
        old = SQLiteEvents(Path(journal_url[len("sqlite:///") :]))
    else:
        old = PostgresEvents(journal_url)
    first = MIGRATIONS[0]
    with old.transaction() as cursor:
        cursor.execute("CREATE TABLE journal_schema (version INTEGER NOT NULL)")
        for statement in old._migration_statements(first):
            cursor.execute(statement)
        cursor.execute("INSERT INTO journal_schema (version) VALUES (1)")
    old.write([event("CAold")])
    old.close()
    with open_events(journal_url) as db:
        check_migrated(db)


def check_migrated(db) -> None:
    assert db.version() == latest() > 1
    assert db.query("SELECT call_sid FROM events") == [("CAold",)]
    indexes = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'events_flow_at'",
        "postgresql": (
            "SELECT indexname FROM pg_indexes WHERE indexname = 'events_flow_at' AND schemaname = current_schema()"
        ),
    }[db.name]
    assert db.query(indexes) == [("events_flow_at",)]


def test_a_journal_newer_than_the_code_is_refused_and_says_what_to_do(journal_url):
    with open_events(journal_url) as db:
        db.execute("UPDATE journal_schema SET version = ?", (latest() + 1,))
    with pytest.raises(EventsError, match=rf"schema version {latest() + 1}, newer than this ivr knows .*upgrade ivr"):
        open_events(journal_url)


def test_workers_starting_together_migrate_once(journal_url):
    opened, failed = [], []

    def start() -> None:
        try:
            with open_events(journal_url) as db:
                opened.append(db.version())
        except Exception as exc:  # pragma: no cover - what the test is about
            failed.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (failed, opened) == ([], [latest()] * 4)
    with open_events(journal_url) as db:
        assert db.query("SELECT COUNT(*) FROM journal_schema") == [(1,)]


def test_an_unknown_journal_url_says_which_are_known():
    from ivr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sqlite:///relative/path.*postgresql://.*or off"):
        open_events("mysql://localhost/ivr")


# -- the writer ----------------------------------------------------------------------------------


def test_the_writer_writes_in_the_background(tmp_path):
    writer = EventWriter(lambda: open_events(f"sqlite:///{tmp_path}/e.sqlite3"), interval=0.05)
    writer.add([event()])
    deadline = time.monotonic() + 5
    while writer.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.pending() == 0
    assert writer.database.query("SELECT COUNT(*) FROM events") == [(1,)]
    writer.close()


def test_rows_wait_while_the_database_fails_and_are_written_once_it_is_back(tmp_path, caplog):
    path = tmp_path / "e.sqlite3"
    writer = EventWriter(lambda: open_events(f"sqlite:///{path}"), background=False)
    writer.add([event("CA1")])
    writer.flush()
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the file: writes fail after the busy timeout
    writer.database.close()
    writer.database.timeout = 0.05
    writer.add([event("CA2")], answered=None)
    with caplog.at_level(logging.ERROR, logger="ivr.analytics"):
        writer._flush_logged()
        writer._flush_logged()
    assert writer.failing and writer.pending() == 1
    assert len([r for r in caplog.records if "rows kept to write later" in r.message]) == 1  # said once
    blocker.rollback()
    blocker.close()
    writer._flush_logged()
    assert not writer.failing and writer.pending() == 0
    assert writer.database.query("SELECT call_sid FROM events ORDER BY id") == [("CA1",), ("CA2",)]


def test_past_its_limit_the_writer_drops_the_oldest_rows_and_says_so(tmp_path, caplog):
    writer = EventWriter(lambda: open_events(f"sqlite:///{tmp_path}/e.sqlite3"), background=False, limit=3)
    with caplog.at_level(logging.ERROR, logger="ivr.analytics"):
        writer.add([event(f"CA{i}") for i in range(5)])
    assert writer.dropped == 2
    assert "rows dropped (2 so far)" in caplog.text
    writer.flush()
    assert writer.database.query("SELECT call_sid FROM events ORDER BY id") == [("CA2",), ("CA3",), ("CA4",)]


# -- where rows come from --------------------------------------------------------------------------


def test_twilio_webhooks_are_journaled_as_twilio_calls(make_app, journal_url):
    app = make_app({"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": journal_url})
    params = caller_params("CA" + "a" * 32, from_="+15550001111")
    url = f"{BASE}/voice/desk"
    response = app.test_client().post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})
    assert response.status_code == 200
    writer = services(app).events
    writer.flush()
    rows = writer.database.query("SELECT source, caller, waiting_state FROM calls")
    [(source, caller, waiting)] = rows
    assert (source, waiting) == ("twilio", "menu")
    assert caller is not None and "5550001111" not in caller and len(caller) == 32  # a keyed hash, not the number
    assert build_report(writer.database, "desk")["calls"] == 1
    writer.close()


def test_numbers_are_kept_when_a_setting_says_so(make_app, tmp_path):
    app = make_app({"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3",
                    "IVR_ANALYTICS_NUMBERS": "keep"})  # fmt: skip
    phone_for(app).dial("desk", from_="+15550002222")
    services(app).events.flush()
    assert services(app).events.database.query("SELECT caller FROM calls") == [("+15550002222",)]


def test_a_withheld_number_is_no_caller(make_app, tmp_path):
    app = make_app({"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3"})
    phone_for(app).dial("desk", from_="anonymous")
    services(app).events.flush()
    assert services(app).events.database.query("SELECT caller FROM calls") == [(None,)]


def test_the_same_key_gives_the_same_hash_across_restarts(make_app, tmp_path):
    config = {"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3", "IVR_ANALYTICS_KEY": None}
    hashes = []
    for _ in range(2):  # development: the key is kept in a file beside the journal
        app = make_app(config)
        phone_for(app).dial("desk", from_="+15550003333")
        services(app).events.flush()
        hashes.append(services(app).events.database.query("SELECT caller FROM calls ORDER BY started_at")[-1][0])
    assert hashes[0] == hashes[1]
    assert (tmp_path / "ivr-analytics.key").stat().st_mode & 0o077 == 0


def test_production_needs_the_analytics_key_or_no_journal(make_app, production):
    from ivr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"IVR_ANALYTICS_KEY is not set.*IVR_EVENTS=off"):
        make_app({**production, "IVR_ANALYTICS_KEY": None})
    make_app({**production, "IVR_ANALYTICS_KEY": None, "IVR_EVENTS": "off"})  # no journal: no key needed


def test_readiness_shows_a_failing_journal_without_taking_the_server_out(make_app, production):
    app = make_app(production)
    services(app).events._failing = True
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ready"
    assert body["checks"]["journal"]["ok"] is False
    assert "not taking rows" in body["checks"]["journal"]["error"]


# -- A/B splits ------------------------------------------------------------------------------------


def test_the_report_compares_a_splits_variants(make_app, journal_url):
    clock = FakeClock(T0)
    app = make_app({"IVR_FLOWS_DIR": str(AB), "IVR_EVENTS": journal_url},
                   clock=lambda: datetime.fromtimestamp(clock(), UTC))  # fmt: skip
    phone = phone_for(app, schema=TwimlSchema.shared())
    phone.clock = clock
    heard = {"old_menu": 0, "new_menu": 0}
    contained = {"old_menu": 0, "new_menu": 0}
    for i in range(120):
        call = phone.dial("ab", from_=f"+1555010{i:04d}")
        variant = "old_menu" if call.heard == ["For opening hours press 1."] else "new_menu"
        heard[variant] += 1
        clock.advance(3)
        # The new menu works better: nine callers in ten press 1 against one in two.
        if (variant == "new_menu" and i % 10) or (variant == "old_menu" and i % 2):
            call.press("1")
            contained[variant] += 1
        else:
            call.hangup()
    services(app).events.flush()
    from ivr.web.drain import drain_now

    drain_now(app)
    services(app).events.flush()
    flow = services(app).flows.engine("ab").flow
    split = build_report(services(app).events.database, flow, Window(source="phone"))["splits"]["greeting"]
    assert list(split["variants"]) == ["old_menu", "new_menu"]  # the control is the variant written first
    for name in heard:
        figures = split["variants"][name]
        assert (figures["calls"], figures["contained"]) == (heard[name], contained[name])
        assert figures["abandoned"] == heard[name] - contained[name]
    assert 40 <= heard["old_menu"] <= 80  # 50/50 by number
    [comparison] = split["comparisons"]
    assert (comparison["control"], comparison["variant"]) == ("old_menu", "new_menu")
    containment = comparison["containment"]
    assert containment["difference"] == pytest.approx(
        contained["new_menu"] / heard["new_menu"] - contained["old_menu"] / heard["old_menu"]
    )
    assert containment["low"] < containment["difference"] < containment["high"]
    assert containment["significant"] is (containment["low"] > 0)
    services(app).events.close()


def test_a_call_redirected_to_another_flow_belongs_to_the_first_and_hangs_up_in_the_second(make_app, tmp_path):
    from conftest import OPEN_HOURS

    clock = FakeClock(OPEN_HOURS.timestamp())
    app = make_app({"IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3"},
                   clock=lambda: datetime.fromtimestamp(clock(), UTC))  # fmt: skip
    phone = phone_for(app, schema=TwimlSchema.shared())
    phone.clock = clock
    call = phone.dial("main")
    clock.advance(2)
    call.press("4")  # opening hours: the hours flow, which asks whether to hear them again
    assert call.flow == "hours"
    clock.advance(6)
    call.hangup()
    from ivr.web.drain import drain_now

    drain_now(app)
    services(app).events.flush()
    db = services(app).events.database
    flows = services(app).flows
    main = build_report(db, flows.engine("main").flow, Window(source="phone"))
    hours = build_report(db, flows.engine("hours").flow, Window(source="phone"))
    assert (main["calls"], main["contained"], hours["calls"]) == (1, 1, 0)  # marked contained in hours
    assert all(s["hung_up_here"] == 0 for s in main["states"].values())
    assert set(main["states"]) == set(flows.engine("main").flow.states)  # no state of another flow
    assert hours["states"]["again"]["hung_up_here"] == 1
    assert hours["states"]["again"]["seconds"] == {"median": 6.0, "p90": 6.0}
    assert hours["states"]["hours"]["entered"] == 1
    from ivr.analytics.calls import call_steps, format_steps

    told = format_steps(*call_steps(db, call.sid))
    assert "hours/again" in told and "  menu " in told  # the other flow's states are named with their flow


# -- review: what a newcomer and a reviewer found ----------------------------------------------


def test_the_terminal_phone_over_http_counts_as_the_phone_and_its_pretend_time_is_not_the_journals(make_app, tmp_path):
    clock = FakeClock(T0)
    app = make_app({"IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None, "IVR_FLOWS_DIR": str(DESK),
                    "IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3"},
                   clock=lambda: datetime.fromtimestamp(clock(), UTC))  # fmt: skip
    client = app.test_client()
    headers = {"X-Ivr-Phone": "1", "X-Ivr-Clock": "2026-11-25T10:00-05:00"}  # what `phone --url --at` sends
    params = caller_params("CA" + "b" * 32)
    client.post("/voice/desk", data=params, headers=headers)
    clock.advance(4)
    client.post("/voice/desk/menu", data={**params, "Digits": "1"}, headers=headers)
    services(app).events.flush()
    db = services(app).events.database
    assert db.query("SELECT source, started_at, last_at FROM calls") == [("phone", T0, T0 + 4)]
    assert db.query("SELECT seconds FROM events WHERE kind = 'key'") == [(4.0,)]  # measured, not the pretend 0


def test_only_this_machine_in_development_may_call_itself_the_phone(make_app, tmp_path):
    app = make_app({"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3"})  # test env
    params = caller_params("CA" + "c" * 32)
    url = f"{BASE}/voice/desk"
    app.test_client().post(url, data=params, headers={"X-Twilio-Signature": sign(url, params), "X-Ivr-Phone": "1"})
    services(app).events.flush()
    assert services(app).events.database.query("SELECT source FROM calls") == [("twilio",)]


def test_an_unknown_journal_url_stops_the_app_at_start(make_app):
    from ivr.errors import ConfigError

    with pytest.raises(ConfigError, match=r"IVR_EVENTS=mysql://\.\.\. is not a journal URL"):
        make_app({"IVR_EVENTS": "mysql://x"})


def test_tenths_of_seconds_are_the_same_on_both_databases(journal_url):
    """Halves: SQLite's ROUND goes away from zero, PostgreSQL's to even; the report's rule is one (halves up)."""
    from ivr.analytics.report import tenths

    values = [0.05, 0.25, 0.45, 2.25, 3.35]
    with open_events(journal_url) as db:
        db.write([(f"CA{i}", "desk", "menu", "key", "1", None, None, v, None, T0, None, None, "twilio")
                  for i, v in enumerate(values)])  # fmt: skip
        got = dict(db.query(f"SELECT seconds, {db.tenths('seconds')} FROM events"))
    assert got == {v: tenths(v) for v in values} == {0.05: 1, 0.25: 3, 0.45: 5, 2.25: 23, 3.35: 34}


def test_a_split_with_a_contained_call_still_on_the_line_reports_without_failing(make_app, journal_url):
    app = make_app({"IVR_FLOWS_DIR": str(AB), "IVR_EVENTS": journal_url})
    phone = phone_for(app, schema=TwimlSchema.shared())
    phone.status_callback = None  # no final status: every call stays on the line for the journal
    for i in range(6):
        phone.dial("ab", from_=f"+1555020{i:04d}").press("1")
    services(app).events.flush()
    flow = services(app).flows.engine("ab").flow
    report = build_report(services(app).events.database, flow, Window(source="phone"))
    assert report["contained"] == 6 and report["in_progress"] == 0  # reached a contained state
    for variant in report["splits"]["greeting"]["variants"].values():
        assert (variant["ended"], variant["contained"]) == (0, 0)  # rates wait for the calls to end
    for comparison in report["splits"]["greeting"]["comparisons"]:
        assert comparison["containment"]["verdict"] == "not enough calls"
    services(app).events.close()


def test_a_thread_that_ends_closes_its_journal_connection(tmp_path):
    import gc

    db = open_events(f"sqlite:///{tmp_path}/e.sqlite3")
    for _ in range(20):
        thread = threading.Thread(target=lambda: db.query("SELECT 1"))
        thread.start()
        thread.join()
    gc.collect()
    assert len(db._connections) <= 1  # this thread's, from opening it
    db.close()
