"""Studio's Gather Input on Call: keys, speech and timeout, and the split on its digits folded into
one menu with routes. Studio's behaviour pinned from Twilio's widget library: the timeout
transition fires on the first silence (no retry), and a split's No Match is taken at once."""

from __future__ import annotations

import pytest
from studio_support import app_for, fixtures_for, import_fixture, strict_problems

GREETING = "For sales, press 1 or say sales. For support, press 2 or 0, or say support."


flows, ivr_app = fixtures_for("gather_menu")


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


def test_a_keys_only_gather_collects_digits_and_reads_them_back(tmp_path):
    from conftest import phone_on

    flows = tmp_path / "flows"
    text = import_fixture("gather_keys", flows).text
    assert 'gather: {input: dtmf, num_digits: 4, timeout: 10, finish_on_key: "*"}' in text
    assert strict_problems(flows) == []
    phone = phone_on(app_for(flows, tmp_path))
    call = phone.dial("gather_keys")
    assert call.heard == ["play: https://example.com/enter-account.mp3"]
    assert 'finishOnKey="*"' in call.documents[0] and 'numDigits="4"' in call.documents[0]
    call.press("1234")
    assert call.heard == ["You entered 1234."]
    assert call.ended
    call = phone.dial("gather_keys")
    call.wait()  # Studio's timeout transition is empty: the call ends at the first silence
    assert call.heard == [] and call.ended


@pytest.mark.parametrize(
    ("properties", "written"),
    [
        ({"finish_on_key": "*"}, 'finish_on_key: "*"'),
        ({"finish_on_key": ""}, 'finish_on_key: ""'),  # an empty finish key is none, not Twilio's #
        # "Stop gathering on keypress" off: every key is gathered until the timeout or the number of digits
        ({"finish_on_key": "#", "stop_gather": False}, 'finish_on_key: ""'),
        ({"finish_on_key": "#", "stop_gather": True}, None),
    ],
)
def test_the_finish_key_as_studio_sets_it(properties, written):
    from ivr.studio import convert, read_definition

    gather = {"name": "ask", "type": "gather-input-on-call", "properties": {"say": "Enter it.", **properties},
              "transitions": [{"event": "keypress", "next": "ok"}]}  # fmt: skip
    ok = {"name": "ok", "type": "say-play", "properties": {"say": "OK."}, "transitions": []}
    trigger = {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "ask"}]}
    text = convert(read_definition({"states": [trigger, gather, ok]}, "f.json"), "f").text
    if written is None:
        assert "finish_on_key" not in text
    else:
        assert written in text


def test_studios_voice_and_language_are_written_and_speech_is_heard_in_en_us():
    """Studio's message voice is Alice and its language en-US when none is chosen (Gather Input on Call
    page); speech is recognised in its gather language, en-US unless set, whatever the prompt's."""
    from ivr.studio import convert, read_definition

    trigger = {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "ask"}]}
    gather = {"name": "ask", "type": "gather-input-on-call", "properties": {"say": "Hola.", "language": "es-MX",
              "voice": "Polly.Mia"}, "transitions": [{"event": "speech", "next": "ok"}]}  # fmt: skip
    ok = {"name": "ok", "type": "say-play", "properties": {"say": "OK."}, "transitions": []}
    text = convert(read_definition({"states": [trigger, gather, ok]}, "f.json"), "f").text
    assert "say: {text: Hola., voice: Polly.Mia, language: es-MX}" in text
    assert "language: en-US" in text.split("gather:")[1].split("no_input")[0]
    assert "say: {text: OK., voice: alice, language: en-US}" in text
