"""Forms found while porting Twilio's voice tutorials into flows (tests/flows/tutorials), each through the phone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import phone_on, verb

from ivr.core.twiml import GOODBYE_TEXT

TUTORIALS = Path(__file__).resolve().parent / "flows" / "tutorials"
CHECK = Path(__file__).resolve().parent / "flows" / "check"


@pytest.fixture
def phone(make_app):
    return phone_on(make_app({"IVR_FLOWS_DIR": str(TUTORIALS)}))


def agent_call(phone):
    call = phone.dial("tutorials")
    call.press("2")
    return call


def test_a_say_with_an_empty_voice_uses_twilios_default_voice(phone):
    call = phone.dial("tutorials")
    first = call.documents[0]
    assert '<Say language="en-US" voice="Polly.Joanna">Thanks for calling' in first
    assert '<Say language="en-US">Calls may be recorded.</Say>' in first  # no voice attribute at all


@pytest.mark.parametrize("key", ["7", "#", "*"])
def test_a_screen_with_key_any_accepts_whatever_key_the_answering_party_presses(phone, key):
    call = agent_call(phone)
    call.dial_result("completed", screen=key)
    assert call.whisper == ["A customer is calling. Press any key to accept.", "Connecting you now."]
    assert call.heard == ["Goodbye."]  # accepted: connected, then the call completed


def test_a_screen_that_times_out_tells_the_answering_party_and_the_caller_goes_to_voicemail(phone):
    call = agent_call(phone)
    call.dial_result("completed", screen=None)
    assert call.whisper == [
        "A customer is calling. Press any key to accept.",
        "Nobody pressed a key; the caller goes to voicemail.",
    ]
    assert "<Hangup" in call.child_exchanges[-1].body
    assert call.heard == ["Nobody could take your call. Please leave a message after the beep."]


def test_on_max_hangup_ends_the_call_politely_on_the_first_silence_whatever_defaults_on_max_says(phone):
    call = phone.dial("tutorials")
    call.wait()
    assert call.heard == [GOODBYE_TEXT]
    assert call.ended


@pytest.mark.parametrize(
    ("name", "num_digits"), [("next_drops_one_key", None), ("next_keeps_one_key", "1")], ids=["warned", "kept"]
)
def test_a_catch_all_next_drops_the_one_key_default_unless_num_digits_keeps_it(make_app, tmp_path, name, num_digits):
    """`check` warns of the first (tests/test_check.py); through the phone, its Gather waits for the timeout."""
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(CHECK / f"{name}.yaml", flows / "menu.yaml")
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows)})).dial("menu")
    assert verb(call, "Gather").get("numDigits") == num_digits
    call.press("1")
    assert call.heard == ["Sales."]
