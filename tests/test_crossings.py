"""The cost of crossing into a subflow and back: a document without templates that crosses flows is
serialised once per chain (and versions), and a pass-through value (`{{ name }}`) is read, not rendered,
when that gives exactly what rendering gives."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from markupsafe import Markup
from twilio.twiml.voice_response import VoiceResponse

from ivr.core import flow as f
from ivr.core.engine import Engine, new_session
from ivr.core.loader import load_flows
from ivr.core.templates import compile_text, number_or_text, render, value_of
from ivr.core.twiml import Urls

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)

PIN = """\
inputs: {account: required}
returns: [verified]
start: ask
states:
  ask:
    say: Your PIN, please.
    gather: {save_as: pin, length: 4}
    next: ok
  ok:
    return: {outcome: verified, values: {account: "{{ account }}"}}
"""

CALLER = """\
start: hello
states:
  hello:
    say: {greeting}
    set: {{account: "42"}}
    next: verify
  verify:
    subflow: {{flow: pin, inputs: {{account: "{{{{ account }}}}"}}, save_as: checked}}
    routes: {{verified: done}}
  done:
    say: "Done, {{{{ checked.account }}}}."
    hangup: true
"""


def engines(tmp_path, greeting: str = "Hello.", urls: Urls | None = None) -> dict[str, Engine]:
    (tmp_path / "pin.yaml").write_text(PIN, encoding="utf-8")
    (tmp_path / "caller.yaml").write_text(CALLER.format(greeting=greeting), encoding="utf-8")
    built = {fid: Engine(flow, urls) for fid, flow in load_flows(tmp_path).items()}
    for engine in built.values():
        engine.link = lambda fid, _version: built[fid]
    return built


@pytest.fixture
def serialised(monkeypatch) -> list[int]:
    counted = [0]
    to_xml = VoiceResponse.to_xml

    def counting(self, *args, **kwargs):
        counted[0] += 1
        return to_xml(self, *args, **kwargs)

    monkeypatch.setattr(VoiceResponse, "to_xml", counting)
    return counted


def enter(engine: Engine, sid: str = "CA1", **params):
    return engine.start(new_session(engine.flow.id), {"CallSid": sid, **params}, NOW)


def test_a_crossing_document_without_templates_is_serialised_once(tmp_path, serialised):
    built = engines(tmp_path)
    first = enter(built["caller"])
    assert first.walked_flows == ("caller", "caller", "pin") and first.document is None  # kept as TwiML on retry
    assert "Hello." in first.twiml and "Your PIN, please." in first.twiml
    counted = serialised[0]
    second = enter(built["caller"], "CA2")
    assert second.twiml == first.twiml
    assert serialised[0] == counted  # the same bytes, not serialised again
    # The way back out renders the caller's templated state: serialised per call, as before.
    back = built["pin"].resume("ask", second.session, {"CallSid": "CA2", "Digits": "1234"}, NOW)
    assert "Done, 42." in back.twiml and serialised[0] == counted + 1


def test_a_crossing_document_with_templates_is_serialised_per_call(tmp_path, serialised):
    built = engines(tmp_path, greeting='"Hello {{ call.From }}."')
    one = enter(built["caller"], From="+15550001")
    two = enter(built["caller"], "CA2", From="+15550002")
    assert "Hello +15550001." in one.twiml and "Hello +15550002." in two.twiml
    assert serialised[0] >= 2


def test_a_crossing_document_is_the_callers_versions_own(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = engines(tmp_path / "a", "Hello.")
    new = engines(tmp_path / "b", "Hi there.")
    pin = new["pin"] = old["pin"]  # one subflow engine, called by both versions: each gets its own document
    answers = [enter(built["caller"]).twiml for built in (old, new, old, new)]
    assert answers[:2] == answers[2:]
    assert "Hello." in answers[0] and "Hi there." in answers[1]
    uncached = Engine(pin.flow).renderer.document(
        [("ask", "enter")], [None], [old["caller"].renderer.verbs(n, "enter", None) for n in ("hello", "verify")]
    )
    assert answers[0] == uncached


def _slow(source: str, context: dict):
    return number_or_text(render(compile_text(source), context))


VALUES = ["abc", "", "42", "042", "-7", "2.50", "2.5", "1e5", " 3", "+1555", "\ud800", 0, -3, 10**14, 10**20,
          2.5, -0.0, 1e16, 1e-7, 0.1 + 0.2, math.inf, math.nan, True, None, Markup("<b>"), [1], {"a": 1}]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("source", ["{{ x }}", "{{x}}", "{{- x -}}", "{{ x }}{# note #}", "{{ x }} "])
def test_a_pass_through_value_is_what_rendering_it_gives(source, value):
    context = {"x": value}
    got = value_of(f.Text(source, None, compile_text(source)), context, "here")
    want = _slow(source, context)
    assert type(got) is type(want)
    assert got == want or (isinstance(got, float) and math.isnan(got) and math.isnan(want))


@pytest.mark.parametrize("source", ["{{ x }}", "{{ true }}", "{{ range }}", "{{ x.y }}", "{{ x | upper }}"])
def test_names_the_context_does_not_hold_and_other_templates_are_rendered(source):
    context = {"true": "shadow", "x": "a"}
    assert value_of(f.Text(source, None, compile_text(source)), {**context, "x": "a"}, "here") == _slow(source, context)
    assert value_of(f.Text("{{ missing }}", None, compile_text("{{ missing }}")), {}, "here") == ""
    assert value_of(f.Text("plain", None), {}, "here") == "plain"


def test_a_pass_through_str_or_number_is_not_rendered(monkeypatch):
    def refuse(*args):
        raise AssertionError("rendered")

    monkeypatch.setattr("ivr.core.templates.render", refuse)
    text = f.Text("{{ account }}", None, compile_text("{{ account }}"))
    assert value_of(text, {"account": "123456"}, "here") == 123456
    assert value_of(text, {"account": "0123"}, "here") == "0123"
    assert value_of(text, {"account": 2.5}, "here") == 2.5


def test_a_url_template_is_always_rendered():
    text = f.Text("{{ x }}", None, compile_text("{{ x }}", url=True))
    assert value_of(text, {"x": "a b/c"}, "here") == "a%20b%2Fc"
