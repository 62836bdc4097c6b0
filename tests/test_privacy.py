"""Privacy: callers kept as keyed hashes, sensitive input never journaled, retention and its purge,
and one caller erased everywhere (journal, sessions, texts, voicemail, recordings, spool), on SQLite
and PostgreSQL (tests/flows/privacy/line.yaml)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import recording_params
from helpers import T0, FakeClock

from ivr.analytics.database import open_events
from ivr.analytics.privacy import DAY, analytics_key, forget_caller, key_file, normalise_number, purge
from ivr.analytics.rows import keyed_hash
from ivr.analytics.writer import EventWriter
from ivr.cli import cli
from ivr.errors import ConfigError
from ivr.phone.recording import forget_recordings, mask_numbers
from ivr.testing import TwimlSchema, phone_for
from ivr.web.drain import drain_now
from ivr.web.messages import MessageBox
from ivr.web.privacy import forget_everywhere
from ivr.web.services import services
from ivr.web.spool import Spool

LINE = Path(__file__).parent / "flows" / "privacy"
KEY = "p" * 64
ASKER = "+15557770001"  # the caller who asks to be forgotten
OTHER = "+15557770002"  # a caller who stays
OURS = "+15559870000"


class Line:
    """The privacy line's app (journal, recordings, its own spool), a phone on it, and one clock."""

    def __init__(self, app, clock: FakeClock) -> None:
        self.app, self.clock = app, clock
        self.phone = phone_for(app, schema=TwimlSchema.shared())
        self.phone.clock = clock

    def call(self, number: str, *keys: str):
        call = self.phone.dial("line", from_=number, to=OURS)
        for key in keys:
            self.clock.advance(3)
            call.press(key)
        return call

    def db(self):
        drain_now(self.app)
        services(self.app).events.flush()
        return services(self.app).events.database

    def rows(self, sql: str, params=()) -> list[tuple]:
        return self.db().query(sql, params)


