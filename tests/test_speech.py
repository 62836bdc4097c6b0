"""Pinned speech recognition, actionOnEmptyResult and barge-in: what the loader refuses, the TwiML each
choice gives, the retries an empty result counts, and what the built-in phone lets a caller hear."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest
from conftest import check_twiml, phone_on

from ivr.core.loader import load_flow_text
from ivr.core.outcomes import read_outcome, speech_table
from ivr.core.speech import MODELS, PINNED, Speech, resolve, speech_attrs
from ivr.core.twiml import Renderer, Urls
from ivr.errors import FlowLoadError
from ivr.web.services import services

MENU = """\
defaults: {{voice: Polly.Joanna, language: en-US{defaults}}}
start: menu
states:
  menu:
{prompts}
    gather: {gather}
    routes: {{"1": sales, sales: sales}}
    no_input: {{say: Still there?, max: 3}}
    on_max: bye
  sales:
    say: Sales.
    hangup: true
  bye:
    say: Bye.
    hangup: true
"""
SAY = "    say: For sales, press 1 or say sales."
LEGAL = """\
    prompts:
      - say: Calls are recorded.
        barge_in: false
      - say: For sales, press 1 or say sales."""
VOICE = 'language="en-US" voice="Polly.Joanna"'
REDIRECT = '<Redirect method="POST">/voice/t/menu?event=no_input</Redirect>'


def menu(gather: str = "{}", defaults: str = "", prompts: str = SAY) -> str:
    return MENU.format(gather=gather, defaults=defaults, prompts=prompts)


def load(text: str):
    return load_flow_text(text, "flows/t.yaml", "t")


def document(text: str, variant: str = "enter") -> str:
    """The menu's document in `variant`, checked against Twilio's schema; without the XML declaration."""
    body = Renderer(load(text), Urls()).document([("menu", variant)], [None])
    check_twiml(body.encode())
    return body.split("?>", 1)[1]


def errors(text: str) -> list[str]:
    with pytest.raises(FlowLoadError) as info:
        load(text)
    return [str(e) for e in info.value.errors]


def gather_attrs(text: str, variant: str = "enter") -> dict:
    return dict(ElementTree.fromstring(document(text, variant)).find("Gather").attrib)


# -- pinned speech recognition -------------------------------------------------------------------


def test_a_speech_gather_names_the_pinned_model_and_profanity_filter():
    assert document(menu()) == (
        '<Response><Gather action="/voice/t/menu" hints="sales" input="dtmf speech" language="en-US" method="POST"'
        ' numDigits="1" profanityFilter="true" speechModel="googlev2_telephony">'
        f"<Say {VOICE}>For sales, press 1 or say sales.</Say></Gather>{REDIRECT}</Response>"
    )


def test_a_keys_only_gather_carries_no_speech_attributes():
    attrs = gather_attrs(menu("{input: dtmf}").replace(", sales: sales", ""))
    assert not {"speechModel", "profanityFilter", "enhanced", "bargeIn"} & set(attrs)


@pytest.mark.parametrize(
    ("gather", "defaults", "expected"),
    [
        ("{}", ", speech: {model: deepgram_nova-3, profanity_filter: false}", ("deepgram_nova-3", "false", None)),
        ("{speech_model: phone_call}", "", ("phone_call", "true", "false")),
        ("{speech: {model: phone_call, enhanced: true}}", "", ("phone_call", "true", "true")),
        (
            "{speech: {profanity_filter: false}}",
            ", speech: {model: phone_call, enhanced: true}",
            ("phone_call", "false", "true"),
        ),
        ("{speech: {model: googlev2_short}}", ", speech: {profanity_filter: false}", ("googlev2_short", "false", None)),
    ],
)
def test_the_gathers_settings_refine_the_flows_which_refine_the_pinned_ones(gather, defaults, expected):
    attrs = gather_attrs(menu(gather, defaults))
    assert (attrs["speechModel"], attrs["profanityFilter"], attrs.get("enhanced")) == expected


def test_resolve_takes_each_field_from_the_last_layer_that_says_it():
    assert resolve() == PINNED
    assert resolve(Speech(model="phone_call", enhanced=True), Speech(profanity_filter=False)) == Speech(
        "phone_call", True, False
    )
    assert speech_attrs(Speech("googlev2_long", True, True))["enhanced"] is None  # only phone_call knows it
    assert PINNED.model in MODELS


@pytest.mark.parametrize(
    ("gather", "defaults", "message"),
    [
        (
            "{speech_model: phone_cal}",
            "",
            "flows/t.yaml:6:28: error: states.menu.gather.speech_model: unknown speech model 'phone_cal'"
            " (did you mean 'phone_call'?)",
        ),
        (
            "{speech: {model: deepgram_nova3}}",
            "",
            "flows/t.yaml:6:30: error: states.menu.gather.speech.model: unknown speech model 'deepgram_nova3'"
            " (did you mean 'deepgram_nova-3'?)",
        ),
        (
            "{speech: {enhanced: true}}",
            "",
            "flows/t.yaml:6:23: error: states.menu.gather.speech.enhanced: enhanced: true (set here) works only"
            " with model phone_call, not googlev2_telephony",
        ),
        (
            "{speech: {model: deepgram_nova-2}}",
            ", speech: {model: phone_call, enhanced: true}",
            "flows/t.yaml:6:23: error: states.menu.gather.speech.model: enhanced: true (set defaults.speech) works"
            " only with model phone_call, not deepgram_nova-2",
        ),
        (
            "{}",
            ", speech: {enhanced: true}",
            "flows/t.yaml:1:59: error: defaults.speech.enhanced: enhanced: true (set here) works only with model"
            " phone_call, not googlev2_telephony",
        ),
        (
            "{speech_model: phone_call, speech: {model: phone_call}}",
            "",
            "flows/t.yaml:6:14: error: states.menu.gather.speech_model: give the model once: in speech.model",
        ),
        (
            "{input: dtmf, barge_in: false}",
            "",
            "flows/t.yaml:6:27: error: states.menu.gather.barge_in: barge_in concerns speech, and this gather listens"
            " for keys only",
        ),
    ],
)
def test_speech_mistakes_are_refused_at_their_position(gather, defaults, message):
    found = errors(menu(gather, defaults))
    assert any(e.startswith(message) for e in found), found


# -- barge-in ------------------------------------------------------------------------------------


def test_a_prompt_written_barge_in_false_plays_whole_before_the_gather():
    assert document(menu(prompts=LEGAL)) == (
        f"<Response><Say {VOICE}>Calls are recorded.</Say>"
        '<Gather action="/voice/t/menu" hints="sales" input="dtmf speech" language="en-US" method="POST"'
        ' numDigits="1" profanityFilter="true" speechModel="googlev2_telephony">'
        f"<Say {VOICE}>For sales, press 1 or say sales.</Say></Gather>{REDIRECT}</Response>"
    )


def test_a_retry_replays_the_message_and_the_prompts_but_not_the_uninterruptible_lead():
    root = ElementTree.fromstring(document(menu(prompts=LEGAL), "no_input"))
    assert [v.tag for v in root] == ["Gather", "Redirect"]
    assert [s.text for s in root.find("Gather")] == ["Still there?", "For sales, press 1 or say sales."]


def test_a_repeat_plays_the_lead_again():
    root = ElementTree.fromstring(document(menu(prompts=LEGAL), "repeat"))
    assert [v.tag for v in root] == ["Say", "Gather", "Redirect"]


def test_a_reprompt_may_have_an_uninterruptible_lead_of_its_own():
    text = menu(prompts=LEGAL).replace(
        "    on_max: bye", "    on_max: bye\n    reprompt: [{say: Listen., barge_in: false}, {say: Press 1.}]"
    )
    root = ElementTree.fromstring(document(text.replace("say: Still there?, ", ""), "no_input"))
    # The handler's message comes first and can be interrupted: the reprompt's lead follows it inside.
    assert [v.tag for v in root] == ["Gather", "Redirect"]
    handler_first = text.replace("no_input: {say: Still there?, max: 3}", "no_input: {max: 3, prompts: []}")
    root = ElementTree.fromstring(document(handler_first, "no_input"))
    assert [v.tag for v in root] == ["Say", "Gather", "Redirect"] and root[0].text == "Listen."


def test_an_uninterruptible_prompt_after_an_interruptible_one_is_refused_with_its_position():
    prompts = "    prompts:\n      - say: Menu.\n      - pause: 1\n        barge_in: false"
    assert errors(menu(prompts=prompts)) == [
        "flows/t.yaml:8:9: error: states.menu.prompts[1].barge_in: a prompt with barge_in: false plays before the"
        " gather listens, so it must come before every prompt that can be interrupted: move it above"
        " states.menu.prompts[0]"
    ]


def test_gather_barge_in_false_keeps_speech_from_cutting_the_nested_prompts():
    assert gather_attrs(menu("{barge_in: false}"))["bargeIn"] == "false"
    assert "bargeIn" not in gather_attrs(menu("{barge_in: true}"))


def test_the_phone_tells_what_could_cut_each_prompt(make_app, flows_dir):
    (flows_dir / "t.yaml").write_text(menu("{barge_in: false}", prompts=LEGAL))
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("t")
    assert [(h.text, h.cut_by) for h in call.transcript] == [
        ("Calls are recorded.", ()),  # before the gather listened
        ("For sales, press 1 or say sales.", ("dtmf",)),  # bargeIn="false": only a key cuts it
    ]
    call.say("sales please")  # speech is heard once the prompts have played
    assert call.heard == ["Sales."]


def test_in_a_gather_that_lets_speech_in_both_keys_and_speech_cut_its_prompts(make_app, flows_dir):
    (flows_dir / "t.yaml").write_text(menu())
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("t")
    assert [h.cut_by for h in call.transcript] == [("dtmf", "speech")]


# -- actionOnEmptyResult -------------------------------------------------------------------------


@pytest.mark.parametrize(("gather", "defaults"), [("{action_on_empty_result: true}", ""),
                                                  ("{}", ", action_on_empty_result: true")])  # fmt: skip
def test_action_on_empty_result_is_sent_and_the_redirect_stays(gather, defaults):
    body = document(menu(gather, defaults))
    assert gather_attrs(menu(gather, defaults))["actionOnEmptyResult"] == "true"
    assert body.endswith(f"</Gather>{REDIRECT}</Response>")  # DESIGN 5: the document is complete anyway


def test_a_gather_can_turn_off_the_flows_action_on_empty_result():
    assert "actionOnEmptyResult" not in gather_attrs(menu("{action_on_empty_result: false}",
                                                          ", action_on_empty_result: true"))  # fmt: skip


def silent_call(make_app, flows_dir, tmp_path, gather: str):
    """Three silences on the menu, then the rows the journal wrote and the call."""
    (flows_dir / "t.yaml").write_text(menu(gather))
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_EVENTS": f"sqlite:///{tmp_path}/events.sqlite3"})
    call = phone_on(app).dial("t", call_sid="CA" + "5" * 32)
    call.press("7")  # a wrong key first: the last input, which silence must leave as it was
    for _ in range(3):
        call.wait()
    events = services(app).events
    events.flush()
    rows = events.database.query("SELECT state, kind, detail, input FROM events ORDER BY id")
    events.close()
    return call, rows


def test_an_empty_result_counts_the_same_retries_and_journal_rows_as_the_redirect(make_app, flows_dir, tmp_path):
    redirected, redirect_rows = silent_call(make_app, flows_dir, tmp_path / "a", "{}")
    posted, posted_rows = silent_call(make_app, flows_dir, tmp_path / "b", "{action_on_empty_result: true}")
    assert [e.url.rsplit("/", 1)[1] for e in redirected.exchanges[2:]] == ["menu?event=no_input"] * 3
    assert [e.url.rsplit("/", 1)[1] for e in posted.exchanges[2:]] == ["menu"] * 3
    assert posted.exchanges[2].params["Digits"] == ""
    heard = [h.text for h in posted.transcript]
    assert heard == [h.text for h in redirected.transcript]
    assert heard[-3:] == ["Still there?", "For sales, press 1 or say sales.", "Bye."]  # the third silence: on_max
    assert posted.ended and redirected.ended
    assert posted_rows == redirect_rows
    assert [r[1] for r in posted_rows if r[0] == "menu"][-3:] == ["no_input", "no_input", "max_reached"]


@pytest.mark.parametrize("params", [{}, {"Digits": ""}, {"Digits": "", "SpeechResult": "  "}])
def test_an_empty_result_is_no_input_and_leaves_the_last_input_as_the_redirect_does(params):
    state = load(menu("{action_on_empty_result: true}")).states["menu"]
    session = {"input": {"digits": "7", "speech": "", "confidence": None}, "vars": {}}
    assert read_outcome(state, params, None, session, speech_table(state)) == "no_input"
    assert read_outcome(state, {}, "no_input", session, speech_table(state)) == "no_input"
    assert session["input"]["digits"] == "7"


def test_a_named_providers_model_ivr_does_not_list_is_taken_and_check_warns(tmp_path):
    from ivr.core.lint import run_checks

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "line.yaml").write_text(
        "start: menu\nstates:\n  menu:\n    say: Say sales.\n"
        "    gather: {input: speech, speech: {model: deepgram_nova-3-general}}\n"
        "    routes: {sales: bye}\n  bye:\n    say: Bye.\n    hangup: true\n"
    )
    lines = [p.format() for p in run_checks(flows_dir=flows).problems]
    assert any(
        ":5:13: warning: states.menu.gather: speech model 'deepgram_nova-3-general' is not one ivr knows" in line
        for line in lines
    ), lines
    assert not any("error" in line.split(": ")[1] for line in lines), lines


def test_a_single_say_or_play_may_be_uninterruptible_in_its_own_mapping(tmp_path):
    from ivr.core.engine import Engine, new_session

    text = (
        "start: menu\nstates:\n  menu:\n    say: {text: Calls are recorded., barge_in: false}\n"
        "    play: https://example.com/menu.mp3\n    gather: true\n    routes: {'1': bye}\n"
        "  bye:\n    say: Bye.\n    hangup: true\n"
    )
    engine = Engine(load_flow_text(text, "flows/one.yaml", "one"))
    twiml = engine.start(new_session("one"), {"CallSid": "CA1"}, datetime(2026, 1, 1, tzinfo=UTC)).twiml
    before, gather = twiml.split("<Gather", 1)
    assert "Calls are recorded." in before and "menu.mp3" in gather
    wrong = text.replace("{text: Calls are recorded., barge_in: false}", "Calls are recorded.").replace(
        "    play: https://example.com/menu.mp3\n", "    play: {url: 'https://example.com/menu.mp3', barge_in: false}\n"
    )
    with pytest.raises(FlowLoadError) as raised:
        load_flow_text(wrong, "flows/one.yaml", "one")
    assert "states.menu.play.barge_in: a prompt with barge_in: false plays before the gather listens" in str(
        raised.value
    )


def test_gather_barge_in_on_a_gather_that_listens_for_keys_by_default_is_an_error():
    text = (
        "start: a\nstates:\n  a:\n    say: Your code.\n    gather: {save_as: code, length: 4, barge_in: false}\n"
        "    next: b\n  b:\n    hangup: true\n"
    )
    with pytest.raises(FlowLoadError) as raised:
        load_flow_text(text, "flows/x.yaml", "x")
    assert "flows/x.yaml:5:13: error: states.a.gather.barge_in: barge_in concerns speech" in str(raised.value)
