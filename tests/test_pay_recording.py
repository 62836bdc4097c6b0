"""A payment never runs under a whole-call recording: the pay state pauses it (Twilio's REST API, during the
request) before the document with <Pay>, resumes it after, takes its error route when Twilio refuses, and
`check` refuses what cannot be paused (ivr.core.pay_recording, ivr.core.recording_checks.pay_errors)."""

from __future__ import annotations

import pytest
from conftest import phone_on

from ivr.core.lint import run_checks
from ivr.phone.fakes import FakeTwilioHttp, error_body
from ivr.web.services import services

ACCOUNT = "AC" + "0" * 32
SID = "CA" + "1" * 32
URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/{SID}/Recordings/Twilio.CURRENT.json"
CARD = "4242424242424242"

FLOW = """\
start: intro
states:
  intro:
    say: This call is recorded. To pay your bill, press 1.
    announces_recording: true
    call_recording: start
    gather: {num_digits: 1}
    routes: {"1": take}
  take:
    say: Enter your card number, then press pound.
    pay: {amount: "10.00", currency: usd}
    routes: {success: thanks, internal-error: sorry}
    next: sorry
  thanks:
    say: Thank you, you paid.
    hangup: true
  sorry:
    say: Sorry, we could not take your payment.
    hangup: true
"""


@pytest.fixture
def pay_app(make_app, flows_dir):
    def make(text: str = FLOW):
        (flows_dir / "bill.yaml").write_text(text)
        app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "t" * 32})
        http = FakeTwilioHttp()
        services(app).twilio_http = http
        return app, http

    return make


def _recording(request):
    return 200, {"sid": "RE" + "2" * 32, "call_sid": SID, "account_sid": ACCOUNT, "status": request.data["Status"]}


def test_the_recording_is_paused_before_the_pay_document_and_resumed_after(pay_app):
    app, http = pay_app()
    http.respond_with("POST", r"/Recordings/Twilio\.CURRENT\.json$", _recording)
    call = phone_on(app).dial("bill", call_sid=SID)
    assert http.requests == []
    call.press("1")
    (paused,) = http.requests  # made during the request, before the document with <Pay> was answered
    assert (paused.method, paused.url, paused.form) == ("POST", URL, [("Status", "paused"), ("PauseBehavior", "skip")])
    assert "<Pay " in call.documents[-1]
    assert services(app).store.get(SID)["call_recording"] == "paused"
    call.pay(card=CARD, expiry="12/30", security_code="123", postal_code="94105")
    assert [r.form for r in http.requests[1:]] == [[("Status", "in-progress")]]
    assert call.heard[-1] == "Thank you, you paid."
    assert services(app).store.get(SID)["call_recording"] == "on"


def test_a_pause_twilio_refuses_takes_the_pay_states_error_route_and_asks_no_card(pay_app):
    app, http = pay_app()
    http.respond("POST", r"/Recordings/Twilio\.CURRENT\.json$", 404, json=error_body(20404, "not found", 404))
    call = phone_on(app).dial("bill", call_sid=SID)
    call.press("1")
    assert call.heard == ["Sorry, we could not take your payment."]
    assert not any("<Pay" in body for body in call.documents)
    assert services(app).store.get(SID)["call_recording"] == "on"


def test_a_payment_that_may_not_pause_is_refused_by_check_and_never_asks_for_a_card(pay_app, flows_dir):
    text = FLOW.replace(
        'pay: {amount: "10.00", currency: usd}', 'pay: {amount: "10.00", currency: usd, pause_recording: false}'
    )
    app, http = pay_app(text)
    lines = [p.format() for p in run_checks(flows_dir=flows_dir).problems]
    assert any(
        ":11:10: error: states.take.pay: a whole-call recording may be running when a call comes here (intro -> take)"
        in line
        for line in lines
    ), lines
    call = phone_on(app).dial("bill", call_sid=SID)
    call.press("1")
    assert call.heard == ["Sorry, we could not take your payment."]
    assert http.requests == [] and not any("<Pay" in body for body in call.documents)


