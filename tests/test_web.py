"""The web adapter: the error guard, status callbacks, late Record actions, settings and bad flows at start."""

from __future__ import annotations

import logging
import re
from xml.etree import ElementTree

import pytest
from conftest import BASE, caller_params, phone_on, sign, verb
from helpers import FakeClock

from ivr.core.engine import Engine
from ivr.errors import ConfigError, FlowLoadError, StoreError
from ivr.store import MemoryStore
from ivr.testing import last_document, status_callback
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


def assert_apology(response, text: str, voice: str | None = "Polly.Joanna") -> None:
    """A 200 TwiML response that says `text` and hangs up."""
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ElementTree.fromstring(response.get_data())
    assert [say.text for say in root.iter("Say")] == [text]
    assert [v.tag for v in root] == ["Say", "Hangup"]
    assert root.find("Say").get("voice") == voice


def assert_call_apologised(call, mimetypes: list[str], text: str, voice: str | None = "Polly.Joanna") -> None:
    """The call's last answer was a 200 TwiML document that says `text` and hangs up."""
    assert call.exchanges[-1].status == 200
    assert mimetypes[-1] == "text/xml"
    assert call.heard == [text]
    assert [v.tag for v in last_document(call)] == ["Say", "Hangup"]
    assert call.end_reason == "hangup"
    assert verb(call, "Say").get("voice") == voice


def mimetypes_of(app) -> list[str]:
    """The mimetype of every response `app` gives from now on (the phone sees bodies only)."""
    seen: list[str] = []

    @app.after_request
    def remember(response):
        seen.append(response.mimetype)
        return response

    return seen


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


def test_engine_exception_answers_the_flows_error_state(app, phone, caplog, monkeypatch):
    mimetypes = mimetypes_of(app)
    call = phone.dial("main")
    assert call.heard[0] == WELCOME
    monkeypatch.setattr(Engine, "resume", _explode)

    call.press("1")

    assert_call_apologised(call, mimetypes, MAIN_APOLOGY)
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
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir)})
    mimetypes = mimetypes_of(app)
    call = phone_on(app).dial("plain", call_sid=SID)
    assert call.heard == ["Press 1."]
    monkeypatch.setattr(Engine, "resume", _explode)

    call.press("1")

    assert_call_apologised(call, mimetypes, APOLOGY, voice="Polly.Amy")
    assert verb(call, "Say").get("language") == "en-GB"
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
        ("/voice/", APOLOGY, "unknown voice URL /voice/;"),
        ("/voice//menu", APOLOGY, "unknown voice URL /voice//menu;"),
        ("/voice/main//menu", APOLOGY, "unknown voice URL /voice/main//menu;"),
        ("/voice/main/menu/", APOLOGY, "unknown voice URL /voice/main/menu/;"),
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
        "voice-root",
        "empty-flow",
        "empty-state",
        "trailing-slash",
        "unknown-event",
        "event-of-another-verb",
        "no-input-on-record",
        "input-less-state",
        "hangup-state",
    ],
)
def test_bad_voice_urls_answer_an_apology_not_an_html_404(client, caplog, path, text, logged):
    response = signed_post(client, path, caller_params(SID, status="in-progress") | {"Digits": "1"})
    voice = "Polly.Joanna" if text == MAIN_APOLOGY else None
    assert_apology(response, text, voice=voice)
    (record,) = failures(caplog)
    assert record.getMessage().startswith(f"CallSid={SID} ")
    assert logged in caplog.text


def test_request_without_callsid_answers_the_error_state(client, caplog):
    params = caller_params(SID)
    del params["CallSid"]
    assert_apology(signed_post(client, "/voice/main", params), MAIN_APOLOGY)
    (record,) = failures(caplog)
    assert record.getMessage().startswith("CallSid=- flow=main state=(entry): ")
    assert "the request has no CallSid" in caplog.text


def test_store_failing_still_answers_200_and_hangs_up(app, phone, caplog, monkeypatch):
    call = phone.dial("main")
    store = services(app).store

    def down(*args, **kwargs):
        raise StoreError("session store: updating session failed: disk I/O error")

    monkeypatch.setattr(store, "replace", down)  # a webhook's one write
    call.press("1")
    assert call.exchanges[-1].status == 200
    assert call.end_reason == "hangup"
    message = failures(caplog)[0].getMessage()
    assert message == (
        f"CallSid={call.sid} flow=main state=menu: session store: updating session failed: disk I/O error; "
        "answering with the error state without the store"
    )


