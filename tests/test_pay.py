"""Payments (`pay:`): the loader's errors, the <Pay> document, routing on each Result, what is kept (never card
data), the status callback, and <Pay> on the built-in and terminal phones."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BASE, caller_params, sign

from ivr.cli import cli
from ivr.core.engine import Engine, new_session
from ivr.core.loader import load_flow_text
from ivr.core.pay import FAILED, PAY_RESULTS
from ivr.errors import FlowLoadError, WebhookError
from ivr.testing import TwimlSchema, phone_for
from ivr.web.services import services

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "pay"
CARD = "4242424242424242"  # a test card: what the caller keys must appear nowhere
ZIP = "94105"

FLOW = """\
title: Pay
start: pay_bill
states:
  pay_bill:
    set: {balance: "42.5"}
    say: Your balance is {{ balance }} dollars.
    pay:
      amount: "{{ balance }}"
      currency: usd
      connector: Default
      card_types: [visa, mastercard]
      max_attempts: 2
      timeout: 7
      description: Acme bill
      save_as: payment
      prompts:
        payment-card-number:
          - say: Please enter your card number.
          - {attempt: 2, error: invalid-card-number, say: That card number was not valid.}
        expiration-date:
          - say: Please enter the expiry.
          - {error: invalid-date, say: That date has passed.}
        payment-processing: One moment.
    routes: {success: thanks, caller-interrupted-with-star: menu}
    next: sorry
  thanks:
    say: "Thank you. Card {{ payment.card_type }} ending {{ payment.last4 }}, code {{ payment.confirmation_code }}."
    hangup: true
  sorry:
    say: "Sorry, no payment ({{ payment.result }})."
    hangup: true
  menu:
    say: Back at the menu.
    hangup: true
"""


def engine(text: str = FLOW) -> Engine:
    return Engine(load_flow_text(text, "pay.yaml", "pay"))


def problems(text: str) -> str:
    with pytest.raises(FlowLoadError) as caught:
        load_flow_text(text, "pay.yaml", "pay")
    return str(caught.value)


@pytest.fixture
def pay_app(make_app, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "pay.yaml").write_text(FLOW)
    shutil.copy(ROOT / "flows" / "payments.yaml", flows / "payments.yaml")
    shutil.copy(ROOT / "flows" / "hooks.py", flows / "hooks.py")
    return lambda config=None: make_app({"IVR_FLOWS_DIR": str(flows), **(config or {})})


# -- the loader ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("routes: {success: thanks,", "routes: {sucess: thanks,"),
         "pay.yaml:24:14: error: states.pay_bill.routes.sucess: not an outcome of pay (did you mean 'success'?)"),
        (("        payment-processing:", "        payment-procesing:"),
         "pay.yaml:23:9: error: states.pay_bill.pay.prompts.payment-procesing: unknown step 'payment-procesing' "
         "(did you mean 'payment-processing'?)"),
        (('amount: "{{ balance }}"', "amount: 12.5.0"),
         "pay.yaml:8:15: error: states.pay_bill.pay.amount: expected an amount such as 12.50"),
        (("error: invalid-date,", "error: invalid-dates,"),
         "pay.yaml:22:21: error: states.pay_bill.pay.prompts.expiration-date[1].error: unknown error type "
         "'invalid-dates' (did you mean 'invalid-date'?)"),
        (("    next: sorry\n", "    no_input: Sorry.\n    next: sorry\n"),
         "pay.yaml:25:5: error: states.pay_bill.no_input: Twilio retries each step of a payment itself: use "
         "pay.max_attempts"),
        (("    next: sorry\n", ""), "pay.yaml:8:7: error: states.pay_bill: outcomes too-many-failed-attempts, "
         "payment-connector-error, validation-error, internal-error have nowhere to go: add next: STATE"),
        (("      currency: usd\n", "      token_type: reusable\n"),
         "pay.yaml:9:7: error: states.pay_bill.pay.token_type: token_type is for a payment kept as a token"),
        (("    next: sorry\n", "    sensitive: false\n    next: sorry\n"),
         "pay.yaml:25:16: error: states.pay_bill.sensitive: a payment state is always sensitive"),
        (("card_types: [visa, mastercard]", "card_types: [visa, mastercrd]"),
         "pay.yaml:11:26: error: states.pay_bill.pay.card_types: unknown card type 'mastercrd' (did you mean "
         "'mastercard'?)"),
    ],
)  # fmt: skip
def test_a_payment_mistake_is_named_where_it_is_written(change, message):
    assert change[0] in FLOW
    assert message in problems(FLOW.replace(*change))


def test_a_payment_state_is_always_sensitive():
    assert engine().flow.states["pay_bill"].sensitive is True


def test_a_literal_amount_may_be_written_as_a_number():
    flow = load_flow_text(FLOW.replace('amount: "{{ balance }}"', "amount: 12.50"), "pay.yaml", "pay")
    assert flow.states["pay_bill"].action.amount.source == "12.50"


# -- the document ----------------------------------------------------------------------------------


def test_the_pay_document_is_exactly_the_golden_one_and_valid_twiml():
    step = engine().start(new_session("pay"), {"CallSid": "CA1"}, NOW)
    golden = (GOLDEN / "pay_bill.xml").read_text(encoding="utf-8").strip()
    assert step.twiml == golden
    schema = TwimlSchema.shared()
    assert schema.active, "set IVR_TWIML_XSD: the document must be checked against Twilio's schema"
    schema.check(step.twiml)


def test_a_templated_amount_that_is_no_amount_is_an_error_not_a_charge():
    """The web layer turns it into the flow's error state (or an apology), never a <Pay> of 'lots'."""
    flow = FLOW.replace('set: {balance: "42.5"}', 'set: {balance: "lots"}')
    with pytest.raises(WebhookError, match=r"pay\.amount rendered 'lots', not an amount to charge"):
        engine(flow).start(new_session("pay"), {"CallSid": "CA1"}, NOW)


