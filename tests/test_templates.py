"""ivr.core.templates: author templates compiled once in Jinja's sandbox, caller input kept as data."""

from __future__ import annotations

import re

import pytest
from conftest import TEST_FLOWS, phone_on, verb

from ivr.core.loader import load_flow_text
from ivr.core.templates import (
    compile_condition,
    compile_text,
    evaluate,
    is_template,
    open_names,
    parse_condition,
    parse_text,
    render,
    unknown_variables,
)
from ivr.errors import FlowLoadError, FlowRuntimeError, TemplateProblem
from ivr.testing import last_document

TEMPLATE_FLOWS = TEST_FLOWS / "templates"
PRIVATE = "is not allowed in templates (names starting with '_' are private)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks for calling.", False),
        ("Hello {{ name }}.", True),
        ("{% if vip %}Welcome back.{% endif %}", True),
        ("{# a note #}Hi.", True),
        ("Braces { alone } are text.", False),
    ],
)
def test_is_template_tells_markup_from_plain_text(text, expected):
    assert is_template(text) is expected


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("Hello {{ name }}.", {"name": "Ada"}, "Hello Ada."),
        ("You said {{ speech }}", {"speech": "{{7*7}}"}, "You said {{7*7}}"),
        (
            "You said {{ speech }}",
            {"speech": "{% for x in range(3) %}x{% endfor %}"},
            "You said {% for x in range(3) %}x{% endfor %}",
        ),
        ("{{ said }}", {"said": "</Say><Dial>+15550001111</Dial>"}, "</Say><Dial>+15550001111</Dial>"),
        ("{% if n > 1 %}{{ n }} messages{% else %}one message{% endif %}", {"n": 3}, "3 messages"),
    ],
    ids=["variable", "caller-expression", "caller-statement", "caller-markup", "statement"],
)
def test_a_text_template_renders_its_context_as_data(source, context, expected):
    """Values reach the text as written: never rendered again, never escaped (the TwiML builder escapes)."""
    assert render(compile_text(source), context) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ call.__class__ }}", f"'__class__' {PRIVATE}"),
        ("{{ call['_secret'] }}", f"'_secret' {PRIVATE}"),
        ("{{ _hidden }}", f"'_hidden' {PRIVATE}"),
        ("{{ call|attr('__dict__') }}", f"'__dict__' {PRIVATE}"),
        ("{{ call|attr(name) }}", "the attr filter needs a plain attribute name"),
        ("Hello {{ name", "template syntax: unexpected end of template"),
    ],
)
def test_compile_text_refuses_private_names_and_bad_syntax(source, message):
    with pytest.raises(TemplateProblem) as info:
        compile_text(source)
    assert str(info.value).startswith(message)


def test_the_sandbox_refuses_at_run_time_what_it_cannot_see_at_load():
    """A method that changes a value is refused by the immutable sandbox, naming where the template is."""
    template = compile_text("{{ items.append(4) }}")
    with pytest.raises(FlowRuntimeError) as info:
        render(template, {"items": [1, 2, 3]}, "t.yaml:4:10")
    assert str(info.value).startswith("t.yaml:4:10: template refused by the sandbox: ")
    assert "append" in str(info.value)


def test_a_template_failing_at_run_time_names_its_place_and_the_error():
    with pytest.raises(FlowRuntimeError, match=r"^t\.yaml:2:5: template failed: ZeroDivisionError: "):
        render(compile_text("{{ 1 / n }}"), {"n": 0}, "t.yaml:2:5")


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("vars.tier == 'gold'", {"vars": {"tier": "gold"}}, True),
        ("vars.tier == 'gold'", {"vars": {"tier": "silver"}}, False),
        ("input.digits | length == 6", {"input": {"digits": "123456"}}, True),
        ("n > 3 and n < 10", {"n": 12}, False),
        ("'1' in keys", {"keys": "12"}, True),
    ],
)
def test_a_condition_evaluates_to_a_boolean(source, context, expected):
    assert evaluate(compile_condition(source), context) is expected


def test_a_condition_on_an_undefined_name_fails_naming_its_place():
    with pytest.raises(FlowRuntimeError, match=r"^t\.yaml:6:13: condition failed: UndefinedError"):
        evaluate(compile_condition("now.hours > 9"), {}, "t.yaml:6:13")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("call.__class__", f"'__class__' {PRIVATE}"),
        ("vars.tier ==", "condition syntax: "),
    ],
)
def test_compile_condition_refuses_private_names_and_bad_syntax(source, message):
    with pytest.raises(TemplateProblem, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        compile_condition(source)


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("open('support')", ["support"]),
        ("open('sales') and not open(\"support\")", ["sales", "support"]),
        ("vars.open", []),
        ("open(name)", []),
    ],
    ids=["one", "two", "an-attribute", "not-a-literal"],
)
def test_open_names_are_the_literal_names_a_condition_gives_to_open(source, names):
    assert sorted(open_names(parse_condition(source))) == names


def test_open_names_are_found_in_text_templates_too():
    assert open_names(parse_text("We are {{ 'open' if open('shop') else 'closed' }}.")) == {"shop"}


