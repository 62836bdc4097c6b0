"""The example flows walked on the built-in phone, through the public test toolkit (ivr.testing)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import phone_on

from ivr.web.services import services

GOODBYE = "Thanks for calling Acme. Goodbye."
VOICEMAIL = "Please leave a message after the beep. Press the pound key when you are done."
HOURS = "We are open Monday to Friday, 9 AM to 5 PM Eastern time."
HOURS_MENU = "To hear this again, press 1. To return to the main menu, press 2. Or hang up at any time."


def test_welcome_and_menu_are_heard_and_the_call_waits_in_the_menu(phone):
    call = phone.dial("main", from_="+15551230000")
    assert call.heard[0] == "Thanks for calling Acme."
    assert call.heard[1].startswith("For sales, press 1")
    assert (call.flow, call.state, call.waiting_for) == ("main", "menu", "gather")
    assert not call.ended


def test_sales_busy_then_a_message_then_goodbye(phone):
    call = phone.dial("main")
    call.press("1")
    assert call.heard == ["Connecting you to sales."]
    assert (call.state, call.waiting_for) == ("sales", "dial")
    call.dial_result("busy")
    assert call.heard == [VOICEMAIL]
    assert call.waiting_for == "record"
    call.record(seconds=20)
    assert call.heard == ["Thank you, we got your 20 second message.", GOODBYE]
    assert call.ended and call.end_reason == "hangup"


def test_the_status_callback_closes_the_session_when_the_call_ends(phone, ivr_app):
    call = phone.dial("main")
    call.press("1")
    call.dial_result("completed")
    assert call.ended
    assert [c.params["CallStatus"] for c in call.callbacks] == ["completed"]
    assert services(ivr_app).store.get(call.sid)["status"] == "completed"


def test_speech_reaches_billing_through_the_support_menu(phone):
    call = phone.dial("main")
    call.say("support please")
    assert call.state == "support_menu"
    call.say("I have a question about my invoice")
    assert call.heard == ["Connecting you to billing."]
    assert call.state == "billing"


def test_silence_runs_out_the_retries(phone):
    call = phone.dial("main")
    call.wait()
    call.wait()
    assert call.heard == [
        "Sorry, I didn't hear anything.",
        "Press 1 for sales, 2 for support, 3 to leave a message, or 4 for opening hours.",
    ]
    call.wait()
    assert call.heard == [GOODBYE]
    assert call.ended


def test_wrong_keys_then_a_right_one(phone):
    call = phone.dial("main")
    call.press("8")
    call.press("8")
    assert call.heard[0] == "Sorry, that's not an option."
    call.press("3")
    assert call.heard == [VOICEMAIL]


def test_an_empty_recording_and_a_hang_up_while_recording(phone, ivr_app):
    call = phone.dial("main")
    call.press("3")
    call.record_nothing()
    assert call.heard == [GOODBYE]

    other = phone.dial("main")
    other.press("3")
    other.hangup(seconds=7)
    assert other.ended and other.end_reason == "caller-hangup"
    session = services(ivr_app).store.get(other.sid)
    assert session["recording"]["duration"] == 7
    assert session["state"] == "goodbye"


def test_the_hours_flow_and_back(phone):
    call = phone.dial("main")
    call.press("4")
    assert call.heard == [HOURS, HOURS_MENU]
    assert (call.flow, call.state) == ("hours", "again")
    call.press("1")
    assert call.heard == [HOURS, HOURS_MENU]
    call.press("2")
    assert (call.flow, call.state) == ("main", "menu")


def test_the_hours_flow_can_be_dialled_directly(phone):
    call = phone.dial("hours")
    assert call.heard == [HOURS, HOURS_MENU]


def test_a_technician_queue_that_the_caller_leaves_goes_to_voicemail(phone):
    call = phone.dial("main")
    call.press("2")
    call.press("2")
    assert call.waiting_for == "enqueue"
    call.queue_result("hangup")
    assert call.heard == [VOICEMAIL]


@pytest.mark.parametrize(
    ("when", "menu"),
    [
        (datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "menu"),
        (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), "after_hours_menu"),
    ],
)
def test_the_clock_picks_the_menu(make_app, when, menu):
    phone = phone_on(make_app(now=when))
    call = phone.dial("main")
    assert call.state == menu


def test_every_step_keeps_its_twiml(phone):
    call = phone.dial("main")
    call.press("1")
    assert len(call.documents) == 2
    assert "<Gather" in call.documents[0]
    assert "<Dial" in call.documents[1]
    assert [e.url for e in call.exchanges] == ["http://localhost/voice/main", "http://localhost/voice/main/menu"]
