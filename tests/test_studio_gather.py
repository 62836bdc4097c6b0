"""Studio's Gather Input on Call: keys, speech and timeout, and the split on its digits folded into
one menu with routes. Studio's behaviour pinned from Twilio's widget library: the timeout
transition fires on the first silence (no retry), and a split's No Match is taken at once."""

from __future__ import annotations

import pytest
from studio_support import app_for, import_fixture, strict_problems

GREETING = "For sales, press 1 or say sales. For support, press 2 or 0, or say support."


@pytest.fixture
def flows(tmp_path):
    return tmp_path / "flows"


@pytest.fixture
def ivr_app(flows, tmp_path):
    import_fixture("gather_menu", flows)
    return app_for(flows, tmp_path)


def test_the_imported_menu_passes_check_strict(flows, phone):
    assert strict_problems(flows) == []


@pytest.mark.parametrize(
    ("keys", "heard"),
    [
        ("1", "Connecting you to sales."),
        ("2", "You said 2. Connecting you to support."),
        ("0", "You said 0. Connecting you to support."),  # matches any of "2, 0"
        ("7", "That is not an option. Goodbye."),  # No Match: no second chance
    ],
)
def test_each_key_leads_where_the_split_did(phone, keys, heard):
    call = phone.dial("gather_menu")
    assert call.heard == [GREETING]
    call.press(keys)
    assert call.heard == [heard]
    assert call.ended and call.end_reason == "hangup"


@pytest.mark.parametrize(
    ("speech", "heard"),
    [
        ("I want to buy, sales please", "Connecting you to sales."),
        ("SUPPORT", "You said SUPPORT. Connecting you to support."),
        ("billing", "That is not an option. Goodbye."),
    ],
)
def test_speech_goes_through_the_speech_split_ignoring_case(phone, speech, heard):
    call = phone.dial("gather_menu")
    call.say(speech, confidence=0.9)
    assert call.heard == [heard]
    assert call.ended


def test_one_silence_takes_the_timeout_transition_at_once(phone):
    call = phone.dial("gather_menu")
    call.wait()
    assert call.heard == ["We did not hear from you. Goodbye."]  # no retry, no "Sorry, I didn't hear anything."
    assert call.ended


def test_the_gather_asks_twilio_what_studio_asked(phone):
    document = phone.dial("gather_menu").documents[0]
    for attribute in ('numDigits="1"', 'input="dtmf speech"', 'hints="sales, support"', 'speechTimeout="auto"',
                      'speechModel="phone_call"', 'language="en-US"'):  # fmt: skip
        assert attribute in document
    assert "timeout=" not in document  # Studio's default 5 s is Twilio's


def test_the_key_split_is_routes_and_writes_no_state_of_its_own(flows):
    text = import_fixture("gather_menu", flows).text
    assert 'routes: {"1": sales, "2": support, "0": support}' in text
    assert "split_key_press" not in text
    assert "split_speech_result:" in text
