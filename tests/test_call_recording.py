"""Recording the whole call: `call_recording:` start (TwiML), pause/resume/stop (Twilio's REST API during the
request), the session's state, the recording callbacks kept apart from voicemail, consent and may-record
checks, and PCI mode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import BASE, check_twiml, phone_on, sign

from ivr.core.call_recording import recording_running
from ivr.core.effects import HookResult
from ivr.core.engine import Engine, new_session
from ivr.core.lint import run_checks
from ivr.core.loader import load_flow_text
from ivr.core.recording_checks import may_record, recording_warnings
from ivr.core.twiml import CALLBACK_OVERRIDES, Urls
from ivr.errors import FlowLoadError
from ivr.phone.fakes import FakeTwilioHttp, error_body
from ivr.web.drain import drain_now
from ivr.web.services import services

ACCOUNT = "AC" + "0" * 32
SID = "CA" + "1" * 32
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CALLBACK = "/twilio/recording?flow=rec&amp;state=intro&amp;kind=call" + CALLBACK_OVERRIDES.replace("&", "&amp;")

FLOW = """\
start: intro
states:
  intro:
    say: This call is recorded.
    announces_recording: true
    call_recording: {start: {channels: dual, track: both, trim: true}}
    gather: {num_digits: 1}
    routes: {"1": card}
  card:
    call_recording: {pause: {behavior: skip}}
    on_error: sorry
    next: paying
  paying:
    say: Enter your card.
    gather: {num_digits: 1}
    routes: {"1": resumed}
  resumed:
    call_recording: resume
    next: stopped
  stopped:
    call_recording: stop
    next: bye
  sorry:
    say: Sorry, we could not pause the recording.
    hangup: true
  bye:
    say: Goodbye.
    hangup: true
"""


def _flow(text: str = FLOW):
    return load_flow_text(text, "rec.yaml", "rec")


def test_start_renders_start_recording_with_the_call_kind_callback():
    step = Engine(_flow()).start(new_session("rec"), {"CallSid": SID}, NOW)
    expected = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Start><Recording channels="dual" '
        f'recordingStatusCallback="{CALLBACK}" recordingStatusCallbackEvent="in-progress completed absent" '
        'recordingStatusCallbackMethod="POST" track="both" trim="trim-silence" /></Start>'
        '<Gather action="/voice/rec/intro" input="dtmf" method="POST" numDigits="1"><Say>This call is recorded.</Say>'
        '</Gather><Redirect method="POST">/voice/rec/intro?event=no_input</Redirect></Response>'
    )
    assert step.twiml == expected
    check_twiml(step.twiml.encode())
    assert recording_running(step.session)


def test_a_retry_of_the_starting_menu_does_not_start_a_second_recording():
    engine = Engine(_flow())
    step = engine.start(new_session("rec"), {"CallSid": SID}, NOW)
    again = engine.resume("intro", step.session, {"CallSid": SID}, NOW, "no_input")
    assert "<Start>" not in again.twiml and "<Gather" in again.twiml


def test_a_pause_stops_the_walk_until_twilio_agreed_then_goes_on():
    engine = Engine(_flow())
    step = engine.start(new_session("rec"), {"CallSid": SID}, NOW)
    step = engine.resume("intro", step.session, {"CallSid": SID, "Digits": "1"}, NOW)
    call = step.pending.hook
    assert (call.name, call.status, call.pause_behavior) == ("call_recording:pause", "paused", "skip")
    assert call.call_sid == SID
    done = step.pending.resume(HookResult("paused"))
    assert done.state == "paying" and "Enter your card." in done.twiml
    assert done.session["call_recording"] == "paused" and not recording_running(done.session)


def test_a_failed_pause_takes_the_error_route_and_the_recording_may_still_run():
    engine = Engine(_flow())
    step = engine.start(new_session("rec"), {"CallSid": SID}, NOW)
    step = engine.resume("intro", step.session, {"CallSid": SID, "Digits": "1"}, NOW)
    done = step.pending.resume(HookResult(error="Twilio error 21220"))
    assert done.state == "sorry" and "could not pause" in done.twiml
    assert recording_running(done.session)


@pytest.mark.parametrize(
    ("yaml_value", "message"),
    [
        ("record", "'record' is not one of start, pause, resume, stop"),
        ("{start: {channels: stereo}}", "'stereo' is not one of mono, dual"),
        ("{pause: {behavior: mute}}", "'mute' is not one of skip, silence"),
        ("{stop: {behavior: skip}}", "stop takes no options"),
    ],
)
def test_bad_call_recording_values_are_load_errors_at_their_line(yaml_value, message):
    text = f"start: a\nstates:\n  a:\n    call_recording: {yaml_value}\n    next: b\n  b: {{hangup: true}}\n"
    with pytest.raises(FlowLoadError) as info:
        _flow(text)
    assert any(message in e.message and e.line == 4 for e in info.value.errors), info.value.errors


def test_a_pause_state_does_nothing_else():
    text = FLOW.replace("    on_error: sorry\n    next: paying", "    on_error: sorry\n    hangup: true")
    with pytest.raises(FlowLoadError) as info:
        _flow(text)
    assert any("does nothing else" in e.message for e in info.value.errors)


# -- the analysis and check's warnings ---------------------------------------------------------------

BRANCHES = """\
start: menu
states:
  menu:
    say: Press 1 to be recorded, 2 to pay.
    gather: {num_digits: 1}
    routes: {"1": notice, "2": pay_here, "3": quiet}
  notice:
    say: This call is recorded.
    announces_recording: true
    next: rec
  rec:
    call_recording: start
    say: Recording.
    gather: {num_digits: 1}
    routes: {"1": pause, "2": pay_here}
    next: menu
  pause:
    call_recording: pause
    on_error: pay_here
    next: paused
  paused:
    say: Paused.
    gather: {num_digits: 1}
    routes: {"1": pay_here}
  quiet:
    say: Nothing recorded here.
    hangup: true
  pay_here:
    say: Paying.
    hangup: true