def test_unknown_variables_leave_out_known_names_and_the_sandbox_globals():
    tree = parse_text("{{ name }} {{ range(2) | list }} {{ balance }} {{ call.From }}")
    assert unknown_variables(tree, {"name", "call"}) == {"balance"}


# -- through a call and through load ------------------------------------------------------------


@pytest.mark.parametrize(
    "speech",
    ["</Say><Dial>+15550001111</Dial>", "{{7*7}}", "{% for x in range(3) %}x{% endfor %}", "{{ call.__class__ }}"],
)
def test_caller_speech_is_spoken_literally(make_app, speech):
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(TEMPLATE_FLOWS)})).dial("echo")
    assert call.heard == ["Say something."]
    call.say(speech)
    assert call.exchanges[-1].status == 200
    assert verb(call, "Dial") is None
    assert [v.tag for v in last_document(call)] == ["Say", "Hangup"]
    assert call.heard == [f"You said {speech}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ call.__class__ }}", f"'__class__' {PRIVATE}"),
        ("{{ ''.__class__.__mro__ }}", PRIVATE),
        ("{{ call['__class__'] }}", f"'__class__' {PRIVATE}"),
        ("{{ cycler.__init__.__globals__ }}", PRIVATE),
        ("{{ call|attr('__class__') }}", f"'__class__' {PRIVATE}"),
        ("{{ call|attr('_' ~ '_class__') }}", "the attr filter needs a plain attribute name"),
    ],
)
def test_template_reaching_for_python_internals_is_refused_at_load(make_app, flows_dir, text, message):
    (flows_dir / "evil.yaml").write_text(f'start: a\nstates:\n  a:\n    say: "{text}"\n    hangup: true\n')
    with pytest.raises(FlowLoadError) as info:
        make_app({"IVR_FLOWS_DIR": str(flows_dir)})
    (error,) = info.value.errors
    assert error.file.endswith("evil.yaml")
    assert (error.line, error.path) == (4, "states.a.say")
    assert message in error.message


def test_condition_reaching_for_python_internals_is_refused_at_load(make_app, flows_dir):
    (flows_dir / "evil.yaml").write_text(
        "start: a\nstates:\n  a:\n    when:\n      - {if: 'call.__class__', next: b}\n    next: b\n"
        "  b:\n    hangup: true\n"
    )
    with pytest.raises(FlowLoadError) as info:
        make_app({"IVR_FLOWS_DIR": str(flows_dir)})
    (error,) = info.value.errors
    assert error.line == 5
    assert "'__class__' is not allowed in templates" in error.message


def test_templates_see_every_context_name_the_flow_language_reserves(make_app, tmp_path):
    """The engine's context holds exactly the names a variable may not take (ivr.core.flow.CONTEXT_NAMES)."""
    from ivr.core.flow import CONTEXT_NAMES

    names = ", ".join(CONTEXT_NAMES)
    (tmp_path / "ctx.yaml").write_text(
        "start: a\nstates:\n  a:\n"
        f"    say: \"{{{{ [{names}] | select('defined') | list | length }}}}\"\n"
        "    hangup: true\n"
    )
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(tmp_path)})).dial("ctx")
    assert call.heard == [str(len(CONTEXT_NAMES))]


@pytest.mark.parametrize("name", ["open", "now", "call", "vars"])
def test_a_variable_cannot_take_a_context_name(name):
    """Before, `set: {open: ...}` loaded and the caller heard the open() function's repr."""
    text = f'start: a\nstates:\n  a:\n    set: {{{name}: x}}\n    say: "{{{{ {name} }}}}"\n    hangup: true\n'
    with pytest.raises(
        FlowLoadError, match=rf"states\.a\.set\.{name}: not a usable variable name \('{name}' is reserved"
    ):
        load_flow_text(text, "t.yaml", "t")


@pytest.mark.parametrize(
    ("speech", "url"),
    [
        ("../../x?y#z", "https://audio.example.com/greetings/..%2F..%2Fx%3Fy%23z.mp3"),
        ("hello world", "https://audio.example.com/greetings/hello%20world.mp3"),
    ],
)
def test_caller_input_in_a_url_is_encoded_where_it_is_substituted(make_app, speech, url):
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(TEMPLATE_FLOWS)})).dial("play_back")
    call.say(speech)  # the phone checks the document against Twilio's schema
    assert verb(call, "Play").text == url


def test_a_url_template_refuses_a_value_that_is_a_dot_segment():
    template = compile_text("https://audio.example.com/{{ part }}/x.mp3", url=True)
    with pytest.raises(FlowRuntimeError, match=re.escape("'..' cannot be a part of a URL")):
        render(template, {"part": ".."}, "flows/f.yaml:3:5")


def test_a_url_template_inserts_a_whole_url_the_author_marks_safe():
    template = compile_text("{{ recording.url | safe }}", url=True)
    assert (
        render(template, {"recording": {"url": "https://api.twilio.com/r/RE1.mp3"}})
        == "https://api.twilio.com/r/RE1.mp3"
    )