def test_check_refuses_a_payment_in_the_document_that_starts_the_recording(flows_dir):
    text = FLOW.replace('    gather: {num_digits: 1}\n    routes: {"1": take}\n', "    next: take\n")
    (flows_dir / "bill.yaml").write_text(text)
    lines = [p.format() for p in run_checks(flows_dir=flows_dir).problems]
    message = "error: states.take.pay: the recording starts in the same document as this payment (intro -> ... -> take)"
    assert any(message in line for line in lines), lines


def test_without_a_recording_a_payment_makes_no_request(pay_app):
    app, http = pay_app(FLOW.replace("    call_recording: start\n", ""))
    call = phone_on(app).dial("bill", call_sid=SID)
    call.press("1")
    call.pay(card=CARD, expiry="12/30", security_code="123", postal_code="94105")
    assert call.heard[-1] == "Thank you, you paid." and http.requests == []


def test_a_payment_in_the_document_that_starts_the_recording_asks_no_card(pay_app):
    text = FLOW.replace('    gather: {num_digits: 1}\n    routes: {"1": take}\n', "    next: take\n")
    app, http = pay_app(text)
    call = phone_on(app).dial("bill", call_sid=SID)
    assert call.heard[-1] == "Sorry, we could not take your payment."
    assert http.requests == [] and not any("<Pay" in body for body in call.documents)


def test_check_refuses_a_payment_a_subflow_takes_while_its_caller_records(flows_dir):
    (flows_dir / "main.yaml").write_text(
        "start: intro\nstates:\n  intro:\n    say: This call is recorded. Press 1 to pay.\n"
        "    announces_recording: true\n"
        "    call_recording: start\n    gather: {num_digits: 1}\n    routes: {'1': paying}\n"
        "  paying:\n    subflow: {flow: paysub}\n    next: bye\n  bye:\n    say: Bye.\n    hangup: true\n"
    )
    (flows_dir / "paysub.yaml").write_text(
        "returns: [done]\nstart: take\nstates:\n  take:\n    say: Your card.\n"
        "    pay: {amount: '5.00', currency: usd, pause_recording: false}\n    next: done\n  done:\n    return: done\n"
    )
    lines = [p.format() for p in run_checks(flows_dir=flows_dir).problems]
    assert any("paysub.yaml" in line and "error: states.take.pay: a whole-call recording may be running" in line
               for line in lines), lines  # fmt: skip


def test_check_warns_of_a_pause_no_recording_can_precede(flows_dir):
    (flows_dir / "bill.yaml").write_text(
        "start: hold\nstates:\n  hold:\n    call_recording: pause\n    next: bye\n"
        "  bye:\n    say: Bye.\n    hangup: true\n"
    )
    lines = [p.format() for p in run_checks(flows_dir=flows_dir).problems]
    assert any("warning: states.hold.call_recording: no recording can be running when a call comes here" in line
               for line in lines), lines  # fmt: skip


def test_a_caller_hanging_up_mid_payment_gets_no_resume(pay_app):
    app, http = pay_app()
    http.respond_with("POST", r"/Recordings/Twilio\.CURRENT\.json$", _recording)
    call = phone_on(app).dial("bill", call_sid=SID)
    call.press("1")
    call.hangup()
    assert [r.form for r in http.requests] == [[("Status", "paused"), ("PauseBehavior", "skip")]]


def test_a_payment_tried_again_at_once_stays_paused_between_the_tries(pay_app):
    again = "routes: {success: thanks, internal-error: sorry, too-many-failed-attempts: take}"
    app, http = pay_app(FLOW.replace("routes: {success: thanks, internal-error: sorry}", again))
    http.respond_with("POST", r"/Recordings/Twilio\.CURRENT\.json$", _recording)
    call = phone_on(app).dial("bill", call_sid=SID)
    call.press("1")
    for _ in range(3):  # a wrong card three times: too many failed attempts, and the payment again
        call.pay(card="4242424242424241")
    call.pay(card=CARD, expiry="12/30", security_code="123", postal_code="94105")
    assert [r.form[0] for r in http.requests] == [("Status", "paused"), ("Status", "in-progress")]
    assert call.heard[-1] == "Thank you, you paid."
