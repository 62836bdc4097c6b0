"""A definition of the kind Studio's IVR template produces, imported and walked end to end: a
caller lookup over HTTP, a menu on keys and speech, a transfer whose busy or unanswered outcome
falls back to voicemail (Studio's split on DialCallStatus)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from studio_support import STUDIO, app_for, strict_problems

from ivr.studio import convert, read_definition

MENU = "For your balance, press 1 or say balance. To talk to us, press 2 or say agent."


@pytest.fixture
def api():
    """The caller lookup: a real server on 127.0.0.1 answering as the bank's API would."""
    asked = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            found = "from=%2B15551230000" in self.path
            body = json.dumps({"name": "Ann", "balance": 42} if found else {"error": "unknown caller"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()
    server.server_close()


@pytest.fixture
def flows(tmp_path, api):
    text = (STUDIO / "ivr_template.json").read_text(encoding="utf-8").replace("https://api.example.com", api[0])
    imported = convert(read_definition(json.loads(text), "ivr_template.json"), "bank", flows_dir=tmp_path / "flows")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "bank.yaml").write_text(imported.text, encoding="utf-8")
    assert imported.reports == []
    return tmp_path / "flows"


@pytest.fixture
def ivr_app(flows, tmp_path):
    return app_for(flows, tmp_path)


def test_the_template_passes_check_strict(flows, phone):
    assert strict_problems(flows) == []


def test_a_known_caller_hears_their_name_and_balance(phone, api):
    call = phone.dial("bank", from_="+15551230000")
    assert call.heard == ["Thanks for calling Owl Bank.", f"Hello Ann. {MENU}"]
    assert api[1] == ["/callers?from=%2B15551230000"]
    call.press("1")
    assert call.heard == ["Your balance is 42 dollars.", "Goodbye."]
    assert call.ended and call.end_reason == "hangup"


def test_an_unknown_caller_is_told_and_still_gets_the_menu(phone):
    call = phone.dial("bank", from_="+15559990000")
    assert call.heard == ["Thanks for calling Owl Bank.", "We could not find your account.", f"Hello . {MENU}"]
    call.say("balance please", confidence=0.9)
    assert call.heard == ["Your balance is dollars.", "Goodbye."]


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed"])
def test_a_transfer_nobody_takes_falls_back_to_voicemail(phone, status):
    call = phone.dial("bank", from_="+15551230000")
    call.say("I want an agent", confidence=0.9)
    assert call.waiting_for == "dial"
    call.dial_result(status)
    assert call.heard == ["Nobody is free. Please leave a message after the beep."]
    assert call.waiting_for == "record"
    call.record(seconds=12)
    assert call.heard == ["Thanks, we got your message."]
    assert call.ended


def test_an_answered_transfer_ends_when_the_call_does(phone):
    call = phone.dial("bank", from_="+15551230000")
    call.press("2")
    call.dial_result("completed")
    assert call.heard == []
    assert call.ended


def test_silence_and_unknown_keys_say_goodbye_without_asking_again(phone):
    call = phone.dial("bank", from_="+15551230000")
    call.wait()
    assert call.heard == ["Goodbye."]
    call = phone.dial("bank", from_="+15551230000")
    call.press("9")
    assert call.heard == ["Goodbye."]