@pytest.fixture
def line(make_app, journal_url, tmp_path):
    clock = FakeClock(T0)
    app = make_app(
        {
            "IVR_FLOWS_DIR": str(LINE),
            "IVR_EVENTS": journal_url,
            "IVR_ANALYTICS_KEY": KEY,
            "IVR_RECORD_DIR": str(tmp_path / "recorded"),
            "IVR_SPOOL_DIR": str(tmp_path / "spool"),
        },
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    yield Line(app, clock)
    services(app).events.close()


# -- keyed hashes and sensitive input --------------------------------------------------------------


def test_callers_are_kept_as_keyed_hashes_of_their_numbers(line):
    line.call(ASKER, "1", "4321")
    callers = {row[0] for row in line.rows("SELECT caller FROM calls")}
    assert callers == {keyed_hash(KEY.encode(), ASKER)}
    assert keyed_hash(KEY.encode(), ASKER) != keyed_hash(b"another key", ASKER)
    everything = json.dumps(line.rows("SELECT * FROM calls") + line.rows("SELECT * FROM events"))
    assert ASKER not in everything and ASKER[1:] not in everything


def test_a_sensitive_states_digits_and_speech_never_reach_the_journal(line):
    pressed = line.call(ASKER, "1", "4321")
    spoken = line.phone.dial("line", from_=OTHER)
    spoken.say("balance", confidence=0.91)
    spoken.say("nine eight seven six", confidence=0.87)
    assert "You entered 4321" in " ".join(pressed.heard)  # the read-back had the PIN: the journal must not
    rows = line.rows("SELECT state, kind, detail, input, confidence FROM events WHERE state IS NOT NULL "
                     "AND kind IN ('key', 'speech') ORDER BY id")  # fmt: skip
    assert rows == [
        ("menu", "key", "1", "1", None),  # an ordinary state keeps what the caller did
        ("pin", "key", "next", None, None),
        ("menu", "speech", "balance", "balance", 0.91),
        ("pin", "speech", "next", None, None),  # neither the words nor how sure the recogniser was
    ]
    everything = json.dumps(line.rows("SELECT * FROM events") + line.rows("SELECT * FROM calls"))
    assert "4321" not in everything and "nine eight" not in everything and "0.87" not in everything


# -- the key -------------------------------------------------------------------------------------


def test_development_keeps_one_key_in_a_file_that_the_app_and_commands_share(make_app, tmp_path):
    settings = {"IVR_ENV": "development", "IVR_EVENTS": f"sqlite:///{tmp_path}/j/events.sqlite3"}
    assert analytics_key(settings, create=False) is None
    key = analytics_key(settings)
    assert key_file(settings) == tmp_path / "j" / "ivr-analytics.key"
    assert key_file(settings).stat().st_mode & 0o777 == 0o600
    assert analytics_key(settings) == analytics_key(settings, create=False) == key and len(key) == 64
    app = make_app({"IVR_EVENTS": settings["IVR_EVENTS"], "IVR_ANALYTICS_KEY": None})
    assert services(app).analytics_key == key
    # A command run beside the app in production mode (the CLI's default) finds the same file.
    assert analytics_key({**settings, "IVR_ENV": "production"}) == key
    services(app).events.close()
    assert analytics_key({**settings, "IVR_ANALYTICS_KEY": "given"}) == b"given"


def test_production_without_the_key_names_the_setting():
    with pytest.raises(ConfigError, match="IVR_ANALYTICS_KEY is not set"):
        analytics_key({"IVR_ENV": "production", "IVR_EVENTS": "sqlite:///x/e.sqlite3"})


@pytest.mark.parametrize(
    ("given", "number"),
    [("+15551234567", "+15551234567"), ("+1 (555) 123-4567", "+15551234567"), ("0044 20 7946 0958", "+442079460958"),
     (" +33.1.23.45.67.89 ", "+33123456789")],
)  # fmt: skip
def test_numbers_are_normalised_to_e164(given, number):
    assert normalise_number(given) == number


@pytest.mark.parametrize("given", ["5551234567", "+1555", "call me", "", "+0123456789", "+1555123456789012"])
def test_what_is_not_a_number_is_refused_saying_what_to_give(given):
    with pytest.raises(ValueError, match="international form"):
        normalise_number(given)


# -- retention -----------------------------------------------------------------------------------


def _call(db, sid: str, started: float, *, last: float | None = None, ended: float | None = None, events=2):
    rows = [(sid, "f", "s", "entered", None, None, None, None, None, started + i, None, None, "twilio")
            for i in range(events)]  # fmt: skip
    answered = [(sid, "f", "twilio", "c" + sid, "inbound", started, last or started, "s", 0, None, None, None, "f")]
    closed = [(sid, "twilio", "inbound", ended, "completed", 10.0)] if ended is not None else []
    db.write(rows, answered, closed)


def test_purge_deletes_the_rows_older_than_the_cutoff_and_nothing_else(journal_url):
    db = open_events(journal_url)
    cutoff = T0
    _call(db, "CAold", T0 - 10 * DAY, ended=T0 - 10 * DAY + 60, events=5)
    _call(db, "CAabandoned", T0 - 5 * DAY, last=T0 - 5 * DAY + 30, events=3)  # never closed: its last webhook
    _call(db, "CAstraddles", T0 - 100, ended=T0 + 100, events=2)  # ended after the cutoff: kept
    _call(db, "CAnew", T0 + 10, ended=T0 + 70, events=4)

    gone = purge(db, cutoff, batch=2)  # batches smaller than the rows: the loop must go on

    assert (gone.calls, gone.events) == (2, 5 + 3 + 2)
    assert sorted(r[0] for r in db.query("SELECT call_sid FROM calls")) == ["CAnew", "CAstraddles"]
    assert db.query("SELECT COUNT(*), MIN(at) FROM events") == [(4, T0 + 10)]
    assert purge(db, cutoff) == purge(db, cutoff)  # nothing left to purge: zero, twice
    db.close()


def test_journal_purge_command_uses_the_retention_setting_or_older_than(journal_url, monkeypatch):
    db = open_events(journal_url)
    now = time.time()
    _call(db, "CA100", now - 100 * DAY, ended=now - 100 * DAY + 60, events=3)
    _call(db, "CA40", now - 40 * DAY, ended=now - 40 * DAY + 60, events=2)
    _call(db, "CA1", now - DAY, ended=now - DAY + 60, events=1)
    monkeypatch.setenv("IVR_EVENTS", journal_url)
    runner = CliRunner()

    first = runner.invoke(cli, ["journal", "purge"])  # IVR_EVENTS_RETENTION_DAYS: 90 by default
    assert first.exit_code == 0, first.output
    assert "purged 1 calls and 3 events older than 90 days" in first.output
    second = runner.invoke(cli, ["journal", "purge", "--older-than", "30"])
    assert "purged 1 calls and 2 events older than 30 days" in second.output
    assert [r[0] for r in db.query("SELECT call_sid FROM calls")] == ["CA1"]
    assert runner.invoke(cli, ["journal", "purge", "--older-than", "0"]).exit_code == 2
    monkeypatch.setenv("IVR_EVENTS", "off")
    assert "IVR_EVENTS is off" in runner.invoke(cli, ["journal", "purge"]).output
    db.close()


def test_the_running_app_purges_in_the_background_and_replays_never_do(make_app, journal_url, tmp_path):
    db = open_events(journal_url)
    now = time.time()
    _call(db, "CAancient", now - 200 * DAY, ended=now - 200 * DAY + 60, events=3)
    _call(db, "CArecent", now - 2 * DAY, ended=now - 2 * DAY + 60, events=1)
    test_app = make_app({"IVR_FLOWS_DIR": str(LINE), "IVR_EVENTS": journal_url, "IVR_ANALYTICS_KEY": KEY})
    assert services(test_app).events.housekeeping is None  # tests and replays run on recorded clocks
    services(test_app).events.close()

    app = make_app({"IVR_ENV": "development", "IVR_FLOWS_DIR": str(LINE), "IVR_EVENTS": journal_url,
                    "IVR_ANALYTICS_KEY": KEY, "IVR_HOT_RELOAD": "0", "IVR_EVENTS_RETENTION_DAYS": "30"})  # fmt: skip
    writer = services(app).events
    assert writer.every == DAY
    phone_for(app).dial("line", from_=ASKER).hangup()  # the first webhook starts the journal's thread
    deadline = time.monotonic() + 10
    while db.query("SELECT COUNT(*) FROM calls WHERE call_sid = 'CAancient'") != [(0,)]:
        assert time.monotonic() < deadline, "the app did not purge"
        time.sleep(0.05)
    assert db.query("SELECT COUNT(*) FROM events WHERE call_sid = 'CAancient'") == [(0,)]
    assert db.query("SELECT COUNT(*) FROM calls WHERE call_sid = 'CArecent'") == [(1,)]
    writer.close()
    db.close()


def test_a_failing_housekeeping_is_logged_and_never_stops_the_writer(tmp_path, caplog):
    calls = []

    def broken(db):
        calls.append(db)
        raise RuntimeError("disk full")

    writer = EventWriter(lambda: open_events(f"sqlite:///{tmp_path}/e.sqlite3"), interval=0.01, housekeeping=broken)
    writer.add([("CA1", "f", "s", "entered", None, None, None, None, None, T0, None, None, "twilio")])
    deadline = time.monotonic() + 10
    while not calls or writer.pending():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)
    assert len(calls) == 1  # tried again in an hour, not at every wake
    assert "housekeeping failed (disk full)" in caplog.text
    writer.add([("CA2", "f", "s", "entered", None, None, None, None, None, T0, None, None, "twilio")])
    writer.close()
    assert writer.database.query("SELECT COUNT(*) FROM events")[0][0] == 2


