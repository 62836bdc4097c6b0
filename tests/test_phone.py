"""The built-in phone against hand-written TwiML: what the caller hears, what Twilio would post, where
the call goes. A tiny WSGI app serves the documents by path and records every request."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import phone_on
from helpers import FakeClock
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Request, Response

from ivr.errors import PhoneError, TransportError
from ivr.phone import CallError, HttpTransport, Phone, WsgiTransport
from ivr.phone.records import Heard
from ivr.phone.transport import url_with_params
from ivr.phone.twiml import APPLICATION_ERROR_TEXT

ACCOUNT = "AC" + "0" * 32
FROM, TO = "+15551230000", "+15559870000"
TOKEN = "abcdefabcdefabcdefabcdefabcdef12"
SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "twiml-xsd" / "twiml.xsd"


def twiml(inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    form: dict
    headers: dict


class TwimlApp:
    """Serves TwiML by 'path?query' or 'path' (a str, a (status, body) pair, or a callable); records requests."""

    def __init__(self, docs: dict) -> None:
        self.docs = {"/twilio/status": "<Response/>", **docs}
        self.seen: list[Seen] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        query = request.query_string.decode()
        self.seen.append(
            Seen(request.method, request.path, request.args.to_dict(), request.form.to_dict(), dict(request.headers))
        )
        answer = self.docs.get(f"{request.path}?{query}", self.docs.get(request.path, (404, "Not Found")))
        answer = answer() if callable(answer) else answer
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return Response(body, status=status, content_type="text/xml")(environ, start_response)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


def make(docs: dict, **options) -> tuple[TwimlApp, Phone]:
    app = TwimlApp(docs)
    return app, Phone(WsgiTransport(app), **options)


def twilio(status: str, sid: str, direction: str = "inbound", **extra) -> dict:
    """The parameter set Twilio sends with every voice webhook, written out."""
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Direction": direction,
        "From": FROM,
        "To": TO,
        "Caller": FROM,
        "Called": TO,
        **{f"{who}{part}": "" for who in ("From", "To", "Caller", "Called") for part in ("City", "State", "Zip")},
        **{f"{who}Country": "US" for who in ("From", "To", "Caller", "Called")},
    }
    return {**params, **extra}


MENU = twiml(
    '<Say>Hello.</Say><Gather action="/voice/main/menu" {attrs}><Say>Press 1.</Say><Pause length="1"/>'
    "<Play>https://x.test/music.mp3</Play></Gather><Say>We did not hear you.</Say>"
    '<Redirect method="POST">/voice/main/menu?event=no_input</Redirect>'
)
AFTER_MENU = twiml("<Say>Sales.</Say><Hangup/>")
RETRY = twiml("<Say>Again.</Say><Hangup/>")


def menu(attrs: str = "", **options) -> tuple[TwimlApp, Phone]:
    docs = {"/voice/main": MENU.format(attrs=attrs), "/voice/main/menu": AFTER_MENU}
    return make({**docs, "/voice/main/menu?event=no_input": RETRY}, **options)


# -- prompts and waiting -------------------------------------------------------------------------


def test_say_play_and_pause_are_heard_in_order_then_the_document_ends_the_call():
    app, phone = make(
        {
            "/voice/main": twiml(
                '<Say voice="Polly.Joanna" language="en-GB" loop="2">Welcome to\n   Acme.</Say>'
                '<Play loop="3">https://x.test/beep.mp3</Play><Pause length="2"/><Say>Goodbye.</Say>'
            )
        }
    )
    call = phone.dial("main")
    assert call.transcript == [
        Heard("say", "Welcome to Acme.", "Polly.Joanna", "en-GB", 2, "main", None),
        Heard("play", "https://x.test/beep.mp3", None, None, 3, "main", None),
        Heard("pause", "2", None, None, 1, "main", None),
        Heard("say", "Goodbye.", None, None, 1, "main", None),
    ]
    assert call.heard == ["Welcome to Acme.", "play: https://x.test/beep.mp3", "Goodbye."]
    assert (call.ended, call.end_reason, call.waiting_for, call.error) == (True, "end-of-document", None, None)
    assert app.paths == ["/voice/main", "/twilio/status"]


def test_gather_waits_after_its_nested_prompts_in_the_state_its_action_names():
    app, phone = menu('numDigits="1"')
    call = phone.dial("main")
    assert call.heard == ["Hello.", "Press 1.", "play: https://x.test/music.mp3"]
    assert (call.waiting_for, call.ended, call.flow, call.state) == ("gather", False, "main", "menu")
    assert call.transcript[0].state is None and call.transcript[1].state == "menu"
    assert app.paths == ["/voice/main"]
    assert call.documents == [MENU.format(attrs='numDigits="1"')]


@pytest.mark.parametrize(
    ("attrs", "keys", "digits", "finished"),
    [
        ('numDigits="2"', "123", "12", ""),  # the first numDigits are submitted, the rest ignored
        ("", "42#", "42", "#"),  # the default finish key submits what came before it
        ('finishOnKey="*"', "9*1", "9", "*"),
        ('numDigits="3"', "1#", "1", "#"),  # the finish key wins over a numDigits not reached
        ('finishOnKey=""', "1#", "1#", ""),  # no finish key: '#' is a digit, submitted at the timeout
        ('numDigits="4"', "12", "12", ""),  # fewer than numDigits: submitted at the timeout
    ],
    ids=["num-digits", "finish-key", "other-finish-key", "finish-before-num-digits", "no-finish-key", "partial"],
)
def test_press_posts_digits_like_twilio(attrs, keys, digits, finished):
    app, phone = menu(attrs)
    call = phone.dial("main")
    call.press(keys)
    seen = app.seen[1]
    assert (seen.method, seen.path, seen.query) == ("POST", "/voice/main/menu", {})
    expected = twilio("in-progress", call.sid, Digits=digits, FinishedOnKey=finished, msg="Gather End")
    assert seen.form == expected
    assert call.heard == ["Sales."]
    assert (call.end_reason, call.exchanges[-1].state) == ("hangup", "menu")


def test_finish_key_alone_is_no_input_and_the_next_verb_runs():
    app, phone = menu()
    call = phone.dial("main")
    call.press("#")
    assert call.heard == ["We did not hear you.", "Again."]
    assert [(s.path, s.query) for s in app.seen[1:3]] == [
        ("/voice/main/menu", {"event": "no_input"}),
        ("/twilio/status", {}),
    ]
    assert "Digits" not in app.seen[1].form


def test_wait_falls_through_to_the_next_verb_without_a_request():
    app, phone = menu('numDigits="1"')
    call = phone.dial("main")
    call.wait()
    assert call.heard == ["We did not hear you.", "Again."]
    assert app.seen[1].query == {"event": "no_input"}
    assert app.seen[1].form == twilio("in-progress", call.sid)


def test_action_on_empty_result_posts_empty_digits_instead_of_falling_through():
    app, phone = menu('actionOnEmptyResult="true"')
    call = phone.dial("main")
    call.wait()
    assert app.seen[1].path == "/voice/main/menu" and app.seen[1].query == {}
    assert app.seen[1].form == twilio("in-progress", call.sid, Digits="", FinishedOnKey="", msg="Gather End")
    assert call.heard == ["Sales."]


@pytest.mark.parametrize(("attrs", "language"), [('language="fr-FR"', "fr-FR"), ("", "en-US")])
def test_speech_posts_speech_result_confidence_and_language(attrs, language):
    app, phone = menu(f'input="dtmf speech" {attrs}')
    call = phone.dial("main")
    call.say("sales please", confidence=0.87)
    expected = twilio("in-progress", call.sid, SpeechResult="sales please", Confidence="0.87", Language=language)
    assert app.seen[1].form == expected
    assert call.heard == ["Sales."]


def test_speaking_to_a_keypad_only_gather_is_no_input():
    app, phone = menu('numDigits="1"')
    call = phone.dial("main")
    call.say("sales")
    assert call.heard == ["We did not hear you.", "Again."]
    assert app.seen[1].query == {"event": "no_input"} and "SpeechResult" not in app.seen[1].form


def test_pressing_keys_at_a_speech_only_gather_is_no_input():
    app, phone = menu('input="speech"')
    call = phone.dial("main")
    call.press("1")
    assert call.heard == ["We did not hear you.", "Again."]
    assert app.seen[1].query == {"event": "no_input"} and "Digits" not in app.seen[1].form


def test_gather_without_action_requests_its_own_document_with_its_method():
    app, phone = make({"/ask": twiml('<Gather method="GET" numDigits="1"><Say>Pick one.</Say></Gather>')})
    call = phone.dial("/ask")
    call.press("5")
    assert [(s.method, s.path) for s in app.seen] == [("POST", "/ask"), ("GET", "/ask")]
    assert app.seen[1].query == twilio("in-progress", call.sid, Digits="5", FinishedOnKey="", msg="Gather End")
    assert app.seen[1].form == {}
    assert call.heard == ["Pick one."] and call.waiting_for == "gather"


# -- record, dial, enqueue -----------------------------------------------------------------------

VOICEMAIL = twiml(
    '<Say>Leave a message.</Say><Record action="/voice/main/voicemail" maxLength="120" finishOnKey="#*"/>'
    '<Say>No message.</Say><Redirect method="POST">/voice/main/voicemail?event=no_recording</Redirect>'
)
VOICEMAIL_DOCS = {
    "/voice/main": VOICEMAIL,
    "/voice/main/voicemail": twiml("<Say>Thanks for your message.</Say><Hangup/>"),
    "/voice/main/voicemail?event=no_recording": twiml("<Say>Nothing recorded.</Say><Hangup/>"),
}


def _recording(form: dict) -> dict:
    sid = form["RecordingSid"]
    assert re.fullmatch(r"RE[0-9a-f]{32}", sid)
    assert form["RecordingUrl"] == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"
    return {k: v for k, v in form.items() if k not in ("RecordingSid", "RecordingUrl")}


def test_record_posts_the_recording_and_the_finish_key():
    app, phone = make(VOICEMAIL_DOCS)
    call = phone.dial("main")
    assert (call.waiting_for, call.state, call.heard) == ("record", "voicemail", ["Leave a message."])
    call.record(12, finish_key="*")
    assert (app.seen[1].method, app.seen[1].path) == ("POST", "/voice/main/voicemail")
    assert _recording(app.seen[1].form) == twilio("in-progress", call.sid, RecordingDuration="12", Digits="*")
    assert call.heard == ["Thanks for your message."]


def test_empty_recording_falls_through_without_a_request():
    app, phone = make(VOICEMAIL_DOCS)
    call = phone.dial("main")
    call.record_nothing()
    assert call.heard == ["No message.", "Nothing recorded."]
    assert [(s.path, s.query) for s in app.seen] == [
        ("/voice/main", {}),
        ("/voice/main/voicemail", {"event": "no_recording"}),
        ("/twilio/status", {}),
    ]


def test_hanging_up_while_recording_posts_digits_hangup_and_ends_the_call():
    app, phone = make(VOICEMAIL_DOCS)
    call = phone.dial("main")
    call.hangup(seconds=7)
    assert _recording(app.seen[1].form) == twilio("completed", call.sid, RecordingDuration="7", Digits="hangup")
    assert call.heard == []  # Twilio ignores the TwiML answered after a hang-up
    assert (call.ended, call.end_reason) == (True, "caller-hangup")
    assert app.paths == ["/voice/main", "/voice/main/voicemail", "/twilio/status"]


DIAL = twiml('<Say>Connecting.</Say><Dial action="/voice/main/sales" timeout="20"><Number>+15005550006</Number></Dial>')


@pytest.mark.parametrize(("status", "duration"), [("completed", "42"), ("busy", "0"), ("no-answer", "0")])
def test_dial_result_posts_the_dial_call_status(status, duration):
    app, phone = make({"/voice/main": DIAL, "/voice/main/sales": twiml("<Say>Bye.</Say>")})
    call = phone.dial("main")
    assert (call.waiting_for, call.state) == ("dial", "sales")
    call.dial_result(status, duration=42)
    form = app.seen[1].form
    assert re.fullmatch(r"CA[0-9a-f]{32}", form.pop("DialCallSid"))
    assert form == twilio("in-progress", call.sid, DialCallStatus=status, DialCallDuration=duration)
    assert call.heard == ["Bye."]


def test_dial_without_action_goes_on_with_the_next_verb():
    app, phone = make({"/voice/main": twiml("<Dial>+15005550006</Dial><Say>The call is over.</Say>")})
    call = phone.dial("main")
    call.dial_result("completed")
    assert call.heard == ["The call is over."]
    assert app.paths == ["/voice/main", "/twilio/status"]


def test_queue_result_posts_queue_result_and_time():
    enqueue = twiml('<Enqueue action="/voice/main/queue" waitUrl="/hold">support</Enqueue><Say>never</Say>')
    app, phone = make({"/voice/main": enqueue, "/voice/main/queue": twiml("<Say>Served.</Say>")})
    call = phone.dial("main")
    assert (call.waiting_for, call.state) == ("enqueue", "queue")
    call.queue_result("bridged", wait_seconds=95)
    form = app.seen[1].form
    assert re.fullmatch(r"QU[0-9a-f]{32}", form.pop("QueueSid"))
    assert form == twilio("in-progress", call.sid, QueueResult="bridged", QueueTime="95")
    assert call.heard == ["Served."]


def test_enqueue_without_action_goes_on_with_the_next_verb():
    app, phone = make({"/voice/main": twiml("<Enqueue>support</Enqueue><Say>Left the queue.</Say>")})
    call = phone.dial("main")
    call.queue_result("leave")
    assert call.heard == ["Left the queue."]
    assert app.paths == ["/voice/main", "/twilio/status"]


# -- redirect, hangup, reject --------------------------------------------------------------------


def test_redirect_follows_relative_urls_with_its_method_default_post():
    app, phone = make(
        {
            "/a/b": twiml("<Say>One.</Say><Redirect>c</Redirect><Say>never</Say>"),
            "/a/c": twiml('<Redirect method="GET">/d?x=1</Redirect>'),
            "/d": twiml("<Say>Two.</Say><Hangup/>"),
        }
    )
    call = phone.dial("/a/b")
    assert [(s.method, s.path) for s in app.seen[:3]] == [("POST", "/a/b"), ("POST", "/a/c"), ("GET", "/d")]
    assert app.seen[2].query == {"x": "1", **twilio("in-progress", call.sid)}
    assert call.heard == ["One.", "Two."]
    assert [e.url for e in call.exchanges] == ["http://localhost/a/b", "http://localhost/a/c", "http://localhost/d?x=1"]


def test_hangup_verb_ends_the_call_and_skips_the_rest():
    _app, phone = make({"/voice/main": twiml("<Say>Bye.</Say><Hangup/><Say>never</Say>")})
    call = phone.dial("main")
    assert (call.heard, call.end_reason, call.reject_reason) == (["Bye."], "hangup", None)
    with pytest.raises(PhoneError, match="has ended"):
        call.press("1")


@pytest.mark.parametrize(
    ("verb", "reason", "status"),
    [
        ('<Reject reason="busy"/>', "busy", "busy"),
        ('<Reject reason="rejected"/>', "rejected", "no-answer"),
        ("<Reject/>", "rejected", "no-answer"),
    ],
)
def test_reject_ends_the_call_keeping_its_reason_and_status(verb, reason, status):
    app, phone = make({"/voice/main": twiml(verb + "<Say>never</Say>")})
    call = phone.dial("main")
    assert (call.end_reason, call.reject_reason, call.transcript) == ("reject", reason, [])
    form = dict(app.seen[-1].form)
    assert form.pop("Timestamp").endswith(" GMT")  # RFC 2822, as Twilio's status callbacks carry it
    assert form == twilio(status, call.sid, CallDuration="0", SequenceNumber="0")


# -- parameters, signatures, status callback -----------------------------------------------------


def test_every_request_carries_twilios_parameters_ringing_first_then_in_progress():
    app, phone = menu('numDigits="1"')
    call = phone.dial("main", call_sid="CA" + "9" * 32, params={"AnsweredBy": "human"})
    call.press("1")
    first = {
        "AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "CallSid": "CA" + "9" * 32, "CallStatus": "ringing",
        "Direction": "inbound", "From": FROM, "To": TO, "Caller": FROM, "Called": TO,
        "FromCity": "", "FromState": "", "FromZip": "", "FromCountry": "US",
        "ToCity": "", "ToState": "", "ToZip": "", "ToCountry": "US",
        "CallerCity": "", "CallerState": "", "CallerZip": "", "CallerCountry": "US",
        "CalledCity": "", "CalledState": "", "CalledZip": "", "CalledCountry": "US",
        "AnsweredBy": "human",
    }  # fmt: skip
    assert app.seen[0].form == first
    assert app.seen[1].form == {
        **first,
        "CallStatus": "in-progress",
        "Digits": "1",
        "FinishedOnKey": "",
        "msg": "Gather End",
    }
    assert call.exchanges[0].params == first


def test_an_outbound_call_is_in_progress_from_its_first_request():
    app, phone = make({"/voice/main": twiml("<Hangup/>")})
    call = phone.dial("main", direction="outbound-api", from_=TO, to=FROM)
    assert app.seen[0].form["CallStatus"] == "in-progress"
    assert (app.seen[0].form["Direction"], app.seen[0].form["From"], app.seen[0].form["Called"]) == (
        "outbound-api",
        TO,
        FROM,
    )
    assert call.sid == app.seen[0].form["CallSid"] == app.seen[1].form["CallSid"]


def test_requests_are_signed_like_twilio_for_post_and_get():
    app, phone = make(
        {"/voice/main": twiml('<Gather method="GET" action="/next?step=2" numDigits="1"/>')}, auth_token=TOKEN
    )
    call = phone.dial("main")
    call.press("7")
    validator = RequestValidator(TOKEN)
    post, get = app.seen[0], app.seen[1]
    assert validator.validate("http://localhost/voice/main", post.form, post.headers["X-Twilio-Signature"])
    signed_url = url_with_params(call.exchanges[1].url, call.exchanges[1].params)
    assert signed_url.startswith("http://localhost/next?step=2&AccountSid=AC")
    assert validator.validate(signed_url, {}, get.headers["X-Twilio-Signature"])
    assert not validator.validate(signed_url, {}, post.headers["X-Twilio-Signature"])


def test_without_a_token_requests_are_not_signed():
    app, phone = make({"/voice/main": twiml("<Hangup/>")})
    phone.dial("main")
    assert "X-Twilio-Signature" not in app.seen[0].headers


def test_the_end_of_the_call_posts_the_status_callback_with_its_duration():
    clock = FakeClock(1_000.0)
    app, phone = menu('numDigits="1"', clock=clock, auth_token=TOKEN)
    call = phone.dial("main")
    clock.now += 42
    call.press("1")
    status = app.seen[-1]
    assert (status.method, status.path) == ("POST", "/twilio/status")
    # When it happened (RFC 2822, the phone's clock) and the callback's place in the call's order.
    assert status.form == twilio(
        "completed", call.sid, CallDuration="42", Timestamp="Thu, 01 Jan 1970 00:17:22 GMT", SequenceNumber="0"
    )
    assert RequestValidator(TOKEN).validate(
        "http://localhost/twilio/status", status.form, status.headers["X-Twilio-Signature"]
    )
    assert [(c.url, c.status) for c in call.callbacks] == [("http://localhost/twilio/status", 200)]


@pytest.mark.parametrize(
    ("callback", "paths"), [(None, ["/voice/main"]), ("https://cb.test/hooks/status", ["/voice/main", "/hooks/status"])]
)
def test_the_status_callback_can_be_elsewhere_or_off(callback, paths):
    app, phone = make({"/voice/main": twiml("<Hangup/>"), "/hooks/status": "<Response/>"}, status_callback=callback)
    phone.dial("main")
    assert app.paths == paths


# -- bounds and errors ---------------------------------------------------------------------------


def test_a_redirect_loop_ends_the_call_naming_its_urls():
    app, phone = make(
        {"/loop/a": twiml("<Redirect>/loop/b</Redirect>"), "/loop/b": twiml("<Redirect>/loop/a</Redirect>")},
        max_automatic=5,
    )
    call = phone.dial("/loop/a")
    assert app.paths == ["/loop/a", "/loop/b", "/loop/a", "/loop/b", "/loop/a", "/twilio/status"]
    assert (call.end_reason, call.error.code) == ("error", 0)
    assert "loop" in call.error.message
    assert "http://localhost/loop/a -> http://localhost/loop/b" in call.error.message


def test_max_requests_bounds_a_whole_call():
    again = twiml('<Gather action="/again" numDigits="1"><Say>Press a key.</Say></Gather>')
    _app, phone = make({"/again": again}, max_requests=3)
    call = phone.dial("/again")
    call.press("1")
    call.press("2")
    assert not call.ended
    call.press("3")
    assert len(call.exchanges) == 3 and call.ended
    assert call.error.code == 0 and "over 3 requests" in call.error.message and "/again" in call.error.message


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("this is not XML", 12100),
        ("<html><body>Error</body></html>", 12100),
        ((500, "Internal Server Error"), 11217),
        ((404, "Not Found"), 11217),
        (twiml("<Say>" + "a" * 70_000 + "</Say>"), 11750),
    ],
    ids=["not-xml", "not-response", "http-500", "http-404", "over-64kB"],
)
def test_a_document_twilio_cannot_use_ends_the_call_with_its_error(answer, code):
    app, phone = make({"/voice/main": twiml('<Gather action="/broken" numDigits="1"/>'), "/broken": answer})
    call = phone.dial("main")
    call.press("1")
    assert (call.ended, call.end_reason, call.error.code) == (True, "error", code)
    assert "/broken" in call.error.message
    assert call.heard == [APPLICATION_ERROR_TEXT]
    assert app.paths[-1] == "/twilio/status"


class Unreachable:
    def request(self, method, url, params, headers):
        raise TransportError(11205, f"{method} {url}: no answer within 15 s")


def test_a_transport_failure_is_error_11205():
    call = Phone(Unreachable(), status_callback=None).dial("main")
    assert call.error == CallError(11205, "POST http://localhost/voice/main: no answer within 15 s")
    assert call.heard == [APPLICATION_ERROR_TEXT] and call.exchanges[0].status == 0


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"no TwiML schema at {SCHEMA}")
@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_document_that_fails_the_schema_is_a_warning_and_the_call_goes_on(how, monkeypatch):
    docs = {"/voice/main": twiml('<Say loop="twice">Hi.</Say><Redirect>/ok</Redirect>'), "/ok": twiml("<Hangup/>")}
    if how == "environment":
        monkeypatch.setenv("IVR_TWIML_XSD", str(SCHEMA))
        _app, phone = make(docs)
    else:
        _app, phone = make(docs, schema_path=str(SCHEMA))
    call = phone.dial("main")
    assert call.heard == ["Hi."] and call.end_reason == "hangup"
    assert [w.code for w in call.warnings] == [12200]
    assert "http://localhost/voice/main" in call.warnings[0].message and "loop" in call.warnings[0].message


def test_an_unknown_verb_is_skipped_with_a_12200_warning(monkeypatch):
    monkeypatch.delenv("IVR_TWIML_XSD", raising=False)  # the schema would add its own warning
    _app, phone = make({"/voice/main": twiml("<Sya>Hi.</Sya><Say>Hello.</Say>")})
    call = phone.dial("main")
    assert call.heard == ["Hello."]
    assert call.warnings == [CallError(12200, "http://localhost/voice/main: <Sya> is not a TwiML verb; skipped")]


# -- the caller's side ---------------------------------------------------------------------------


def test_a_caller_action_that_does_not_fit_says_what_the_call_waits_for():
    app, phone = make({"/voice/main": DIAL})
    call = phone.dial("main")
    with pytest.raises(
        PhoneError, match=r"cannot press keys: the call is waiting for the dialled party \(use dial_result\)"
    ):
        call.press("1")
    with pytest.raises(PhoneError, match="waiting for the dialled party"):
        call.record()
    with pytest.raises(PhoneError, match="a keypad has only"):
        call.press("1a")
    assert call.waiting_for == "dial" and len(app.seen) == 1  # nothing changed


@pytest.mark.parametrize(
    ("target", "path", "query", "state"),
    [
        ("main", "/voice/main", {}, None),
        ("/voice/main?state=menu", "/voice/main", {"state": "menu"}, "menu"),
        ("http://elsewhere.test/voice/other", "/voice/other", {}, None),
    ],
)
def test_dial_targets_a_flow_a_path_or_a_url(target, path, query, state):
    app, phone = make({"/voice/main": twiml("<Pause/>"), "/voice/other": twiml("<Pause/>")})
    call = phone.dial(target)
    assert (app.seen[0].path, app.seen[0].query, call.state) == (path, query, state)
    assert call.exchanges[0].url == phone.url(target)


def test_a_target_that_is_neither_flow_path_nor_url_is_refused():
    with pytest.raises(PhoneError, match="cannot dial 'main menu'"):
        Phone(WsgiTransport(TwimlApp({}))).dial("main menu")


# -- HttpTransport against a real server on this machine -----------------------------------------


def test_http_transport_posts_and_gets_over_http(serve):
    app = TwimlApp(
        {
            "/voice/main": twiml('<Say>Over HTTP.</Say><Redirect method="GET">/two</Redirect>'),
            "/two": twiml("<Hangup/>"),
        }
    )
    phone = Phone(HttpTransport(timeout=5), serve(app), auth_token=TOKEN)
    call = phone.dial("main")
    assert (call.heard, call.end_reason) == (["Over HTTP."], "hangup")
    assert [(s.method, s.path) for s in app.seen] == [
        ("POST", "/voice/main"),
        ("GET", "/two"),
        ("POST", "/twilio/status"),
    ]
    assert app.seen[1].query["CallStatus"] == "in-progress"


def test_http_transport_timeout_is_error_11205(serve):
    release = threading.Event()
    app = TwimlApp({"/voice/main": lambda: release.wait(5) and twiml("<Hangup/>")})
    phone = Phone(HttpTransport(timeout=0.2), serve(app), status_callback=None)
    started = time.monotonic()
    call = phone.dial("main")
    release.set()
    assert time.monotonic() - started < 3
    assert call.error.code == 11205 and "no answer within 0.2 s" in call.error.message


# -- the phone against this project's app ------------------------------------------------------


def test_the_phone_calls_the_real_app_signed_and_schema_checked(make_app):
    app = make_app({"TWILIO_AUTH_TOKEN": TOKEN})
    phone = Phone(WsgiTransport(app), auth_token=TOKEN, schema_path=str(SCHEMA) if SCHEMA.exists() else None)
    call = phone.dial("main")
    assert call.heard[0] == "Thanks for calling Acme."
    assert (call.waiting_for, call.flow, call.state) == ("gather", "main", "menu")
    call.press("3")
    assert (call.waiting_for, call.state) == ("record", "voicemail")
    call.record(9)
    assert call.ended and call.error is None and call.warnings == []
    assert {e.status for e in call.exchanges} | {c.status for c in call.callbacks} == {200}


def test_a_plain_dial_cannot_be_answered_but_a_conference_can(make_app, tmp_path):
    """`answered` is the DialCallStatus of a dial to a conference only (as the browser phone and graph say)."""
    (tmp_path / "d.yaml").write_text(
        "start: plain\nstates:\n"
        "  plain: {dial: '+15550001111', next: room}\n"
        "  room: {dial: {conference: team}, next: bye}\n"
        "  bye: {say: Bye., hangup: true}\n"
    )
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(tmp_path)})).dial("d")
    with pytest.raises(PhoneError, match="DialCallStatus 'answered' cannot end this dial"):
        call.dial_result("answered")
    call.dial_result("completed")
    call.dial_result("answered")
    assert call.heard[-1] == "Bye."