"""


def test_may_record_follows_starts_pauses_loops_and_error_routes():
    running = may_record(_flow(BRANCHES))
    # menu: rec loops back to it; pay_here: straight from rec, and by pause's error route; paused: after a pause only.
    assert running == {"menu", "notice", "rec", "pause", "pay_here", "quiet"}


def test_may_record_assumes_an_unknown_subflow_starts_one():
    text = """\
start: a
states:
  a:
    subflow: {flow: other}
    next: b
  b: {hangup: true}
"""
    assert may_record(_flow(text)) == {"b"}


def test_an_unannounced_start_is_warned_at_its_line_and_column():
    warnings = recording_warnings(_flow(BRANCHES.replace("    announces_recording: true\n", "")))
    unannounced = [w for w in warnings if "without hearing" in w.message]
    assert [(w.line, w.column, w.path) for w in unannounced] == [(11, 21, "states.rec.call_recording")]
    assert "(menu -> notice -> rec)" in unannounced[0].message


def test_an_announced_start_has_no_consent_warning_but_a_loop_back_may_start_it_twice():
    warnings = recording_warnings(_flow(BRANCHES))
    assert not [w for w in warnings if "without hearing" in w.message]
    assert [w.path for w in warnings if "twice" in w.message] == ["states.rec.call_recording"]


def test_a_pause_in_the_document_that_starts_the_recording_is_warned():
    text = FLOW.replace('    gather: {num_digits: 1}\n    routes: {"1": card}\n', "    next: card\n", 1)
    warnings = recording_warnings(_flow(text))
    assert [w.path for w in warnings if "same document" in w.message] == ["states.card.call_recording"]


def test_check_reports_the_consent_warning_and_pci_modes_transcription(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    text = BRANCHES.replace("    announces_recording: true\n", "")
    text = text.replace("  quiet:\n    say: Nothing recorded here.\n    hangup: true\n",
                        "  quiet:\n    record: {transcribe: true}\n    next: pay_here\n")  # fmt: skip
    (flows / "b.yaml").write_text(text)
    plain = [p.format() for p in run_checks(flows_dir=str(flows)).problems]
    assert any(p.startswith(f"{flows / 'b.yaml'}:11:21: warning: states.rec.call_recording:") for p in plain), plain
    assert not any("PCI" in p for p in plain)
    pci = [p.format() for p in run_checks(flows_dir=str(flows), pci_mode=True).problems]
    assert any("states.quiet.record.transcribe: IVR_PCI_MODE is on" in p for p in pci), pci


def test_pci_mode_sends_no_transcription_request():
    text = "start: r\nstates:\n  r:\n    record: {transcribe: true}\n    next: b\n  b: {hangup: true}\n"
    plain = Engine(_flow(text)).start(new_session("rec"), {"CallSid": SID}, NOW).twiml
    pci = Engine(_flow(text), Urls(pci_mode=True)).start(new_session("rec"), {"CallSid": SID}, NOW).twiml
    assert 'transcribe="true"' in plain and "transcribeCallback" in plain
    assert "transcribe" not in pci
    check_twiml(pci.encode())


# -- the web adapter: the REST requests, the phone, the callbacks ----------------------------------------


@pytest.fixture
def rec_app(make_app, flows_dir):
    def make(config: dict | None = None, text: str = FLOW):
        (flows_dir / "rec.yaml").write_text(text)
        return make_app({"IVR_FLOWS_DIR": str(flows_dir), **(config or {})})

    return make


def _fake(app) -> FakeTwilioHttp:
    http = FakeTwilioHttp()
    services(app).twilio_http = http
    return http


URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/{SID}/Recordings/Twilio.CURRENT.json"


def _recording(request):
    return 200, {"sid": "RE" + "2" * 32, "call_sid": SID, "account_sid": ACCOUNT, "status": request.data["Status"]}


def test_the_pause_is_twilios_exact_request_before_the_next_document(rec_app):
    app = rec_app({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t" * 32})
    http = _fake(app)
    http.respond_with("POST", r"/Recordings/Twilio\.CURRENT\.json$", _recording)
    call = phone_on(app).dial("rec", call_sid=SID)
    assert call.transcript[0].text == "[recording started]"
    call.press("1")
    assert call.heard == ["Enter your card."]
    (request,) = http.requests
    assert (request.method, request.url) == ("POST", URL)
    assert request.form == [("Status", "paused"), ("PauseBehavior", "skip")]
    call.press("1")  # resume, then stop: Status only
    assert [r.form for r in http.requests[1:]] == [[("Status", "in-progress")], [("Status", "stopped")]]
    assert call.heard == ["Goodbye."]
    assert services(app).store.get(SID)["call_recording"] == "stopped"


def test_a_pause_twilio_refuses_takes_the_error_route_and_is_logged(rec_app, caplog):
    app = rec_app({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t" * 32})
    http = _fake(app)
    http.respond("POST", r"/Recordings/Twilio\.CURRENT\.json$", 404, json=error_body(20404, "not found", 404))
    call = phone_on(app).dial("rec", call_sid=SID)
    call.press("1")
    assert call.heard == ["Sorry, we could not pause the recording."]
    assert any("did not pause the call's recording" in r.getMessage() and SID in r.getMessage() for r in caplog.records)


def test_the_built_in_phone_simulates_the_requests_and_shows_them(rec_app):
    app = rec_app()
    call = phone_on(app).dial("rec", call_sid=SID)
    call.press("1")
    assert call.heard == ["Enter your card."]
    hooks = [(e["name"], e["outcome"]) for e in call.effects if e.get("kind") == "hook"]
    assert hooks == [("call_recording:pause", "paused")]


def test_a_call_recordings_callback_is_kept_with_the_call_not_as_a_voicemail(rec_app):
    app = rec_app()
    phone_on(app).dial("rec", call_sid=SID)
    params = {"CallSid": SID, "AccountSid": ACCOUNT, "RecordingSid": "RE" + "3" * 32, "RecordingStatus": "completed",
              "RecordingUrl": "https://api.twilio.com/rec", "RecordingDuration": "42",
              "RecordingSource": "StartCallRecordingAPI", "RecordingChannels": "2"}  # fmt: skip
    path = "/twilio/recording?flow=rec&state=intro&kind=call"
    answer = app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path, params)})
    assert answer.status_code == 200
    drain_now(app)
    kept = services(app).store.get(SID)["call_recordings"]["RE" + "3" * 32]
    assert kept == {"sid": "RE" + "3" * 32, "url": "https://api.twilio.com/rec", "duration": "42",
                    "status": "completed", "source": "StartCallRecordingAPI", "channels": "2", "flow": "rec",
                    "state": "intro"}  # fmt: skip
    assert services(app).store.get("message:RE" + "3" * 32) is None


def test_in_pci_mode_a_voicemail_is_delivered_once_with_its_recording(make_app, tmp_path):
    from ivr.phone.fakes import message_json

    (tmp_path / "vm.yaml").write_text(
        "defaults: {on_message: {sms: '+15550009999'}}\nstart: vm\nstates:\n"
        "  vm: {say: Speak., record: {transcribe: true}, next: bye}\n  bye: {hangup: true}\n"
    )
    app = make_app({"IVR_FLOWS_DIR": str(tmp_path), "TWILIO_FROM_NUMBER": "+15005550006", "IVR_PCI_MODE": "1"})
    http = _fake(app)
    http.respond_with("POST", r"/Messages\.json$", lambda request: (201, message_json(request)))
    call = phone_on(app).dial("vm", from_="+15551230000")
    assert "transcribe" not in call.documents[0]
    call.record(seconds=11)
    (text,) = (dict(r.form) for r in http.sent("POST", r"/Messages\.json$"))
    assert text["Body"].startswith("New voicemail from +15551230000 (11 s)\nListen: https://api.twilio.com/")
    assert "Transcription" not in text["Body"]


def test_replay_feeds_back_the_recorded_results_without_twilio(rec_app, tmp_path, flows_dir):
    from ivr.phone.replay import replay
    from ivr.web import replay_target

    record_dir = tmp_path / "calls"
    app = rec_app({"IVR_RECORD_DIR": str(record_dir)})
    call = phone_on(app).dial("rec", call_sid=SID)
    call.press("1")
    assert call.heard == ["Enter your card."]
    result = replay(record_dir / f"{SID}.jsonl", replay_target, flows_dir=flows_dir)
    assert result.ok, result.report()