# -- one caller forgotten ---------------------------------------------------------------------------


def test_forget_caller_deletes_their_calls_and_events_and_keeps_the_others(line):
    asked = [line.call(ASKER, "1", "4321").sid, line.call(ASKER, "2").sid]
    kept = line.call(OTHER, "1", "1111").sid
    db = line.db()
    theirs = db.query("SELECT COUNT(*) FROM events WHERE call_sid IN (?, ?)", asked)[0][0]
    others = db.query("SELECT COUNT(*) FROM events WHERE call_sid = ?", (kept,))[0][0]
    assert theirs > 6 and others > 3

    gone = forget_caller(db, KEY.encode(), "hash", ASKER)

    assert (gone.calls, gone.events, sorted(gone.call_sids)) == (2, theirs, sorted(asked))
    assert db.query("SELECT call_sid FROM calls") == [(kept,)]
    assert db.query("SELECT COUNT(*) FROM events WHERE call_sid IN (?, ?)", asked) == [(0,)]
    assert db.query("SELECT COUNT(*) FROM events WHERE call_sid = ?", (kept,)) == [(others,)]
    assert forget_caller(db, KEY.encode(), "hash", ASKER).calls == 0
    assert forget_caller(db, b"not the app's key", "hash", OTHER).calls == 0  # another key finds nothing


