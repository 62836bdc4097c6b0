"""What Studio allows and the flow language refuses: the importer marks it `todo:` and reports it, and
the flow it writes still loads; and what Liquid means where Jinja would read it otherwise."""

from __future__ import annotations

import json

import pytest
from conftest import phone_on
from studio_support import STUDIO, app_for, import_fixture, strict_problems

from ivr.errors import StudioError
from ivr.studio import convert, liquid, read_definition
from ivr.studio.model import CONVERTERS, Context, Piece

TRIGGER = {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "s"}]}


def definition(*widgets, source="flow.json"):
    return read_definition({"states": [TRIGGER, *widgets]}, source)


def test_a_retry_loop_that_waits_for_nothing_is_marked_and_the_flow_loads(tmp_path):
    """Studio retries a failed request after a prompt, for ever; the flow language refuses a loop that
    never waits for the caller, so the request is marked todo and its failure goes to the error state."""
    flows = tmp_path / "flows"
    imported = import_fixture("retry_loop", flows)
    messages = [r.format() for r in imported.reports]
    assert any(
        m.startswith('retry_loop.json: states[1] "get_order" (make-http-request): the flow language refuses')
        and "loop forever" in m
        for m in messages
    )
    problems = strict_problems(flows)
    assert any("states.get_order.todo:" in p for p in problems)
    call = phone_on(app_for(flows, tmp_path)).dial("retry_loop")
    assert call.heard[-1] == "Sorry, something went wrong. Please call again later. Goodbye."
    assert call.ended


def test_an_empty_set_variables_value_empties_the_variable():
    data = {"name": "s", "type": "set-variables", "properties": {"variables": [{"key": "note", "value": ""}]},
            "transitions": [{"event": "next", "next": "t"}]}  # fmt: skip
    said = {"name": "t", "type": "say-play", "properties": {"say": "Note [{{flow.variables.note}}]."},
            "transitions": [{"event": "audioComplete"}]}  # fmt: skip
    imported = convert(definition(data, said), "f")
    assert imported.reports == []
    assert "set: {note: \"{{ '' }}\"}" in imported.text


def test_a_transition_to_a_widget_that_does_not_exist_goes_to_the_error_state():
    say = {"name": "s", "type": "say-play", "properties": {"say": "Hi."},
           "transitions": [{"event": "audioComplete", "next": "nowhere_widget"}]}  # fmt: skip
    imported = convert(definition(say), "f")
    assert [r.message for r in imported.reports] == [
        "audioComplete leads to 'nowhere_widget', which is no widget of the definition; it goes to the error state"
    ]
    assert "next: error" in imported.text


def test_a_converter_whose_state_is_refused_is_marked_todo():
    def broken(widget, ctx):
        return Piece().add(ctx.state(widget), {"next": "nowhere"})

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(CONVERTERS, "broken-widget", broken)
        imported = convert(definition({"name": "s", "type": "broken-widget", "transitions": []}), "f")
    [report] = [r.message for r in imported.reports]
    assert report.startswith("the flow language refuses what it became (") and "nowhere" in report
    assert "todo:" in imported.text


def test_a_problem_outside_every_widgets_state_is_an_internal_error():
    def elsewhere(widget, ctx):
        ctx.extras["start"] = "nowhere"
        return Piece().add(ctx.state(widget), {"hangup": True})

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(CONVERTERS, "broken-widget", elsewhere)
        with pytest.raises(
            StudioError, match=r"(?s)flow.json: internal error: the imported flow does not load:.*nowhere"
        ):
            convert(definition({"name": "s", "type": "broken-widget", "transitions": []}), "f")


@pytest.fixture
def ctx():
    say = {"name": "s", "type": "say-play", "properties": {}, "transitions": []}
    return Context(definition(say))


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("A{% if nothing %} hidden{% endif %} B", "A B"),  # Liquid: an unknown value is nil, so false
        ("A{% unless nothing %} shown{% endunless %} B", "A shown B"),
        ("A{% if flow.variables.x %}x{% elsif nothing %} hidden{% else %} else{% endif %} B", "A else B"),
    ],
)
def test_a_condition_on_what_has_no_equivalent_is_false_as_in_liquid(ctx, source, said):
    from ivr.core.templates import compile_text, render

    text = liquid.text(ctx, ctx.definition.widget("s"), source, "say")
    assert render(compile_text(text), {"call": {}, "vars": {}}) == said
    assert any("taken as false" in r.message for r in ctx.reports)


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("{{ trigger.call.From | slice: -4, 4 }}", "0000"),  # "your number ending in ..."
        ("{{ trigger.call.From | slice: 1, 3 }}", "155"),
        ("{{ trigger.call.From | slice: 0 }}", "+"),
    ],
)
def test_slice_counts_a_negative_start_from_the_end(ctx, source, said):
    from ivr.core.templates import compile_text, render

    text = liquid.text(ctx, ctx.definition.widget("s"), source, "say")
    assert render(compile_text(text), {"call": {"From": "+15551230000"}, "vars": {}}) == said


