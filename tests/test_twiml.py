"""ivr.core.twiml: states to TwiML through the twilio builders; complete documents, static chains cached."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from conftest import FLOWS, TEST_FLOWS, check_twiml

from ivr.core.flow import GOODBYE
from ivr.core.loader import load_flow_text
from ivr.core.twiml import CALLBACK_OVERRIDES, GOODBYE_TEXT, Renderer, Urls, apology_document, empty_document

LINE = TEST_FLOWS / "twiml" / "line.yaml"
MAIN = FLOWS / "main.yaml"
PUBLIC = "https://ivr.example.com/acme"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(load_flow_text(LINE.read_text(encoding="utf-8"), str(LINE), "line"), Urls())


def serialise(renderer: Renderer, *segments: tuple[str, str], context=None) -> ElementTree.Element:
    """The document of a chain of (state, variant) segments, checked against the schema, parsed."""
    rendered = [
        None if renderer.is_static(name) else renderer.verbs(name, variant, context) for name, variant in segments
    ]
    body = renderer.document(list(segments), rendered)
    check_twiml(body)
    return ElementTree.fromstring(body)


def tags(root: ElementTree.Element) -> list[str]:
    return [verb.tag for verb in root]


@pytest.mark.parametrize(
    ("public", "call", "url"),
    [
        (None, ("entry", "main"), "/voice/main"),
        (None, ("entry", "main", "menu"), "/voice/main?state=menu"),
        (None, ("action", "main", "menu"), "/voice/main/menu"),
        (None, ("action", "main", "menu", "no_input"), "/voice/main/menu?event=no_input"),
        (
            None,
            ("callback", "recording", "main", "voicemail"),
            "/twilio/recording?flow=main&state=voicemail" + CALLBACK_OVERRIDES,
        ),
        (PUBLIC, ("entry", "main"), f"{PUBLIC}/voice/main"),
        (PUBLIC + "/", ("action", "main", "menu", "no_input"), f"{PUBLIC}/voice/main/menu?event=no_input"),
        (
            PUBLIC,
            ("callback", "transcription", "main", "vm"),
            f"{PUBLIC}/twilio/transcription?flow=main&state=vm" + CALLBACK_OVERRIDES,
        ),
    ],
)
def test_urls_are_root_relative_or_carry_the_public_url_and_its_prefix(public, call, url):
    name, *args = call
    assert getattr(Urls(public), name)(*args) == url


def test_a_gather_is_followed_by_the_redirect_to_its_no_input_event(renderer):
    root = serialise(renderer, ("menu", "enter"))
    assert tags(root) == ["Gather", "Redirect"]
    gather, redirect = root
    assert (gather.get("action"), gather.get("method"), gather.get("timeout")) == ("/voice/line/menu", "POST", "4")
    assert gather.get("numDigits") == "1"  # one-key routes and nowhere else to go
    assert [say.text for say in gather] == ["For messages press 1, for a person press 2."]
    assert (redirect.text, redirect.get("method")) == ("/voice/line/menu?event=no_input", "POST")


@pytest.mark.parametrize(
    ("variant", "said"),
    [
        ("no_input", ["I did not hear you.", "Press 1 or 2."]),
        ("no_match", ["That is not an option.", "Press 1 or 2."]),
        ("repeat", ["For messages press 1, for a person press 2."]),
    ],
)
def test_a_retry_plays_its_message_then_the_reprompt_inside_the_gather(renderer, variant, said):
    root = serialise(renderer, ("menu", variant))
    assert tags(root) == ["Gather", "Redirect"]
    assert [say.text for say in root.find("Gather")] == said
    assert {say.get("voice") for say in root.iter("Say")} == {"Polly.Amy"}  # the flow's defaults


def test_a_record_is_followed_by_the_redirect_to_its_no_recording_event(renderer):
    root = serialise(renderer, ("message", "enter"))
    assert tags(root) == ["Say", "Record", "Redirect"]
    record = root.find("Record")
    assert (record.get("action"), record.get("maxLength"), record.get("finishOnKey")) == (
        "/voice/line/message",
        "60",
        "#",
    )
    assert record.get("recordingStatusCallback") == "/twilio/recording?flow=line&state=message" + CALLBACK_OVERRIDES
    assert root[-1].text == "/voice/line/message?event=no_recording"


def test_an_input_less_chain_is_one_document_up_to_the_state_that_waits(renderer):
    root = serialise(renderer, ("welcome", "enter"), ("notice", "enter"), ("menu", "enter"))
    assert tags(root) == ["Say", "Say", "Pause", "Gather", "Redirect"]
    assert [say.text for say in root.iter("Say")][:2] == ["Welcome.", "Calls are recorded."]


def test_a_static_chain_is_serialised_once(renderer):
    chain = [("welcome", "enter"), ("notice", "enter"), ("menu", "enter")]
    first = renderer.document(chain, [None, None, None])
    assert renderer.document(list(chain), [None, None, None]) is first  # the cached string itself
    assert renderer.document(chain[1:], [None, None]) != first  # another chain, another document


def test_prepare_serialises_every_static_document_a_call_can_get_before_any_call():
    flow = load_flow_text(MAIN.read_text(encoding="utf-8"), str(MAIN), "main")
    fresh = Renderer(flow, Urls())
    built = fresh.prepare()
    assert built == len(fresh._documents) > 0
    documents = set(fresh._documents)
    # The entry, on both branches of its `when:`, and every variant of a menu; all of them, byte for byte.
    for chain in [
        (("welcome", "enter"), ("office_hours", "enter"), ("menu", "enter")),
        (("welcome", "enter"), ("office_hours", "enter"), ("after_hours_menu", "enter")),
        *((("menu", variant),) for variant in ("enter", "repeat", "no_input", "no_match")),
    ]:
        assert chain in documents
        cold = Renderer(flow, Urls()).document(list(chain), [None] * len(chain))
        assert fresh._documents[chain] == cold
    templated = {name for name in flow.states if not fresh.is_static(name)}
    assert templated and not any(name in templated for chain in documents for name, _ in chain)
    assert fresh.prepare() == 0  # nothing left to build


def test_prepare_builds_every_states_entered_document_of_a_big_flow():
    from ivr.testing import generated_survey

    flow = load_flow_text(generated_survey(3000), "survey.yaml", "survey")
    fresh = Renderer(flow, Urls())
    fresh.prepare()
    entered = {chain[0][0] for chain in fresh._documents if chain[0][1] == "enter"}
    static = {name for name in flow.states if fresh.is_static(name)}
    assert len(flow.states) == 3000 > 2000 and static <= entered


def test_prepare_stops_at_its_budget_having_built_the_entered_documents_first():
    flow = load_flow_text(MAIN.read_text(encoding="utf-8"), str(MAIN), "main")
    fresh = Renderer(flow, Urls())
    assert fresh.prepare(budget=5) == 5 == len(fresh._documents)
    assert all(variant == "enter" for chain in fresh._documents for _, variant in chain)


def test_a_templated_state_is_rendered_per_call_and_never_cached(renderer):
    assert renderer.is_static("menu") and not renderer.is_static("echo")
    context = {"input": {"speech": "hello"}}
    chain = [("echo", "enter")]
    first = renderer.document(chain, [renderer.verbs("echo", "enter", lambda: context)])
    again = renderer.document(chain, [renderer.verbs("echo", "enter", lambda: context)])
    assert first == again and first is not again


@pytest.mark.parametrize(
    ("speech", "said"),
    [
        ("</Say><Dial>+15550001111</Dial>", "You said </Say><Dial>+15550001111</Dial>"),
        ("{{7*7}}", "You said {{7*7}}"),
        ("fish & chips <3", "You said fish & chips <3"),
        ("bell\x07 and\x00 null", "You said bell and null"),  # characters XML 1.0 cannot hold are dropped
        ("lone\ud800 surrogate\udfff", "You said lone surrogate"),
    ],
    ids=["markup", "template", "ampersand", "control-characters", "lone-surrogates"],
)
def test_caller_input_is_xml_text_in_the_document(renderer, speech, said):
    root = serialise(renderer, ("echo", "enter"), context=lambda: {"input": {"speech": speech}})
    assert tags(root) == ["Say", "Hangup"]
    assert root.find("Say").text == said


def test_a_dial_has_its_action_timeout_and_numbers_and_nothing_after_it(renderer):
    root = serialise(renderer, ("person", "enter"))
    assert tags(root) == ["Dial"]  # Twilio requests the action when the dial ends
    dial = root.find("Dial")
    assert (dial.get("action"), dial.get("timeout")) == ("/voice/line/person", "15")
    assert [number.text for number in dial] == ["+15005550006"]


def test_the_built_in_goodbye_uses_the_flows_voice_and_hangs_up(renderer):
    root = serialise(renderer, (GOODBYE, "enter"))
    assert tags(root) == ["Say", "Hangup"]
    assert (root[0].text, root[0].get("voice"), root[0].get("language")) == (GOODBYE_TEXT, "Polly.Amy", "en-GB")


@pytest.mark.parametrize(("voice", "language"), [(None, None), ("Polly.Joanna", "en-US")])
def test_the_apology_document_says_sorry_and_hangs_up(voice, language):
    body = apology_document(voice, language)
    check_twiml(body)
    root = ElementTree.fromstring(body)
    assert tags(root) == ["Say", "Hangup"]
    assert root[0].text == "We're sorry, something went wrong. Please call again later. Goodbye."
    assert (root[0].get("voice"), root[0].get("language")) == (voice, language)


@pytest.mark.parametrize(("accepted", "verbs"), [(True, []), (False, ["Hangup"])])
def test_a_screened_leg_is_connected_by_an_empty_document_or_hung_up(accepted, verbs):
    body = Renderer.screened_document(accepted)
    check_twiml(body)
    assert tags(ElementTree.fromstring(body)) == verbs


def test_callbacks_are_answered_with_an_empty_response():
    body = empty_document()
    check_twiml(body)
    assert tags(ElementTree.fromstring(body)) == []


def test_a_redirect_document_enters_the_other_flows_state(renderer):
    body = renderer.redirect_document("main", "menu")
    check_twiml(body)
    [redirect] = ElementTree.fromstring(body)
    assert (redirect.tag, redirect.text, redirect.get("method")) == ("Redirect", "/voice/main?state=menu", "POST")