def test_a_tokenized_payment_has_no_amount_and_follows_the_calls_language():
    flow = FLOW.replace('      amount: "{{ balance }}"\n      currency: usd\n', "      token_type: reusable\n")
    flow = flow.replace("title: Pay\n", "title: Pay\ndefaults: {language: en-GB}\n")
    step = engine(flow).start(new_session("pay"), {"CallSid": "CA1"}, NOW)
    assert 'tokenType="reusable"' in step.twiml and "chargeAmount" not in step.twiml
    assert 'language="en-GB"' in step.twiml.split("<Prompt")[0]


# -- routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "heard"),
    [
        ("success", "Thank you. Card visa ending 4242, code ch_9."),
        ("caller-interrupted-with-star", "Back at the menu."),
        *((r, f"Sorry, no payment ({r}).") for r in FAILED if r != "caller-interrupted-with-star"),
        ("something-new", "Sorry, no payment (internal-error)."),  # a Result Twilio may add one day
    ],
)
def test_each_result_routes_the_call(result, heard):
    e = engine()
    session = e.start(new_session("pay"), {"CallSid": "CA1"}, NOW).session
    params = {"Result": result, "PaymentCardNumber": "xxxx-xxxx-xxxx-4242", "PaymentCardType": "visa",
              "PaymentToken": "tok_1", "PaymentConfirmationCode": "ch_9", "ExpirationDate": "1230"}  # fmt: skip
    step = e.resume("pay_bill", session, params, NOW)
    assert f"<Say>{heard}</Say>" in step.twiml
    assert step.outcome == (result if result in PAY_RESULTS else "internal-error")


def test_what_is_kept_is_the_token_code_card_type_and_last_four_digits_only():
    e = engine()
    session = e.start(new_session("pay"), {"CallSid": "CA1"}, NOW).session
    params = {"Result": "success", "PaymentCardNumber": "xxxx-xxxx-xxxx-4242", "PaymentCardType": "visa",
              "PaymentToken": "tok_1", "PaymentConfirmationCode": "ch_9", "ExpirationDate": "1230",
              "SecurityCode": "xxx", "PaymentCardPostalCode": ZIP}  # fmt: skip
    step = e.resume("pay_bill", session, params, NOW)
    kept = {"result": "success", "token": "tok_1", "confirmation_code": "ch_9", "card_type": "visa", "last4": "4242",
            "profile_id": "", "error": ""}  # fmt: skip
    assert step.session["vars"]["payment"] == kept
    stored = json.dumps(step.session)
    assert "1230" not in stored and ZIP not in stored and "xxxx" not in stored


def test_the_redirect_after_pay_is_a_payment_that_did_not_happen():
    e = engine()
    session = e.start(new_session("pay"), {"CallSid": "CA1"}, NOW).session
    step = e.resume("pay_bill", session, {}, NOW, event="internal-error")
    assert "<Say>Sorry, no payment (internal-error).</Say>" in step.twiml


def test_a_hang_up_without_a_route_or_next_is_a_goodbye():
    flow = FLOW.replace("    next: sorry\n", "").replace(
        "routes: {success: thanks, caller-interrupted-with-star: menu}",
        "routes: {success: thanks, caller-interrupted-with-star: menu, too-many-failed-attempts: sorry, "
        "payment-connector-error: sorry, validation-error: sorry, internal-error: sorry}",
    )
    e = engine(flow)
    session = e.start(new_session("pay"), {"CallSid": "CA1"}, NOW).session
    assert "<Hangup />" in e.resume("pay_bill", session, {"Result": "caller-hung-up"}, NOW).twiml