def test_a_payment_right_after_the_recording_starts_is_marked_not_left_for_check_to_refuse():
    """Twilio has not started a recording its own document starts when <Pay> asks to pause it; check
    refuses that payment as an error, so the importer marks it todo (never paid) and says why."""
    data = json.loads((STUDIO / "capture_payments.json").read_text(encoding="utf-8"))
    data["states"][1]["transitions"] = [{"event": "audioComplete", "next": "recording_on"}]
    started = [{"event": "success", "next": "take_payment"}, {"event": "failed"}]
    data["states"].append(
        {"name": "recording_on", "type": "record-call", "properties": {"record_call": True}, "transitions": started}
    )
    imported = convert(read_definition(data, "pay.json"), "pay")
    refused = [r.format() for r in imported.reports if "refuses" in r.message]
    assert len(refused) == 1
    assert refused[0].startswith('pay.json: states[2] "take_payment" (capture-payments): the flow language refuses')
    assert "the recording starts in the same document as this payment" in refused[0]
    assert "pay:" not in imported.text.split("take_payment:")[1].split("\n\n")[0]


def test_an_http_url_that_loses_a_value_is_marked_not_sent_elsewhere():
    http = {"name": "s", "type": "make-http-request",
            "properties": {"method": "GET", "url": "https://api.example.com/x/{{widgets.nosuch.parsed.id}}/y"},
            "transitions": [{"event": "success"}, {"event": "failed"}]}  # fmt: skip
    imported = convert(definition(http), "f")
    assert "http:" not in imported.text and "todo:" in imported.text
    assert any("a value of its URL" in r.message for r in imported.reports)


def test_a_say_that_is_not_text_is_reported_not_spoken_as_python():
    say = {"name": "s", "type": "say-play", "properties": {"say": ["Press", "1"]}, "transitions": []}
    imported = convert(definition(say), "f")
    assert [r.message for r in imported.reports] == ["say is list, not text; left out"]
    assert "Press" not in imported.text


@pytest.mark.parametrize(
    ("properties", "report"),
    [
        ({"timeout": "abc"}, "timeout 'abc' is not a whole number from 1 to 60; 5 seconds, as Twilio's default"),
        (
            {"number_of_digits": -3},
            "number_of_digits -3 is not a whole number from 1 to 99; any number of keys, as Twilio's default",
        ),
    ],
)
def test_a_gather_number_that_cannot_be_read_is_reported(properties, report):
    gather = {"name": "s", "type": "gather-input-on-call", "properties": {"say": "Enter it.", **properties},
              "transitions": [{"event": "keypress"}]}  # fmt: skip
    imported = convert(definition(gather), "f")
    assert [r.message for r in imported.reports] == [report]


def test_a_gather_asking_again_on_every_silence_is_reported_as_check_warns_of_it():
    gather = {"name": "s", "type": "gather-input-on-call", "properties": {"say": "Press 1."},
              "transitions": [{"event": "keypress"}, {"event": "timeout", "next": "s"}]}  # fmt: skip
    imported = convert(definition(gather), "f")
    assert [r.message for r in imported.reports] == [
        "its timeout asks again without end, as in Studio; check warns that a silent caller is never let go: "
        "give no_input.on_max a way out"
    ]


def test_a_condition_naming_another_value_than_the_splits_input_is_reported():
    split = {"name": "s", "type": "split-based-on", "properties": {"input": "{{flow.variables.a}}"},
             "transitions": [{"event": "noMatch"}, {"event": "match", "next": "t", "conditions": [
                 {"arguments": ["{{flow.variables.b}}"], "type": "equal_to", "value": "x"}]}]}  # fmt: skip
    said = {"name": "t", "type": "say-play", "properties": {"say": "X."}, "transitions": []}
    imported = convert(definition(split, said), "f")
    assert [r.message for r in imported.reports] == [
        "the condition equal_to 'x' names {{flow.variables.b}}; the split's input {{flow.variables.a}} is what "
        "is tested"
    ]
