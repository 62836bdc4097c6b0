"""The web adapter: the error guard, status callbacks, late Record actions, settings and bad flows at start."""

from __future__ import annotations

import logging
import re

import pytest
from conftest import BASE, Call, Doc, caller_params, sign

from ivr.core.engine import Engine
from ivr.errors import ConfigError, FlowLoadError, StoreError
from ivr.store import MemoryStore
from ivr.web.http import SESSION_GRACE, SESSION_TTL
from ivr.web.services import services

SID = "CA" + "7" * 32
WELCOME = "Thanks for calling Acme."
# main's error state (`error_state: apology`)
MAIN_APOLOGY = "We're sorry, something went wrong on our side. Please call again later."
# the built-in apology, for flows without an error state and URLs that name no flow
APOLOGY = "We're sorry, something went wrong. Please call again later. Goodbye."

PLAIN_FLOW = """\
defaults: {voice: Polly.Amy, language: en-GB}
start: menu
states:
  menu:
    say: Press 1.
    gather: {timeout: 5}
    routes: {"1": bye}
  bye:
    say: Bye.
    hangup: true
"""


def signed_post(client, path: str, params: dict):
    """POST as Twilio would, signed for BASE + path."""
    return client.post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path, params)})


def failures(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ivr.web" and r.levelno == logging.ERROR]


def assert_apology(doc: Doc, text: str, voice: str | None = "Polly.Joanna") -> None:
    """A 200 TwiML document that says `text` and hangs up."""
    assert doc.status == 200
    assert doc.response.mimetype == "text/xml"
    assert doc.heard == [text]
    assert [v.tag for v in doc.verbs] == ["Say", "Hangup"]
    assert doc.first("Say").get("voice") == voice


class FakeClock:
    """Seconds since the epoch for the session store, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store_clock(app) -> FakeClock:
    """Give the app a memory store on a fake clock (before any call is placed)."""
    clock = FakeClock()
    services(app).store = MemoryStore(clock=clock)
    return clock


def session(app, sid: str) -> dict | None:
    return services(app).store.get(sid)


# -- the error guard ----------------------------------------------------------------------------


def _explode(*args, **kwargs):
    raise RuntimeError("engine exploded")


def test_engine_exception_answers_the_flows_error_state(app, dial, caplog, monkeypatch):
    call = dial("main")
    assert call.heard[0] == WELCOME
    monkeypatch.setattr(Engine, "resume", _explode)

    doc = call.press("1")

    assert_apology(doc, MAIN_APOLOGY)
    assert session(app, call.sid)["state"] == "apology"
    (record,) = failures(caplog)
    assert (
        record.getMessage()
        == f"CallSid={call.sid} flow=main state=menu: webhook failed; answering with the error state"
    )
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback" in caplog.text
    assert "RuntimeError: engine exploded" in caplog.text


def test_engine_exception_without_error_state_apologises_and_hangs_up(make_app, flows_dir, caplog, monkeypatch):
    (flows_dir / "plain.yaml").write_text(PLAIN_FLOW)
    client = make_app({"IVR_FLOWS_DIR": str(flows_dir)}).test_client()
    call = Call(client, SID, "+15551230000", "+15559870000")
    assert call.start("plain").heard == ["Press 1."]
    monkeypatch.setattr(Engine, "resume", _explode)

    doc = call.press("1")

    assert_apology(doc, APOLOGY, voice="Polly.Amy")
    assert doc.first("Say").get("language") == "en-GB"
    (record,) = failures(caplog)
    assert record.getMessage().startswith(f"CallSid={SID} flow=plain state=menu: webhook failed")
    assert "RuntimeError: engine exploded" in caplog.text


@pytest.mark.parametrize(
    ("path", "text", "logged"),
    [
        ("/voice/nosuchflow", APOLOGY, "unknown flow 'nosuchflow'"),
        ("/voice/nosuchflow/menu", APOLOGY, "unknown flow 'nosuchflow'"),
        ("/voice/main/nosuchstate", MAIN_APOLOGY, "flow 'main' has no state 'nosuchstate'"),
        ("/voice/main?state=nosuchstate", MAIN_APOLOGY, "flow 'main' has no state 'nosuchstate'"),
        ("/voice/main/menu/extra", APOLOGY, "unknown voice URL /voice/main/menu/extra"),
        ("/voice/main/menu?event=bogus", MAIN_APOLOGY, "event 'bogus' does not fit state 'menu'"),
        ("/voice/main/menu?event=no_recording", MAIN_APOLOGY, "event 'no_recording' does not fit state 'menu'"),
        ("/voice/main/voicemail?event=no_input", MAIN_APOLOGY, "event 'no_input' does not fit state 'voicemail'"),
        ("/voice/main/welcome", MAIN_APOLOGY, "state 'welcome' waits for nothing; it takes no results"),
        ("/voice/main/goodbye", MAIN_APOLOGY, "state 'goodbye' waits for nothing; it takes no results"),
    ],
    ids=[
        "unknown-flow",
        "unknown-flow-with-state",
        "unknown-state",
        "unknown-entry-state",
        "unknown-path",
        "unknown-event",
        "event-of-another-verb",
        "no-input-on-record",
        "input-less-state",
        "hangup-state",
    ],
)
def test_bad_voice_urls_answer_an_apology_not_an_html_404(client, caplog, path, text, logged):
    doc = Doc(signed_post(client, path, caller_params(SID, status="in-progress") | {"Digits": "1"}))
    voice = "Polly.Joanna" if text == MAIN_APOLOGY else None
    assert_apology(doc, text, voice=voice)
    (record,) = failures(caplog)
    assert record.getMessage().startswith(f"CallSid={SID} ")
    assert logged in caplog.text


def test_request_without_callsid_answers_the_error_state(client, caplog):
    params = caller_params(SID)
    del params["CallSid"]
    doc = Doc(signed_post(client, "/voice/main", params))
    assert_apology(doc, MAIN_APOLOGY)
    (record,) = failures(caplog)
    assert record.getMessage().startswith("CallSid=- flow=main state=(entry): ")
    assert "the request has no CallSid" in caplog.text


def test_store_failing_still_answers_200_and_hangs_up(app, dial, caplog, monkeypatch):
    call = dial("main")
    store = services(app).store

    def down(*args, **kwargs):
        raise StoreError("session store: updating session failed: disk I/O error")

    monkeypatch.setattr(store, "update", down)
    doc = call.press("1")
    assert doc.status == 200
    assert doc.ended
    message = failures(caplog)[0].getMessage()
    assert message == (
        f"CallSid={call.sid} flow=main state=menu: session store: updating session failed: disk I/O error; "
        "answering with the error state without the store"
    )


def test_store_failing_still_answers_the_error_state(app, dial, monkeypatch):
    call = dial("main")

    def down(*args, **kwargs):
        raise StoreError("session store: updating session failed: disk I/O error")

    monkeypatch.setattr(services(app).store, "update", down)
    assert_apology(call.press("1"), MAIN_APOLOGY)


# -- status callbacks ---------------------------------------------------------------------------


def test_status_callbacks_mark_the_session(app, dial, caplog):
    caplog.set_level(logging.INFO, logger="ivr.web")
    call = dial("main")
    assert "status" not in session(app, call.sid)

    for status in ("ringing", "in-progress"):
        response = call.status(status)
        assert response.status_code == 200
        assert Doc(response).verbs == []
        current = session(app, call.sid)
        assert current["status"] == status
        assert "ended" not in current
        assert f"CallSid={call.sid} status {status}" in caplog.messages

    assert call.status("completed", duration=42).status_code == 200
    current = session(app, call.sid)
    assert (current["status"], current["ended"], current["duration"]) == ("completed", True, "42")
    assert current["state"] == "menu"  # the call's place in the flow is kept


@pytest.mark.parametrize("late", ["in-progress", "ringing", "queued", "busy"])
def test_late_status_does_not_undo_completed(app, dial, late):
    call = dial("main")
    call.status("in-progress")
    call.status("completed", duration=42)
    assert call.status(late).status_code == 200
    current = session(app, call.sid)
    assert (current["status"], current["ended"], current["duration"]) == ("completed", True, "42")


def test_earlier_status_does_not_undo_in_progress(app, dial):
    call = dial("main")
    call.status("in-progress")
    call.status("ringing")
    assert session(app, call.sid)["status"] == "in-progress"


def test_status_of_an_unknown_call_creates_no_session(app, client):
    call = Call(client, SID, "+15551230000", "+15559870000")
    assert call.status("completed").status_code == 200
    assert session(app, SID) is None


def test_unknown_call_status_is_ignored_with_a_warning(app, dial, caplog):
    call = dial("main")
    response = call.status("exploded")
    assert response.status_code == 200
    assert "status" not in session(app, call.sid)
    assert f"CallSid={call.sid} status callback with CallStatus='exploded' ignored" in caplog.messages


def test_completed_session_expires_after_the_grace_period(app, store_clock, dial):
    call = dial("main")
    store_clock.now += 60
    call.status("completed")

    store_clock.now += SESSION_GRACE - 1
    assert session(app, call.sid)["status"] == "completed"
    store_clock.now += 2
    assert session(app, call.sid) is None


def test_live_session_lasts_the_whole_call(app, store_clock, dial):
    call = dial("main")
    store_clock.now += SESSION_TTL - 1
    assert session(app, call.sid)["state"] == "menu"
    store_clock.now += 2
    assert session(app, call.sid) is None


def test_late_status_after_completed_keeps_the_grace_period(app, store_clock, dial):
    call = dial("main")
    call.status("completed")
    store_clock.now += 10
    call.status("in-progress")

    store_clock.now += SESSION_GRACE
    assert session(app, call.sid) is None


# -- Record after the caller hung up ------------------------------------------------------------


@pytest.mark.parametrize("completed_first", [False, True], ids=["action-first", "status-first"])
def test_record_action_after_hang_up_is_processed(app, dial, completed_first):
    call = dial("main", state="voicemail")
    assert call.heard == ["Please leave a message after the beep. Press the pound key when you are done."]
    if completed_first:
        call.status("completed")

    doc = call.hang_up_while_recording(seconds=5)

    assert doc.status == 200
    assert doc.heard == ["Thank you, we got your 5 second message.", "Thanks for calling Acme. Goodbye."]
    assert doc.ended
    current = session(app, call.sid)
    assert current["state"] == "goodbye"
    assert current["vars"] == {"message_seconds": 5}
    assert current["recording"]["digits"] == "hangup"
    assert current["recording"]["duration"] == 5
    if completed_first:
        assert (current["status"], current["ended"]) == ("completed", True)


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("IVR_ENV", "staging"),
        ("IVR_TRUSTED_PROXIES", "-1"),
        ("IVR_TRUSTED_PROXIES", "two"),
        ("IVR_PUBLIC_URL", "example.com"),
        ("IVR_PUBLIC_URL", "ivr.example.com/acme"),
        ("IVR_TIMEZONE", "Mars/Base"),
    ],
)
def test_bad_setting_refuses_to_start_naming_it(make_app, key, value):
    with pytest.raises(ConfigError, match="^" + re.escape(f"{key}={value!r}")):
        make_app({key: value})


# -- flows that fail validation -----------------------------------------------------------------

BAD_FLOW = """\
start: menu
states:
  menu:
    say: Press 1.
    gather: {timeout: 5}
    routes: {"1": biling}
  orphan:
    say: Hello
    next: nowhere
"""
DUPLICATE_KEY_FLOW = """\
start: a
states:
  a:
    say: Hi
    say: Again
    hangup: true
"""
GOOD_FLOW = """\
start: a
states:
  a:
    say: Hi
    hangup: true
"""


def test_invalid_flows_refuse_to_start_listing_every_error(make_app, flows_dir):
    (flows_dir / "bad.yaml").write_text(BAD_FLOW)
    (flows_dir / "dup.yml").write_text(DUPLICATE_KEY_FLOW)
    (flows_dir / "good.yaml").write_text(GOOD_FLOW)

    with pytest.raises(FlowLoadError) as info:
        make_app({"IVR_FLOWS_DIR": str(flows_dir)})

    found = [(e.file, e.line, e.column, e.path, e.message) for e in info.value.errors]
    assert found == [
        (str(flows_dir / "bad.yaml"), 6, 19, 'states.menu.routes."1"', "unknown state 'biling'"),
        (str(flows_dir / "bad.yaml"), 9, 11, "states.orphan.next", "unknown state 'nowhere'"),
        (str(flows_dir / "dup.yml"), 5, 5, "states.a.say", "duplicate key (first defined at line 4)"),
    ]
    lines = str(info.value).splitlines()
    assert lines[0] == f"{flows_dir / 'bad.yaml'}:6:19: error: states.menu.routes.\"1\": unknown state 'biling'"
    assert lines[-1] == "3 errors in flow files"


def test_missing_flows_directory_refuses_to_start(make_app, tmp_path):
    with pytest.raises(FlowLoadError, match="flows directory not found \\(set IVR_FLOWS_DIR\\)"):
        make_app({"IVR_FLOWS_DIR": str(tmp_path / "nowhere")})