# -- the status callback ---------------------------------------------------------------------------


def test_the_status_callback_keeps_progress_never_card_data(pay_app):
    app = pay_app()
    sid = "CA" + "7" * 32
    client = app.test_client()
    url = f"{BASE}/voice/pay"
    params = caller_params(sid)
    assert client.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)}).status_code == 200
    url = f"{BASE}/twilio/pay?flow=pay&state=pay_bill"
    fields = {**params, "Capture": "payment-card-number", "ErrorType": "invalid-card-number",
              "PartialResult": "true", "PaymentCardNumber": CARD, "ExpirationDate": "1230"}  # fmt: skip
    response = client.post(url, data=fields, headers={"X-Twilio-Signature": sign(url, fields)})
    assert response.status_code == 200
    assert response.data.endswith(b"<Response />")
    session = services(app).store.get(sid)
    assert session["pay"] == {"flow": "pay", "state": "pay_bill", "step": "payment-card-number",
                              "partial": "true", "error": "invalid-card-number"}  # fmt: skip
    assert CARD not in json.dumps(session)


def test_the_status_callback_refuses_a_bad_signature(pay_app):
    url = f"{BASE}/twilio/pay?flow=pay&state=pay_bill"
    params = caller_params("CA" + "7" * 32)
    response = pay_app().test_client().post(url, data=params, headers={"X-Twilio-Signature": "bad"})
    assert response.status_code == 403


# -- the built-in phone ----------------------------------------------------------------------------


def test_a_card_payment_on_the_phone_succeeds(pay_app):
    call = phone_for(pay_app(), schema=TwimlSchema.shared()).dial("pay")
    assert call.heard == ["Your balance is 42.5 dollars.", "Please enter your card number."]
    assert call.waiting_for == "pay"
    call.pay(card=CARD, expiry="12/30", security_code="123", postal_code=ZIP)
    assert call.heard[-2:] == ["One moment.", "Thank you. Card visa ending 4242, code " +
                               call.exchanges[-1].params["PaymentConfirmationCode"] + "."]  # fmt: skip
    assert call.exchanges[-1].params["PaymentCardNumber"] == "xxxx-xxxx-xxxx-4242"
    assert call.ended and not call.warnings


def test_a_wrong_card_is_asked_again_with_the_prompt_for_that_attempt_and_error(pay_app):
    call = phone_for(pay_app()).dial("pay")
    call.pay(card="4242424242424241")  # the check digit is wrong
    assert call.heard == ["That card number was not valid."] and call.waiting_for == "pay"
    call.pay(card=CARD, expiry="0120")  # in the past
    assert call.heard == ["Please enter the expiry.", "That date has passed."]
    errors = [c.params.get("ErrorType") for c in call.callbacks if "twilio/pay" in c.url]
    assert errors == ["invalid-card-number", None, "invalid-date"]


def test_too_many_failed_attempts_ends_the_payment(pay_app):
    call = phone_for(pay_app()).dial("pay")
    call.pay(card="1234")
    call.press("5555#")  # one step's keys, as the keypad sends them
    assert call.heard == ["Sorry, no payment (too-many-failed-attempts)."] and call.ended


def test_a_card_type_the_payment_does_not_take_is_refused(pay_app):
    call = phone_for(pay_app()).dial("pay")
    call.pay(card="378282246310005")  # amex: this payment takes visa and mastercard
    assert call.heard == ["Please enter your card number."]
    assert [c.params.get("ErrorType") for c in call.callbacks if "twilio/pay" in c.url] == ["invalid-card-type"]


def test_star_leaves_the_payment(pay_app):
    call = phone_for(pay_app()).dial("pay")
    call.pay(card=CARD, expiry="*")
    assert call.heard == ["Please enter the expiry.", "Back at the menu."]


def test_hanging_up_during_the_payment_reports_it_to_the_action(pay_app):
    call = phone_for(pay_app()).dial("pay")
    call.hangup()
    assert call.exchanges[-1].params["Result"] == "caller-hung-up" and call.ended


def test_card_data_is_nowhere_on_disk_in_the_journal_or_the_logs(pay_app, tmp_path, caplog):
    records, journal = tmp_path / "records", tmp_path / "e.sqlite3"
    app = pay_app({"IVR_RECORD_DIR": str(records), "IVR_EVENTS": f"sqlite:///{journal}"})
    caplog.set_level(logging.DEBUG)
    call = phone_for(app).dial("payments")
    call.press("123456")
    call.press("1")
    call.pay(card=CARD, expiry="1230", security_code="123", postal_code=ZIP)
    assert "Thank you. We took 42.50 dollars from your visa card ending 4242." in " ".join(call.heard)
    writer = services(app).events
    writer.flush()
    kinds = writer.database.query("SELECT kind, detail, input FROM events WHERE kind = 'pay'")
    assert kinds == [("pay", "success", None)]
    writer.close()
    written = [p.read_bytes() for p in (*records.iterdir(), journal) if p.is_file()]
    assert written and not any(CARD.encode() in b or ZIP.encode() in b for b in written)
    assert CARD not in caplog.text and ZIP not in caplog.text
    assert CARD not in json.dumps(services(app).store.get(call.sid))
    assert not any(CARD in json.dumps(e.params) for e in call.exchanges + call.callbacks)


