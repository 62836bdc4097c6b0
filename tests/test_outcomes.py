"""ivr.core.outcomes: what Twilio reports for a waiting verb, read into the outcome the machine fires."""

from __future__ import annotations

import pytest
from conftest import TEST_FLOWS

from ivr.core.engine import new_session
from ivr.core.loader import load_flow_text
from ivr.core.outcomes import read_outcome, speech_table
from ivr.errors import WebhookError

LINE = TEST_FLOWS / "outcomes" / "line.yaml"


@pytest.fixture(scope="module")
def flow():
    return load_flow_text(LINE.read_text(encoding="utf-8"), str(LINE), "line")


def read(flow, state: str, params: dict, event: str | None = None, session: dict | None = None) -> str:
    """The outcome `params` report for `state`, as the engine reads it."""
    s = flow.states[state]
    return read_outcome(s, params, event, new_session("line") if session is None else session, speech_table(s))


@pytest.mark.parametrize(
    ("params", "outcome"),
    [
        ({"Digits": "1"}, "1"),
        ({"Digits": "12"}, "12"),
        ({"Digits": "7"}, "no_match"),
        ({"Digits": "", "SpeechResult": ""}, "no_input"),
        ({}, "no_input"),
        ({"Digits": "1", "SpeechResult": "support"}, "1"),  # keys win over speech
        ({"SpeechResult": "sales"}, "1"),
        ({"SpeechResult": "I'm buying, please!"}, "1"),
        ({"SpeechResult": "SUPPORT"}, "support"),
        ({"SpeechResult": "I need help"}, "support"),
        ({"SpeechResult": "one"}, "1"),
        ({"SpeechResult": "1 2"}, "12"),
        ({"SpeechResult": "12"}, "12"),
        ({"SpeechResult": "twelve please 12"}, "no_match"),  # spoken digits must be all there is
        ({"SpeechResult": "wholesales"}, "no_match"),  # whole words only
        ({"SpeechResult": "help me with sales"}, "1"),  # the first declared route wins
    ],
)
def test_a_gather_reads_digits_before_speech_and_speech_by_whole_words(flow, params, outcome):
    assert read(flow, "menu", params) == outcome


def test_a_gather_keeps_what_the_caller_gave_for_templates(flow):
    session = new_session("line")
    read(flow, "menu", {"SpeechResult": "sales", "Confidence": "0.87"}, session=session)
    assert session["input"] == {"digits": "", "speech": "sales", "confidence": 0.87}


@pytest.mark.parametrize(
    ("state", "confidence", "outcome"),
    [
        ("picky", "0.2", "no_match"),
        ("picky", "0.9", "1"),
        ("picky", None, "no_match"),  # no confidence counts as none
        ("picky_next", "0.2", "next"),  # unmatched input takes next where the state has one
    ],
)
def test_speech_below_min_confidence_is_unmatched(flow, state, confidence, outcome):
    params = {"SpeechResult": "sales"} | ({"Confidence": confidence} if confidence else {})
    assert read(flow, state, params) == outcome


@pytest.mark.parametrize(
    ("params", "outcome", "kept"),
    [
        ({"Digits": "123456"}, "valid", "123456"),
        ({"Digits": "12345"}, "no_match", None),
        ({"SpeechResult": "1 2 3 4 5 6"}, "valid", "123456"),
        ({"SpeechResult": "my account"}, "no_match", None),
    ],
)
def test_collected_input_is_kept_when_it_has_the_length_asked_for(flow, params, outcome, kept):
    session = new_session("line")
    assert read(flow, "account", params, session=session) == outcome
    assert session["vars"].get("account") == kept


def test_a_recording_is_read_with_its_details(flow):
    session = new_session("line")
    params = {
        "RecordingUrl": "https://api.twilio.com/r/RE1",
        "RecordingSid": "RE1",
        "RecordingDuration": "14",
        "Digits": "#",
    }
    assert read(flow, "message", params, session=session) == "recorded"
    assert session["recording"] == {"url": "https://api.twilio.com/r/RE1", "sid": "RE1", "duration": 14, "digits": "#"}


@pytest.mark.parametrize(
    ("state", "params", "event", "outcome"),
    [
        ("message", {}, None, "no_recording"),
        ("message", {}, "no_recording", "no_recording"),
        ("menu", {}, "no_input", "no_input"),
    ],
)
def test_the_redirect_after_a_waiting_verb_is_its_own_event(flow, state, params, event, outcome):
    assert read(flow, state, params, event) == outcome


@pytest.mark.parametrize(
    ("state", "event", "message"),
    [
        ("menu", "no_recording", "event 'no_recording' does not fit state 'menu'"),
        ("message", "no_input", "event 'no_input' does not fit state 'message'"),
        ("person", "no_input", "event 'no_input' does not fit state 'person'"),
        ("sales", None, "state 'sales' waits for nothing; it takes no results"),
    ],
)
def test_a_result_that_does_not_fit_the_state_is_a_webhook_error(flow, state, event, message):
    with pytest.raises(WebhookError, match=f"^{message}$"):
        read(flow, state, {"Digits": "1"}, event)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("completed", "completed"),
        ("answered", "failed"),  # only a dial to a conference reports answered
        ("busy", "busy"),
        ("no-answer", "no-answer"),
        ("failed", "failed"),
        ("canceled", "canceled"),
        ("ringing", "failed"),  # anything else Twilio could send is a failure
        ("", "failed"),
    ],
)
def test_a_dial_reads_its_dial_call_status(flow, status, outcome):
    session = new_session("line")
    params = {"DialCallStatus": status, "DialCallSid": "CA9", "DialCallDuration": "61"}
    assert read(flow, "person", params, session=session) == outcome
    assert session["dial"] == {"status": status, "sid": "CA9", "duration": 61}


def test_a_dial_to_a_conference_reads_answered():
    text = "start: room\nstates:\n  room: {dial: {conference: standup}, next: bye}\n  bye: {hangup: true}\n"
    conference = load_flow_text(text, "c.yaml", "c")
    assert read(conference, "room", {"DialCallStatus": "answered"}) == "answered"


@pytest.mark.parametrize(
    ("screened", "status", "outcome"),
    [
        ("accepted", "completed", "completed"),
        (None, "completed", "declined"),  # nobody pressed the key: a voicemail box, perhaps
        ("declined", "answered", "declined"),
        (None, "busy", "busy"),  # not answered: what Twilio says
    ],
)
def test_a_screened_dial_is_declined_unless_the_answering_party_accepted(flow, screened, status, outcome):
    session = new_session("line")
    if screened is not None:
        session["screens"] = {"screened": screened}
    assert read(flow, "screened", {"DialCallStatus": status}, session=session) == outcome
    assert "screened" not in session.get("screens", {})  # read once


@pytest.mark.parametrize(
    ("result", "outcome"),
    [("bridged", "bridged"), ("hangup", "hangup"), ("queue-full", "queue-full"), ("nonsense", "error")],
)
def test_an_enqueue_reads_its_queue_result(flow, result, outcome):
    session = new_session("line")
    assert read(flow, "hold", {"QueueResult": result, "QueueTime": "40"}, session=session) == outcome
    assert session["queue"] == {"result": result, "time": 40}


def test_the_speech_table_lists_phrases_in_declared_order_padded_for_whole_words(flow):
    assert speech_table(flow.states["menu"]) == (
        (" sales ", "1"),
        (" buying ", "1"),
        (" support ", "support"),
        (" help ", "support"),
    )