def test_store_failing_still_answers_the_error_state(app, phone, monkeypatch):
    mimetypes = mimetypes_of(app)
    call = phone.dial("main")

    def down(*args, **kwargs):
        raise StoreError("session store: updating session failed: disk I/O error")

    monkeypatch.setattr(services(app).store, "replace", down)
    call.press("1")
    assert_call_apologised(call, mimetypes, MAIN_APOLOGY)


# -- status callbacks ---------------------------------------------------------------------------


def test_status_callbacks_mark_the_session(app, phone, caplog):
    caplog.set_level(logging.INFO, logger="ivr.web")
    call = phone.dial("main")
    assert "status" not in session(app, call.sid)

    for status in ("ringing", "in-progress"):
        response = status_callback(call, status)
        assert response.status == 200
        assert list(ElementTree.fromstring(response.body)) == []
        current = session(app, call.sid)
        assert current["status"] == status
        assert "ended" not in current
        assert f"CallSid={call.sid} status {status}" in caplog.messages

    assert status_callback(call, "completed", duration=42).status == 200
    current = session(app, call.sid)
    assert (current["status"], current["ended"], current["duration"]) == ("completed", True, "42")
    assert current["state"] == "menu"  # the call's place in the flow is kept


@pytest.mark.parametrize("late", ["in-progress", "ringing", "queued", "busy"])
def test_late_status_does_not_undo_completed(app, phone, late):
    call = phone.dial("main")
    status_callback(call, "in-progress")
    status_callback(call, "completed", duration=42)
    assert status_callback(call, late).status == 200
    current = session(app, call.sid)
    assert (current["status"], current["ended"], current["duration"]) == ("completed", True, "42")


def test_earlier_status_does_not_undo_in_progress(app, phone):
    call = phone.dial("main")
    status_callback(call, "in-progress")
    status_callback(call, "ringing")
    assert session(app, call.sid)["status"] == "in-progress"


def test_status_of_an_unknown_call_creates_no_session(app, client):
    params = caller_params(SID, status="completed") | {"CallDuration": "30"}
    assert signed_post(client, "/twilio/status", params).status_code == 200
    assert session(app, SID) is None


def test_unknown_call_status_is_ignored_with_a_warning(app, phone, caplog):
    call = phone.dial("main")
    assert status_callback(call, "exploded").status == 200
    assert "status" not in session(app, call.sid)
    assert f"CallSid={call.sid} status callback with CallStatus='exploded' ignored" in caplog.messages


def test_completed_session_expires_after_the_grace_period(app, store_clock, phone):
    call = phone.dial("main")
    store_clock.now += 60
    status_callback(call, "completed")

    store_clock.now += SESSION_GRACE - 1
    assert session(app, call.sid)["status"] == "completed"
    store_clock.now += 2
    assert session(app, call.sid) is None


def test_live_session_lasts_the_whole_call(app, store_clock, phone):
    call = phone.dial("main")
    store_clock.now += SESSION_TTL - 1
    assert session(app, call.sid)["state"] == "menu"
    store_clock.now += 2
    assert session(app, call.sid) is None


def test_late_status_after_completed_keeps_the_grace_period(app, store_clock, phone):
    call = phone.dial("main")
    status_callback(call, "completed")
    store_clock.now += 10
    status_callback(call, "in-progress")

    store_clock.now += SESSION_GRACE
    assert session(app, call.sid) is None


# -- Record after the caller hung up ------------------------------------------------------------


@pytest.mark.parametrize("completed_first", [False, True], ids=["action-first", "status-first"])
def test_record_action_after_hang_up_is_processed(app, phone, completed_first):
    call = phone.dial("/voice/main?state=voicemail")
    assert call.heard == ["Please leave a message after the beep. Press the pound key when you are done."]
    if completed_first:
        status_callback(call, "completed")

    call.hangup(seconds=5)

    # Twilio ignores the answer to a hang-up's Record action, but the flow still takes its route.
    assert call.exchanges[-1].status == 200
    root = last_document(call)
    assert [say.text for say in root.iter("Say")] == [
        "Thank you, we got your 5 second message.",
        "Thanks for calling Acme. Goodbye.",
    ]
    assert root[-1].tag == "Hangup"
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