def test_numbers_kept_in_clear_are_forgotten_too(make_app, journal_url):
    app = make_app({"IVR_FLOWS_DIR": str(LINE), "IVR_EVENTS": journal_url, "IVR_ANALYTICS_NUMBERS": "keep",
                    "IVR_ANALYTICS_KEY": KEY})  # fmt: skip
    phone = phone_for(app)
    phone.dial("line", from_=ASKER).press("2")
    phone.dial("line", from_=OTHER).press("2")
    services(app).events.flush()
    db = services(app).events.database
    assert sorted(r[0] for r in db.query("SELECT caller FROM calls")) == [ASKER, OTHER]
    with pytest.raises(ConfigError, match="without the key"):
        forget_caller(db, None, "hash", ASKER)
    assert forget_caller(db, None, "keep", ASKER).calls == 1
    assert db.query("SELECT caller FROM calls") == [(OTHER,)]
    services(app).events.close()


def test_forget_everywhere_erases_journal_sessions_texts_messages_recordings_and_spool(line, tmp_path):
    app, store = line.app, services(line.app).store
    first = line.call(ASKER, "2")
    first.record(8)  # a voicemail, stored from its recording callback with the caller's number
    live = line.call(ASKER)  # still in the menu: its session is live
    other = line.call(OTHER, "2")
    other.record(5)
    orphan = recording_params(first.sid, "RE" + "c" * 32)  # stored before any session: no number, only the call
    MessageBox(store).recording(orphan, "line", "message", None, datetime.fromtimestamp(T0, UTC))
    assert len(MessageBox(store).recent()) == 3
    store.update(f"sms:{OURS}:{ASKER}", lambda _: {"state": "x"}, 600)
    store.update(f"sms:{OURS}:{OTHER}", lambda _: {"state": "x"}, 600)
    store.update(f"campaign:renewals:{ASKER}", lambda _: {"status": "placed"}, 600)
    db = line.db()
    spool = Spool(tmp_path / "spool")
    spool.append({"kind": "status", "params": {"CallSid": live.sid, "From": ASKER, "CallStatus": "completed"}})
    spool.append({"kind": "recording", "params": {"CallSid": first.sid, "RecordingSid": "RE" + "d" * 32}})
    spool.append({"kind": "status", "params": {"CallSid": other.sid, "From": OTHER, "CallStatus": "completed"}})
    recorded = sorted(p.stem for p in (tmp_path / "recorded").glob("*.jsonl"))
    assert recorded == sorted([first.sid, live.sid, other.sid])

    erasure = forget_everywhere(app.config, ASKER, store=store, journal=db)

    assert erasure.journal.calls == 2
    assert (erasure.sessions, erasure.texts, erasure.messages, erasure.recordings, erasure.spool) == (2, 1, 2, 2, 2)
    assert [p.stem for p in (tmp_path / "recorded").glob("*.jsonl")] == [other.sid]
    assert store.get(live.sid) is None and store.get(first.sid) is None and store.get(other.sid) is not None
    assert [m["call_sid"] for m in MessageBox(store).recent()] == [other.sid]
    assert store.get(f"sms:{OURS}:{ASKER}") is None and store.get(f"sms:{OURS}:{OTHER}") is not None
    assert spool.pending() == 1
    assert drain_now(app).applied == 1  # what stays in the spool still drains
    assert [r[0] for r in line.rows("SELECT call_sid FROM calls")] == [other.sid]
    summary = erasure.summary()
    assert f"erased {ASKER}:" in summary and "2 calls" in summary and "2 voicemail messages" in summary
    assert "2 recorded calls" in summary and "2 waiting callbacks" in summary
    assert erasure.campaign_rows == 1 and store.get(f"campaign:renewals:{ASKER}") is not None  # or it calls again
    assert "1 rows kept, so that no run calls the number again" in summary


