"""Whole calls through flows/main.yaml and flows/hours.yaml, as Twilio would make them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import phone_on, verb

from ivr.testing import last_document
from ivr.web.services import services

PROMPT = (
    "For sales, press 1 or say sales. For support, press 2 or say support. "
    "To leave a message, press 3. For our opening hours, press 4."
)
REPROMPT = "Press 1 for sales, 2 for support, 3 to leave a message, or 4 for opening hours."
GOODBYE = "Thanks for calling Acme. Goodbye."
VOICEMAIL = "Please leave a message after the beep. Press the pound key when you are done."
SUPPORT = "For billing, press 1 or say billing. For technical support, press 2. To go back, press 9."


def session(app, call) -> dict:
    return services(app).store.get(call.sid)


def test_a_call_hears_the_welcome_and_the_menu_in_one_document(phone):
    call = phone.dial("main")
    assert call.heard == ["Thanks for calling Acme.", PROMPT]
    gather = verb(call, "Gather")
    assert gather.get("action") == "/voice/main/menu"
    assert gather.get("numDigits") == "1"
    assert gather.get("input") == "dtmf speech"
    assert gather.get("hints") == "sales, buy, pricing, support, help, technical"
    # Twilio falls through a Gather that got nothing: the document says where to go next.
    assert list(last_document(call))[-1].tag == "Redirect"
    assert list(last_document(call))[-1].text == "/voice/main/menu?event=no_input"


def test_press_1_connects_to_sales(phone):
    call = phone.dial("main")
    call.press("1")
    assert call.heard == ["Connecting you to sales."]
    dial_verb = verb(call, "Dial")
    assert dial_verb.get("action") == "/voice/main/sales"
    assert dial_verb.get("timeout") == "20"
    assert [n.text for n in dial_verb.iter("Number")] == ["+15005550006"]


def test_a_completed_sales_call_says_goodbye_and_hangs_up(phone):
    call = phone.dial("main")
    call.press("1")
    call.dial_result("completed", duration=95)
    assert call.heard == [GOODBYE]
    assert call.end_reason == "hangup"


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_sales_not_answering_falls_back_to_voicemail(phone, status):
    call = phone.dial("main")
    call.press("1")
    call.dial_result(status)
    assert call.heard == [VOICEMAIL]
    record = verb(call, "Record")
    assert record.get("maxLength") == "120"
    assert record.get("finishOnKey") == "#"
    assert list(last_document(call))[-1].text == "/voice/main/voicemail?event=no_recording"


def test_press_2_then_1_rings_billing_on_two_phones_with_our_number_as_caller_id(phone):
    call = phone.dial("main", to="+15559870000")
    call.press("2")
    assert call.heard == [SUPPORT]
    call.press("1")
    dial_verb = verb(call, "Dial")
    assert [n.text for n in dial_verb.iter("Number")] == ["+15005550006", "+15005550007"]
    assert dial_verb.get("callerId") == "+15559870000"


def test_press_2_then_2_queues_for_a_technician(phone):
    call = phone.dial("main")
    call.press("2")
    call.press("2")
    assert call.heard == ["Please hold for the next technician."]
    assert verb(call, "Enqueue").text == "support"
    call.queue_result("hangup", wait_seconds=40)
    assert call.heard == [VOICEMAIL]


def test_press_3_leaves_a_message_and_hears_its_length(phone, app):
    call = phone.dial("main")
    call.press("3")
    assert call.heard == [VOICEMAIL]
    call.record(seconds=12)
    assert call.heard == ["Thank you, we got your 12 second message.", GOODBYE]
    assert call.end_reason == "hangup"
    stored = session(app, call)
    assert stored["recording"]["duration"] == 12
    assert stored["vars"]["message_seconds"] == 12  # a plain number is stored as a number


def test_an_empty_recording_says_goodbye(phone):
    call = phone.dial("main")
    call.press("3")
    call.record_nothing()
    assert call.heard == [GOODBYE]
    assert call.end_reason == "hangup"


def test_hanging_up_during_the_recording_still_takes_its_route(phone, app):
    call = phone.dial("main")
    call.press("3")
    call.hangup(seconds=9)
    assert call.exchanges[-1].status == 200
    stored = session(app, call)
    assert stored["recording"]["digits"] == "hangup"
    assert stored["vars"]["message_seconds"] == 9
    assert stored["state"] == "goodbye"


def test_press_4_hands_the_call_to_the_hours_flow_and_9_returns(phone):
    call = phone.dial("main")
    call.press("4")
    # The redirect into flows/hours.yaml is followed, as Twilio does.
    assert call.heard == [
        "We are open Monday to Friday, 9 AM to 5 PM Eastern time.",
        "To hear this again, press 1. To return to the main menu, press 2. Or hang up at any time.",
    ]
    assert verb(call, "Gather").get("action") == "/voice/hours/again"
    call.press("2")
    assert call.heard == [PROMPT]
    assert verb(call, "Gather").get("action") == "/voice/main/menu"


def test_silence_three_times_goes_to_goodbye(phone):
    call = phone.dial("main")
    call.wait()
    assert call.heard == ["Sorry, I didn't hear anything.", REPROMPT]
    call.wait()
    assert call.heard == ["Sorry, I didn't hear anything.", REPROMPT]
    call.wait()
    assert call.heard == [GOODBYE]
    assert call.end_reason == "hangup"


def test_wrong_keys_three_times_goes_to_goodbye(phone):
    call = phone.dial("main")
    call.press("7")
    assert call.heard == ["Sorry, that's not an option.", REPROMPT]
    call.press("8")
    assert call.heard == ["Sorry, that's not an option.", REPROMPT]
    call.press("0")
    assert call.heard == [GOODBYE]


def test_no_input_and_no_match_are_counted_apart(phone):
    call = phone.dial("main")
    call.wait()
    call.press("7")
    call.wait()
    call.press("7")
    # two of each: still in the menu
    assert call.heard == ["Sorry, that's not an option.", REPROMPT]
    call.press("1")
    assert call.heard == ["Connecting you to sales."]


def test_the_retry_message_plays_inside_the_gather_so_a_key_interrupts_it(phone):
    call = phone.dial("main")
    call.wait()
    gather = verb(call, "Gather")
    assert [say.text for say in gather.iter("Say")] == ["Sorry, I didn't hear anything.", REPROMPT]


def test_going_back_to_a_menu_starts_its_retries_over(phone):
    call = phone.dial("main")
    call.wait()
    call.wait()
    call.press("2")  # support menu
    call.press("9")  # back to the main menu: its counters start over
    assert call.heard == [PROMPT]
    call.wait()
    call.wait()
    assert call.heard == ["Sorry, I didn't hear anything.", REPROMPT]
    call.wait()
    assert call.heard == [GOODBYE]


def test_a_menu_without_its_own_handlers_uses_the_defaults_and_the_state_on_max(phone):
    call = phone.dial("main")
    call.press("2")
    call.wait()
    assert call.heard == ["Sorry, I didn't hear anything.", SUPPORT]
    call.wait()
    call.wait()
    assert call.heard == [GOODBYE]


@pytest.mark.parametrize(
    ("speech", "heard"),
    [
        ("sales", "Connecting you to sales."),
        ("Sales, please!", "Connecting you to sales."),
        ("I'd like to talk about PRICING", "Connecting you to sales."),
        ("support", SUPPORT),
        ("I need some help", SUPPORT),
        ("one", "Connecting you to sales."),
        ("3", VOICEMAIL),
    ],
)
def test_speech_reaches_the_same_places_as_keys(phone, speech, heard):
    call = phone.dial("main")
    call.say(speech)
    assert call.heard[0] == heard


def test_speech_matches_whole_words_only(phone):
    call = phone.dial("main")
    call.say("wholesales")  # contains "sales" but not as a word
    assert call.heard == ["Sorry, that's not an option.", REPROMPT]


def test_the_first_declared_route_wins_when_speech_names_two(phone):
    call = phone.dial("main")
    call.say("support or sales")  # sales is declared first in the menu
    assert call.heard == ["Connecting you to sales."]


def test_billing_by_voice_in_the_support_menu(phone):
    call = phone.dial("main")
    call.press("2")
    call.say("I want to pay an invoice please")
    assert call.heard == ["Connecting you to billing."]


def test_caller_input_is_remembered_for_templates(phone, app):
    call = phone.dial("main")
    call.say("I want billing please", confidence=0.0)
    stored = session(app, call)
    assert stored["input"] == {"digits": "", "speech": "I want billing please", "confidence": 0.0}


@pytest.mark.parametrize(
    ("when", "first_prompt"),
    [
        (datetime(2026, 11, 25, 15, 0, tzinfo=UTC), PROMPT),  # Wednesday 10:00 in New York
        (datetime(2026, 11, 26, 1, 0, tzinfo=UTC), "Our office is closed right now."),  # Wednesday 20:00
        (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), "Our office is closed right now."),  # Saturday 10:00
    ],
)
def test_the_time_of_day_chooses_the_menu(make_app, when, first_prompt):
    app = make_app(now=when)
    call = phone_on(app).dial("main")
    assert call.heard[1].startswith(first_prompt)


def test_after_hours_a_caller_can_still_leave_a_message(make_app):
    app = make_app(now=datetime(2026, 11, 26, 1, 0, tzinfo=UTC))
    call = phone_on(app).dial("main")
    call.press("1")
    assert call.heard == [VOICEMAIL]


def test_the_session_follows_the_call_and_status_callbacks_close_it(phone, app):
    call = phone.dial("main")
    call.press("2")
    assert session(app, call)["state"] == "support_menu"
    call.hangup()
    stored = session(app, call)
    assert stored["status"] == "completed"
    assert stored["ended"] is True
