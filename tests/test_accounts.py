"""flows/accounts.yaml: hooks, collected input, ways out, opening hours, screened transfers, voicemail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import phone_on

from ivr.web.messages import MessageBox
from ivr.web.services import services

MENU = (
    "To hear your balance, press 1. To talk to someone, press 2. To leave a message, press 3. "
    "For the operator, press 0 at any time."
)
REPROMPT = "Press 1 for your balance, 2 to talk to someone, or 3 to leave a message."
VOICEMAIL = "Please leave a message after the beep, then hang up or press the pound key."
GOODBYE = "Thank you for calling Acme. Goodbye."
OPEN = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York


@pytest.fixture
def accounts(make_app):
    """A phone on the accounts line with the shipped hooks (flows/hooks.py), at a given time."""

    def at(now: datetime = OPEN, **config):
        app = make_app({"IVR_HOOK_TIMEOUT": "0.3", **config}, now=now)
        return app, phone_on(app)

    return at


def test_a_known_caller_is_greeted_by_name(accounts):
    _, phone = accounts()
    assert phone.dial("accounts", from_="+15551230000").heard == ["Welcome back to Acme, Ada.", MENU]


def test_an_unknown_caller_gets_the_plain_welcome(accounts):
    _, phone = accounts()
    assert phone.dial("accounts", from_="+15550001111").heard == ["Welcome to Acme account services.", MENU]


@pytest.mark.parametrize("trouble", ["slow", "raises"])
def test_a_caller_lookup_in_trouble_falls_back_to_the_plain_welcome(accounts, hooks, trouble):
    if trouble == "slow":
        hooks.slow("lookup_caller", 2.0, outcome="found")
    else:
        hooks.raises("lookup_caller", ConnectionError("CRM down"))
    _, phone = accounts()
    assert phone.dial("accounts", from_="+15551230000").heard == ["Welcome to Acme account services.", MENU]


def test_the_account_number_is_read_back_and_its_balance_told(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("1")
    call.press("123456")
    assert call.heard == ["You entered 1 2 3 4 5 6. If that is right, press 1. To enter it again, press 2."]
    call.press("1")
    assert call.heard == ["Please enter your four digit PIN."]  # the pin subflow, in the same document
    assert (call.flow, call.state) == ("pin", "ask")
    call.press("1234")
    assert call.heard == ["The balance of account 1 2 3 4 5 6 is 42.50 dollars.", MENU]
    assert (call.flow, call.state) == ("accounts", "menu")


def test_a_wrong_pin_twice_is_asked_again_and_three_times_says_goodbye(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    for keys in ("1", "123456", "1", "0000", "0000"):
        call.press(keys)
    assert call.heard == ["That PIN is not right.", "Please enter your four digit PIN."]
    call.press("0000")
    assert call.heard == ["Sorry, we could not check your PIN.", "Thank you for calling Acme. Goodbye."]
    assert call.ended


def test_zero_inside_the_pin_check_returns_to_the_accounts_operator(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    for keys in ("1", "123456", "1", "0"):
        call.press(keys)
    assert call.heard == ["Connecting you to the operator."]
    assert (call.flow, call.state) == ("accounts", "operator")


def test_the_pin_subflow_cannot_be_called_directly(accounts):
    _, phone = accounts()
    call = phone.dial("pin")
    assert call.heard == ["We're sorry, something went wrong on our side. Please call again later."]


def test_a_wrong_read_back_lets_the_caller_enter_it_again(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("1")
    call.press("123457")
    call.press("2")
    assert call.heard == ["Please enter your six digit account number."]


def test_too_few_digits_is_no_match_with_its_message(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("1")
    call.press("123#")
    assert call.heard == ["That was not six digits.", "Please enter your six digit account number."]


def test_an_unknown_account_is_said_and_asked_again(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("1")
    call.press("999999")
    call.press("1")
    assert call.heard == ["We could not find that account.", "Please enter your six digit account number."]


def test_a_balance_lookup_that_fails_goes_back_to_the_menu(accounts, hooks):
    hooks.raises("account_balance", TimeoutError("bank"))
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("1")
    call.press("123456")
    call.press("1")
    assert call.heard == ["We cannot look up balances right now.", MENU]


@pytest.mark.parametrize("where", ["menu", "account_number", "confirm_account"])
def test_zero_reaches_the_operator_from_any_menu(accounts, where):
    _, phone = accounts()
    call = phone.dial("accounts")
    if where != "menu":
        call.press("1")
    if where == "confirm_account":
        call.press("123456")
    call.press("0")
    assert call.heard == ["Connecting you to the operator."]


def test_star_repeats_and_nine_goes_back_from_a_nested_menu(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("1")
    call.press("123456")
    call.press("*")
    assert call.heard == ["You entered 1 2 3 4 5 6. If that is right, press 1. To enter it again, press 2."]
    call.press("9")
    assert call.heard == ["Please enter your six digit account number."]
    call.press("9")
    assert call.heard == [MENU]


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (datetime(2026, 11, 25, 15, 0, tzinfo=UTC), True),  # Wednesday 10:00 EST
        (datetime(2026, 11, 25, 23, 0, tzinfo=UTC), False),  # Wednesday 18:00 EST
        (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 12, 25, 15, 0, tzinfo=UTC), False),  # Christmas, a Friday: a holiday
        (datetime(2026, 12, 24, 16, 0, tzinfo=UTC), True),  # Christmas Eve 11:00: open until noon
        (datetime(2026, 12, 24, 18, 0, tzinfo=UTC), False),  # Christmas Eve 13:00
        (datetime(2026, 10, 30, 12, 59, tzinfo=UTC), False),  # Friday 08:59 EDT, before the change
        (datetime(2026, 10, 30, 13, 0, tzinfo=UTC), True),  # Friday 09:00 EDT
        (datetime(2026, 11, 2, 13, 59, tzinfo=UTC), False),  # Monday 08:59 EST, after the change
        (datetime(2026, 11, 2, 14, 0, tzinfo=UTC), True),  # Monday 09:00 EST
    ],
)
def test_opening_hours_decide_between_an_agent_and_voicemail(accounts, now, is_open):
    _, phone = accounts(now)
    call = phone.dial("accounts")
    call.press("2")
    if is_open:
        assert call.heard == ["Connecting you to an agent."]
    else:
        assert call.heard[0].startswith("Our office is open Monday to Friday")
        assert call.heard[1] == VOICEMAIL


def test_a_screened_transfer_whispers_to_the_agent_and_connects_on_1(accounts, app):
    _, phone = accounts()
    call = phone.dial("accounts", from_="+15551230000")
    call.press("2")
    call.dial_result("completed", duration=60, screen="1")
    assert call.whisper == ["Call from +15551230000 for Acme accounts. Press 1 to accept."]
    child = call.child_exchanges[0]
    assert child.params["ParentCallSid"] == call.sid and child.params["Direction"] == "outbound-dial"
    assert call.heard == [GOODBYE]  # the call was connected, then completed


@pytest.mark.parametrize("keys", [None, "7"], ids=["no-key", "wrong-key"])
def test_a_transfer_not_accepted_reaches_our_voicemail(accounts, keys):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("2")
    call.dial_result("completed", screen=keys)  # Twilio reports completed; the engine knows better
    assert call.heard == [VOICEMAIL]


def test_a_transfer_nobody_answers_reaches_voicemail(accounts):
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("2")
    call.dial_result("no-answer")
    assert call.child_exchanges == []
    assert call.heard == [VOICEMAIL]


def test_a_voicemail_is_stored_and_delivered_then_updated_with_its_transcription(accounts, hooks):
    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(dict(ctx.message)))
    app, phone = accounts()
    call = phone.dial("accounts", from_="+15551230000")
    call.press("3")
    call.record(seconds=14)
    assert call.heard == ["Thank you, we will call you back.", GOODBYE]
    assert len(delivered) == 1
    first = delivered[0]
    assert (first["from"], first["flow"], first["state"], first["duration"]) == (
        "+15551230000",
        "accounts",
        "voicemail",
        14,
    )
    assert first["url"].startswith("https://api.twilio.com/2010-04-01/Accounts/")
    assert first["transcription"] is None and first["update"] is False
    call.transcription("Hi, this is Ada, please call me back.")
    assert len(delivered) == 2
    assert delivered[1]["transcription"] == {"text": "Hi, this is Ada, please call me back.", "status": "completed"}
    assert delivered[1]["update"] is True
    [stored] = MessageBox(services(app).store).recent()
    assert stored["delivered"] is True
    assert [d["kind"] for d in stored["deliveries"]] == ["recording", "transcription"]


def test_a_retried_recording_callback_is_delivered_once(accounts, hooks):
    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(ctx.message["recording_sid"]))
    _, phone = accounts()
    call = phone.dial("accounts")
    call.press("3")
    call.record(seconds=5)
    recording = next(c for c in call.callbacks if "/twilio/recording" in c.url)
    call._callback(recording.url, recording.params)  # Twilio retries the callback
    assert len(delivered) == 1


def test_a_transcription_before_the_recording_callback_is_delivered_with_it(accounts, hooks, app):
    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(dict(ctx.message)))
    accounts_app, _phone = accounts()
    client = accounts_app.test_client()
    from conftest import BASE, sign

    params = {"AccountSid": "AC" + "0" * 32, "CallSid": "CA" + "3" * 32, "RecordingSid": "RE" + "3" * 32,
              "RecordingUrl": "https://api.twilio.com/r", "TranscriptionText": "Early words.",
              "TranscriptionStatus": "completed"}  # fmt: skip
    path = "/twilio/transcription?flow=accounts&state=voicemail"
    client.post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path, params)})
    assert delivered == []
    recording = {**params, "RecordingStatus": "completed", "RecordingDuration": "9"}
    path = "/twilio/recording?flow=accounts&state=voicemail"
    client.post(path, data=recording, headers={"X-Twilio-Signature": sign(BASE + path, recording)})
    assert [m["transcription"]["text"] for m in delivered] == ["Early words."]


def test_messages_lists_the_recent_voicemails(accounts, tmp_path, monkeypatch, capsys):
    from ivr.cli import main

    store = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    app, phone = accounts(IVR_STORE=store, IVR_ENV="development")
    call = phone.dial("accounts", from_="+15551230000")
    call.press("3")
    call.record(seconds=21)
    call.transcription("Please call back.")
    services(app).background.shutdown()  # in development the drainer stores callbacks in its own thread
    services(app).store.close()
    monkeypatch.setenv("IVR_STORE", store)
    monkeypatch.setenv("IVR_ENV", "production")
    assert main(["messages"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-25T15:00:00Z  +15551230000   accounts/voicemail   21 s  delivered" in out
    assert "Please call back." in out
