"""The cost of crossing into a subflow and back: a pass-through value (`{{ name }}`) is read, not
rendered, when that gives exactly what rendering gives."""

from __future__ import annotations

import math

import pytest
from markupsafe import Markup

from ivr.core import flow as f
from ivr.core.templates import compile_text, number_or_text, render, value_of


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