def test_masked_recordings_match_by_call_or_by_the_masked_number(tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    twin = "+15557000001"  # another number with the same masked form as ASKER
    assert mask_numbers(twin) == mask_numbers(ASKER)

    def write(sid: str, number: str, masked: bool) -> None:
        header = {"ivr_recording": 1, "call_sid": sid, "flows": {}, "masked": masked}
        line = {"t": "2026-11-25T15:00:00.000Z", "method": "POST", "url": "/voice/line",
                "params": {"CallSid": sid, "From": mask_numbers(number) if masked else number}}  # fmt: skip
        (folder / f"{sid}.jsonl").write_text(json.dumps(header) + "\n" + json.dumps(line) + "\n")

    write("CA1", ASKER, masked=False)
    write("CA2", ASKER, masked=True)
    write("CA3", twin, masked=True)  # indistinguishable once masked: counted apart
    write("CA4", OTHER, masked=True)
    write("CA5", OTHER, masked=False)
    (folder / "CA6.jsonl").write_text("not json at all " + ASKER)

    assert forget_recordings(folder, ASKER) == (4, 2)
    assert sorted(p.stem for p in folder.glob("*.jsonl")) == ["CA4", "CA5"]
    assert forget_recordings(folder, OTHER, {"CA4"}) == (2, 0)


def test_spool_forget_drops_from_incoming_batches_and_rejected(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append({"params": {"CallSid": "CA1", "From": ASKER}})
    spool.drain(lambda entry: (_ for _ in ()).throw(ValueError("bad")))  # both land in rejected.jsonl
    spool.append({"params": {"CallSid": "CA2", "From": OTHER}})
    spool.append({"params": {"CallSid": "CA3", "To": ASKER}})
    with open(tmp_path / "spool" / "incoming.jsonl", "ab") as out:
        out.write(b'{"torn": "' + ASKER.encode() + b"\n")

    dropped = spool.forget(lambda entry, line: ASKER.encode() in line)

    assert dropped == 3
    assert spool.pending() == 1
    rejected = (tmp_path / "spool" / "rejected.jsonl").exists()
    assert not rejected  # its only entry was the caller's
    applied = []
    spool.drain(applied.append)
    assert [e["params"]["CallSid"] for e in applied] == ["CA2"]


# -- the command ----------------------------------------------------------------------------------


def _command_env(line: Line, tmp_path: Path, store: str) -> dict:
    config = line.app.config
    return {"IVR_EVENTS": config["IVR_EVENTS"], "IVR_ANALYTICS_KEY": KEY, "IVR_STORE": store,
            "IVR_RECORD_DIR": config["IVR_RECORD_DIR"], "IVR_SPOOL_DIR": config["IVR_SPOOL_DIR"],
            "IVR_ENV": "production"}  # fmt: skip


def test_forget_caller_command_asks_then_prints_what_went_from_each_place(line, tmp_path):
    line.call(ASKER, "1", "4321")
    line.call(OTHER, "2")
    line.db()
    env = _command_env(line, tmp_path, f"sqlite:///{tmp_path}/sessions.sqlite3")
    runner = CliRunner()

    refused = runner.invoke(cli, ["forget-caller", "+1 555 777 0001"], env=env, input="n\n")
    assert refused.exit_code == 1 and "Erase every trace of +15557770001" in refused.output
    assert len(line.rows("SELECT call_sid FROM calls")) == 2

    done = runner.invoke(cli, ["forget-caller", "+1 555-777-0001", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert "erased +15557770001:" in done.output
    assert "journal     1 calls, " in done.output and "recordings  1 recorded calls" in done.output
    assert "Twilio keeps its own" in done.output
    assert len(line.rows("SELECT call_sid FROM calls")) == 1
    again = runner.invoke(cli, ["journal", "forget", "+15557770001", "--yes"], env=env)
    assert "journal     0 calls, 0 events" in again.output


def test_forget_caller_command_refuses_a_non_number_and_a_missing_key(line, tmp_path):
    env = _command_env(line, tmp_path, f"sqlite:///{tmp_path}/sessions.sqlite3")
    runner = CliRunner()
    bad = runner.invoke(cli, ["forget-caller", "555 0001", "--yes"], env=env)
    assert bad.exit_code == 2 and "is not a phone number" in bad.output
    line.call(ASKER, "2")
    line.db()
    missing = runner.invoke(cli, ["forget-caller", ASKER, "--yes"], env={**env, "IVR_ANALYTICS_KEY": ""})
    assert missing.exit_code == 1
    assert "IVR_ANALYTICS_KEY is not set" in missing.output and "the value the app runs with" in missing.output
    assert len(line.rows("SELECT call_sid FROM calls")) == 1  # nothing erased: never half done
    assert len(list(Path(env["IVR_RECORD_DIR"]).glob("*.jsonl"))) == 1
    no_store = runner.invoke(cli, ["forget-caller", ASKER, "--yes"], env={**env, "IVR_STORE": "memory://"})
    assert no_store.exit_code == 1 and "IVR_STORE=memory://" in no_store.output
    assert len(line.rows("SELECT call_sid FROM calls")) == 1  # the journal waits for the store too
