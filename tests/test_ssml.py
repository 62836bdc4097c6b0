"""A say written as parts: read with positions, rendered through twilio's SSML builders for the voice's engine,
caller input kept as text, long rendered texts cut to Twilio's limits, and heard naturally by the phone."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import check_twiml
from test_phone import make

from ivr.core.lint import run_checks
from ivr.core.loader import load_flow_text
from ivr.core.references import spoken_texts
from ivr.core.twiml import Renderer, Urls
from ivr.errors import FlowLoadError

FLOW = "defaults: {voice: %s, language: en-US}\nstart: a\nstates:\n  a:\n    say:\n%s\n    hangup: true\n"
PIN = """      - Your PIN is
      - digits: "{{ pin }}"
      - .
      - break: 500ms
      - sub: {text: W3C, alias: World Wide Web Consortium}"""


def flow_of(parts: str, voice: str = "Polly.Joanna"):
    return load_flow_text(FLOW % (voice, parts), "flows/t.yaml", "t")


def errors_of(parts: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(FlowLoadError) as info:
        flow_of(parts)
    return [(e.line, e.column, e.path, e.message) for e in info.value.errors]


def document(flow, context=None) -> str:
    renderer = Renderer(flow, Urls())
    verbs = None if renderer.is_static("a") else renderer.verbs("a", "enter", lambda: context)
    body = renderer.document([("a", "enter")], [verbs])
    check_twiml(body.encode())
    return body.removeprefix('<?xml version="1.0" encoding="UTF-8"?>')


# -- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ("      - brake: 1s", (6, 9, "states.a.say[0].brake", "unknown part 'brake' (did you mean 'break'?)")),
        ("      - break: 20s", (6, 16, "states.a.say[0].break", "a break is at most 10s, got '20s'")),
        ("      - break: stronk", (6, 16, "states.a.say[0].break", "or a strength (none, x-weak, weak, medium,")),
        (
            "      - prosody: {text: Hi, rate: quick}",
            (6, 35, "states.a.say[0].prosody.rate", "rate must be a word (x-slow, slow"),
        ),
        ("      - prosody: {text: Hi, rate: 500%}", (6, 35, "states.a.say[0].prosody.rate", "got '500%'")),
        ("      - prosody: Hi", (6, 18, "states.a.say[0].prosody", "prosody needs at least one of rate, pitch")),
        ("      - emphasis: {text: Hi, level: strongg}", (6, 37, "states.a.say[0].emphasis.level", "'strong'?")),
        ("      - sub: W3C", (6, 14, "states.a.say[0].sub", "sub takes a mapping: {text: ..., alias: ...}")),
        ("      - sub: {text: W3C}", (6, 14, "states.a.say[0].sub", "missing key: alias")),
        ("      - date: {text: x, format: dmyy}", (6, 33, "states.a.say[0].date.format", "(did you mean 'dmy'?)")),
        ("      - emphasis: [paragraph: Hi]", (6, 20, "states.a.say[0].emphasis[0].paragraph", "at the top of a say")),
        ("      - {break: 1s, digits: '1'}", (6, 9, "states.a.say[0]", "each part is text or a mapping with one key")),
    ],
)
def test_every_mistake_in_a_part_is_reported_where_it_is_written(parts, error):
    [(line, column, path, message)] = errors_of(parts)
    assert (line, column, path) == error[:3]
    assert error[3] in message


def test_the_words_of_a_say_in_parts_keep_its_templates_and_each_part_its_position():
    say = flow_of(PIN).states["a"].prompts[0]
    assert say.text.source == "Your PIN is {{ pin }}. World Wide Web Consortium"
    assert [(t.source, t.pos.line, t.pos.column) for t in spoken_texts(flow_of(PIN).states["a"])][:4] == [
        ("Your PIN is", 6, 9),
        ("{{ pin }}", 7, 17),
        (".", 8, 9),
        ("W3C", 10, 21),
    ]


def test_check_sees_a_variable_nothing_sets_inside_a_part(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(FLOW % ("Polly.Joanna", PIN), encoding="utf-8")
    found = [(p.line, p.column, p.message) for p in run_checks([str(path)]).problems]
    assert any((line, column) == (7, 17) and "'pin'" in message for line, column, message in found)


# -- rendering -------------------------------------------------------------------------------------


def test_a_say_in_parts_is_ssml_inside_the_say_and_the_callers_input_stays_text():
    body = document(flow_of(PIN), {"pin": '12<break time="9s"/>'})
    assert body == (
        '<Response><Say language="en-US" voice="Polly.Joanna">Your PIN is <say-as interpret-as="digits">'
        '12&lt;break time="9s"/&gt;</say-as>.<break time="500ms" /> <sub alias="World Wide Web Consortium">W3C</sub>'
        "</Say><Hangup /></Response>"
    )


def test_a_say_in_parts_without_templates_is_built_once():
    flow = flow_of("      - Hello\n      - break: strong\n      - emphasis: {text: there, level: strong}")
    renderer = Renderer(flow, Urls())
    assert renderer.is_static("a")
    assert renderer.verbs("a", "enter", None) is renderer.verbs("a", "enter", None)
    assert document(flow) == (
        '<Response><Say language="en-US" voice="Polly.Joanna">Hello<break strength="strong" /> '
        '<emphasis level="strong">there</emphasis></Say><Hangup /></Response>'
    )


AMOUNT = "      - You owe\n      - currency: $12.50\n      - emphasis: today\n      - spell: AB1"


@pytest.mark.parametrize(
    ("voice", "said"),
    [
        (
            "Polly.Joanna",  # Polly has no currency: said as written
            'You owe $12.50 <emphasis>today</emphasis> <say-as interpret-as="characters">AB1</say-as>',
        ),
        ("Polly.Joanna-Neural", 'You owe $12.50 today <say-as interpret-as="characters">AB1</say-as>'),
        (
            "Google.en-US-Neural2-F",
            'You owe <say-as interpret-as="currency">$12.50</say-as> <emphasis>today</emphasis> '
            '<say-as interpret-as="characters">AB1</say-as>',
        ),
        ("alice", "You owe $12.50 today A B 1"),
        ("Google.en-US-Chirp3-HD-Aoede", "You owe $12.50 today A B 1"),
    ],
)
def test_each_engine_gets_only_the_ssml_it_speaks(voice, said):
    body = document(flow_of(AMOUNT, voice))
    assert body == f'<Response><Say language="en-US" voice="{voice}">{said}</Say><Hangup /></Response>'


def test_a_rendered_text_over_the_voices_limit_is_cut_at_a_sentence_end_with_a_log_line(caplog):
    flow = load_flow_text(FLOW % ("Polly.Joanna", "      - Dear {{ name }}.\n      - break: 1s"), "flows/t.yaml", "t")
    with caplog.at_level(logging.WARNING, logger="ivr.core.ssml"):
        body = document(flow, {"name": "Ann. " + "Blah blah. " * 400})
    said = ElementTree.fromstring(body).find("Say")
    assert len(said.text) <= 3000 and said.text.endswith("Blah blah.") and not list(said)
    assert "flows/t.yaml:6:7: states.a.say: Say text is" in caplog.text


# -- the phone -------------------------------------------------------------------------------------


def test_the_phone_hears_ssml_as_words():
    body = document(flow_of(PIN), {"pin": "1234"})
    _, phone = make({"/voice/t": body, "/voice/t/a": body})
    call = phone.dial("t")
    assert call.heard == ["Your PIN is 1234. World Wide Web Consortium"]


def test_the_phone_reports_twilios_13521_for_a_say_over_its_limit():
    body = f'<Response><Say voice="Polly.Joanna">{"a" * 3001}</Say><Hangup/></Response>'
    _, phone = make({"/voice/t": body, "/voice/t/a": body})
    call = phone.dial("t")
    assert [(w.code, w.message.split(": ", 1)[1]) for w in call.warnings] == [
        (13521, "Say text is 3001 bytes; Twilio's limit for voice Polly.Joanna is 3000")
    ]


# -- the reference -----------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "flows.md"


@pytest.mark.parametrize("name", ["voices", "ssml"])
def test_the_documented_voices_and_ssml_examples_render_the_documented_twiml(name):
    text = DOCS.read_text(encoding="utf-8")
    flow_text, xml = re.search(rf"```yaml\n(# flows/{name}\.yaml\n.*?)```.*?```xml\n(.*?)\n```", text, re.S).groups()
    flow = load_flow_text(flow_text, f"flows/{name}.yaml", name)
    renderer = Renderer(flow, Urls())
    segments = [(state, "enter") for state in flow.states]
    rendered = [None if renderer.is_static(s) else renderer.verbs(s, v, lambda: {"pin": "4821"}) for s, v in segments]
    body = renderer.document(segments, rendered)
    check_twiml(body.encode())
    assert body.removeprefix('<?xml version="1.0" encoding="UTF-8"?>') == xml
