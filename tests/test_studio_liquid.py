"""Liquid as Studio writes it, rewritten into the flow language's templates (rendered in its sandbox)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.core.templates import compile_condition, compile_text, evaluate, render
from ivr.studio import liquid
from ivr.studio.model import Context, read_definition

DEFINITION = {
    "states": [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "menu"}]},
        {"name": "menu", "type": "gather-input-on-call", "transitions": [], "properties": {}},
        {"name": "lookup", "type": "no-such-widget", "transitions": [], "properties": {}},
        {"name": "greet", "type": "say-play", "transitions": [], "properties": {}},
    ]
}
CALL = {"From": "+15551230000", "To": "+15005550006", "Direction": "inbound", "CallSid": "CA1"}


@pytest.fixture
def ctx():
    from ivr.studio import widgets  # noqa: F401  (registers the gather's reader)

    return Context(read_definition(DEFINITION, "flow.json"))


def said(ctx, source, **names):
    """The Liquid text translated, compiled by the flow language and rendered with `names`."""
    text = liquid.text(ctx, ctx.definition.widget("greet"), source, "say")
    context = {"call": CALL, "input": {"digits": "", "speech": ""}, "now": datetime(2026, 12, 6, 9, 5), "vars": names}
    context.update(names)
    return render(compile_text(text), context)


@pytest.mark.parametrize(
    ("source", "names", "expected"),
    [
        ("You pressed {{widgets.menu.Digits}}.", {"input": {"digits": "3"}}, "You pressed 3."),
        ("You said {{ widgets.menu.SpeechResult | upcase }}", {"input": {"speech": "hi"}}, "You said HI"),
        ("From {{trigger.call.From}} to {{trigger.call.To}}", {}, "From +15551230000 to +15005550006"),
        ("{{contact.channel.address}} / {{flow.channel.address}}", {}, "+15551230000 / +15005550006"),
        ("Hi {{flow.variables.name | default: 'friend'}}", {}, "Hi friend"),
        ("Hi {{flow.variables.name | default: 'friend'}}", {"name": "Ann"}, "Hi Ann"),
        ("{{flow.data.order_id | prepend: '#' | append: '!'}}", {"order_id": "42"}, "#42!"),
        ("{{ flow.variables.total | plus: 2 | times: 3 }}", {"total": 1}, "9"),
        ("{{ flow.variables.total | divided_by: 2 }}", {"total": 7}, "3"),
        ("{{ flow.variables.n | size }}", {"n": "abcd"}, "4"),
        ("{{ flow.variables.s | replace: 'a', 'o' | capitalize }}", {"s": "banana"}, "Bonono"),
        ("{{ flow.variables.s | split: ',' | join: ' and ' }}", {"s": "a,b"}, "a and b"),
        ("{{ flow.variables.s | truncate: 8 }}", {"s": "a long sentence"}, "a lon..."),
        ("{{ 'now' | date: '%H:%M' }}", {}, "09:05"),
        ("{% assign who = flow.variables.name | downcase %}Hello {{ who }}", {"name": "ANN"}, "Hello ann"),
        (
            "{% if flow.variables.vip == true %}VIP{% elsif flow.variables.n > 2 %}many{% else %}few{% endif %}",
            {"vip": False, "n": 3},
            "many",
        ),
        ("{% unless flow.variables.closed %}open{% endunless %}", {"closed": False}, "open"),
        ("{% if flow.variables.s contains 'x' %}has x{% endif %}", {"s": "box"}, "has x"),
        ("{% if flow.variables.s == blank %}blank{% else %}set{% endif %}", {"s": "  "}, "blank"),
        ("{% if flow.variables.s == empty %}empty{% endif %}", {"s": ""}, "empty"),
        (
            "{% for x in flow.variables.items %}{{ forloop.index }}:{{ x }} {% endfor %}",
            {"items": ["a", "b"]},
            "1:a 2:b ",
        ),
        ("{% for i in (1..3) %}{{ i }}{% endfor %}", {}, "123"),
        (
            "{% case flow.variables.lang %}{% when 'en' %}Hi{% when 'es', 'pt' %}Hola{% endcase %}",
            {"lang": "pt"},
            "Hola",
        ),
        (
            "{% capture full %}{{ flow.variables.a }} {{ flow.variables.b }}{% endcapture %}{{ full }}",
            {"a": "x", "b": "y"},
            "x y",
        ),
        ("{% comment %}not said{% endcomment %}said", {}, "said"),
    ],
)
def test_liquid_renders_as_studio_would(ctx, source, names, expected):
    assert said(ctx, source, **names) == expected
    assert ctx.reports == []


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("call", "{{ call.From }} / {{ call.To }}"),
        ("rest", "{{ call.To }} / {{ call.From }}"),
        (None, "call.From if call.Direction"),
    ],
)
def test_the_contact_is_the_caller_or_the_person_called_by_how_the_flow_starts(ctx, entry, expected):
    """Studio's contact is who the flow talks to: the caller of an incoming call, the `To` of a REST API
    execution's outbound call; a subflow, run by either, decides by the call's direction."""
    ctx.extras["entry"] = entry
    text = liquid.text(
        ctx, ctx.definition.widget("greet"), "{{contact.channel.address}} / {{flow.channel.address}}", "say"
    )
    assert expected in text
    outbound = {**CALL, "Direction": "outbound-api", "From": "+15005550006", "To": "+15551230000"}
    if entry != "call":  # the REST API's (or either's) outbound call: the contact is the number called
        assert render(compile_text(text), {"call": outbound, "vars": {}}) == "+15551230000 / +15005550006"


def test_liquid_truthiness_is_kept_empty_text_is_true(ctx):
    # Liquid: only nil and false are false, so Studio says "set" for an empty variable.
    source = "{% if flow.variables.s %}set{% else %}unset{% endif %}"
    assert said(ctx, source, s="") == "set"
    assert said(ctx, source, s=False) == "unset"
    assert said(ctx, source) == "unset"


def test_and_or_group_from_the_right_as_in_liquid(ctx):
    # Liquid reads `true or false and false` as `true or (false and false)`: true.
    source = "{% if flow.variables.t or flow.variables.f and flow.variables.f %}yes{% else %}no{% endif %}"
    assert said(ctx, source, t=True, f=False) == "yes"


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("{{ widgets.lookup.parsed.balance }}", "the no-such-widget widget's parsed.balance has no equivalent"),
        ("{{ widgets.nobody.Digits }}", "no widget is named 'nobody'"),
        ("{{ trigger.message.Body }}", "a call has no incoming message"),
        ("{{ flow.flow_sid }}", "flow.flow_sid has no equivalent"),
        ("{{ flow.variables.s | newline_to_br }}", "the filter 'newline_to_br' has no equivalent"),
        ("{% increment n %}", "the tag {% increment %} has no equivalent"),
        ("{% if flow.variables.s %}never closed", "{% if %} is never closed; closed at the end"),
    ],
)
def test_what_has_no_equivalent_is_reported_and_the_text_still_compiles(ctx, source, reported):
    text = liquid.text(ctx, ctx.definition.widget("greet"), "Say " + source, "say")
    compile_text(text)
    assert len(ctx.reports) == 1
    assert reported in ctx.reports[0].message
    assert ctx.reports[0].format().startswith('flow.json: states[3] "greet" (say-play): say: ')


def test_plain_text_keeps_jinja_look_alikes_as_text(ctx):
    assert said(ctx, "Press {# now") == "Press {# now"


def test_an_expression_names_one_variable(ctx):
    greet = ctx.definition.widget("greet")
    assert liquid.expression(ctx, greet, "{{widgets.menu.Digits}}", "input") == "input.digits"
    expression = liquid.expression(ctx, greet, "{{ flow.variables.x | downcase }}", "input")
    assert evaluate(compile_condition(expression), {"x": "AB"}) is True and expression == "(x) | lower"
    assert liquid.expression(ctx, greet, "Hello {{x}}", "input") is None


def test_studio_variable_names_become_valid_flow_variables():
    assert liquid.variable_name("input") == "input_value"
    assert liquid.variable_name("order-id") == "order_id"
    assert liquid.variable_name("1st") == "v_1st"


def test_url_encode_is_not_doubled_in_a_url_where_the_flow_encodes_every_value(ctx):
    greet = ctx.definition.widget("greet")
    source = "https://example.com/a?from={{trigger.call.From | url_encode}}"
    url = liquid.text(ctx, greet, source, "url")
    rendered = render(compile_text(url, url=True), {"call": CALL})
    assert rendered == "https://example.com/a?from=%2B15551230000"
    assert liquid.text(ctx, greet, "{{trigger.call.From | url_encode}}", "say") == "{{ (call.From) | urlencode }}"


def test_a_case_inside_a_case_closes_each(ctx):
    source = (
        "{% case flow.variables.a %}{% when 'x' %}"
        "{% case flow.variables.b %}{% when 'y' %}XY{% else %}X?{% endcase %}"
        "{% when 'z' %}Z{% endcase %}."
    )
    assert said(ctx, source, a="x", b="y") == "XY."
    assert said(ctx, source, a="x", b="q") == "X?."
    assert said(ctx, source, a="z", b="y") == "Z."
    assert ctx.reports == []