# -- the terminal phone ----------------------------------------------------------------------------


def test_the_terminal_phone_never_echoes_what_is_keyed_for_a_payment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_FLOWS_DIR", str(ROOT / "flows"))
    monkeypatch.setenv("IVR_RECORD_DIR", str(tmp_path / "records"))
    script = f"123456 1 pay:{CARD}/1230/123/{ZIP}"
    result = CliRunner().invoke(cli, ["phone", "payments", "--keys", script])
    assert result.exit_code == 0, result.output
    assert "ending 4242" in result.output and "(payment details, hidden)" in result.output
    assert CARD not in result.output and ZIP not in result.output
    [recording] = (tmp_path / "records").iterdir()
    assert CARD not in recording.read_text() and ZIP not in recording.read_text()


def test_the_terminal_phone_hides_typed_payment_details(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_FLOWS_DIR", str(ROOT / "flows"))
    typed = f"123456\n1\n{CARD}\n1230\n123\n{ZIP}\n"
    result = CliRunner().invoke(cli, ["phone", "payments"], input=typed)
    assert result.exit_code == 0, result.output
    assert "Your confirmation code is ch_" in result.output
    assert CARD not in result.output and ZIP not in result.output and "\n1230" not in result.output


def test_the_documented_payment_renders_the_documented_twiml():
    import re
    from xml.etree import ElementTree

    text = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    section = text[text.index("## Payments: `pay`") :]
    flow, shown = re.search(r"```yaml\n(# flows/bill\.yaml\n.*?)```.*?```xml\n(.*?)\n```", section, re.S).groups()
    step = Engine(load_flow_text(flow, "bill.yaml", "bill")).start(new_session("bill"), {"CallSid": "CA1"}, NOW)
    answered = ElementTree.canonicalize(step.twiml.split("?>", 1)[1], strip_text=True)
    assert ElementTree.canonicalize(shown, strip_text=True) == answered


# -- the browser phone -----------------------------------------------------------------------------


def test_the_browser_phone_keys_a_payment_and_never_answers_it_back(pay_app):
    from ivr.web.browser import init_app

    app = pay_app({"IVR_PHONE": "1"})
    init_app(app)
    api = app.test_client()
    placed = api.post("/phone/calls", json={"flow": "pay"})
    assert placed.status_code == 201 and placed.json["waiting_for"] == "pay"
    call_id = placed.json["id"]
    wrong = api.post(f"/phone/calls/{call_id}", json={"action": "pay", "value": "4242424242424241"})
    assert [h["text"] for h in wrong.json["heard"]] == ["That card number was not valid."]
    paid = api.post(f"/phone/calls/{call_id}", json={"action": "pay", "value": f"{CARD}/1230/123/{ZIP}"})
    assert paid.status_code == 200 and paid.json["ended"]
    assert "Thank you. Card visa ending 4242" in paid.json["heard"][-1]["text"]
    everything = api.get(f"/phone/calls/{call_id}").get_data(as_text=True)
    assert CARD not in paid.get_data(as_text=True) + everything and ZIP not in everything


def test_the_terminal_phone_never_echoes_the_script_words_it_did_not_key():
    from click.testing import CliRunner

    from ivr.cli import cli

    result = CliRunner().invoke(
        cli, ["phone", "payments", "--keys", "123456 1 pay:4242424242424242/1230/123/94105 123# hello"]
    )
    assert "(the call ended before: (hidden) hello)" in result.output
    assert "4242424242424242" not in result.output and "123#" not in result.output


def test_check_knows_a_payments_save_as_sets_its_variable(tmp_path):
    """A template reading what `save_as` kept is not an unknown variable for `check`."""
    from ivr.cli.check import hooks_for
    from ivr.core.lint import run_checks

    (tmp_path / "bill.yaml").write_text(
        "start: take\nstates:\n  take:\n    pay: {amount: '5.00', save_as: payment}\n    routes: {success: paid}\n"
        "    next: bye\n  paid:\n    say: 'Your code is {{ payment.confirmation_code }}.'\n    hangup: true\n"
        "  bye:\n    hangup: true\n",
        encoding="utf-8",
    )
    report = run_checks([], flows_dir=tmp_path, hooks=hooks_for(None))
    assert [p.message for p in report.problems if "never set" in p.message] == []
