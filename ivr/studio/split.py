"""Split Based On: Studio's conditions as `when:` tests, and a split folded into the widget before it.

A split's transitions are tried in order; the first condition that matches wins, and `noMatch`
takes the rest: exactly `when:` (tried in order) with the state's `next` (Twilio's Split Based On
page, which also makes `matches any of` a comma-separated list, and says "Studio conditions are not
case-sensitive and automatically trim leading and trailing spaces of the values": text comparisons
(equal to, not equal to, matches any of, does not match any of, contains, does not contain, starts
with) ignore case and compare the trimmed subject with trimmed values). Where that page is silent,
these are the importer's choices, pinned by tests/test_studio_split.py:
- `regex` matches anywhere in the text (anchor it with ^ and $ to match the whole);
- `is blank` is empty or only spaces (a variable never set too), `is not blank` the opposite;
- `greater than` and `less than` compare numbers: a value that is not a number matches neither.

`absorb_split` is for converters whose widget is followed by a split reading its result: a gather
followed by a split on its Digits becomes one menu with routes (here), a connect-call-to followed by
a split on its DialCallStatus becomes a dial with outcome routes (ivr/studio/widgets_call.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from ivr.core.templates import compile_condition
from ivr.errors import TemplateProblem
from ivr.studio import liquid
from ivr.studio.model import Condition, Context, Piece, Widget, converts

__all__ = ["KEYS", "absorb_key_split", "absorb_split", "test"]

KEYS = re.compile(r"[0-9*#]+\Z")
_TEXT_NAMES = re.compile(r"(input\.(digits|speech)|call\.\w+)\Z")  # always text, never none
_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")
_EXACT = ("equal_to", "matches_any_of")


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _values(condition: Condition) -> list[str]:
    if condition.type in ("matches_any_of", "does_not_match_any_of"):
        return [v.strip() for v in condition.value.split(",") if v.strip()]
    return [condition.value.strip()]


def test(subject: str, condition: Condition) -> str | None:
    """The Jinja test of one Studio condition on the expression `subject`; None for a type Studio
    offers that the flow cannot test (reported by the caller)."""
    text = subject if _TEXT_NAMES.match(subject) else f"(({subject}) if ({subject}) is not none else '') | string"
    kind, values = condition.type, _values(condition)
    if kind in ("is_blank", "is_not_blank"):
        blank = f"not ({text} | trim)" if _TEXT_NAMES.match(subject) else f"not ({text}) | trim"
        return blank if kind == "is_blank" else f"not ({blank})"
    if kind in ("greater_than", "less_than"):
        if not _NUMBER.match(condition.value.strip()):
            return None
        op, number = (">" if kind == "greater_than" else "<"), text if _TEXT_NAMES.match(subject) else f"({text})"
        return f"{number} | float(none) is not none and {number} | float {op} {condition.value.strip()}"
    if kind == "regex":
        return f"{text} is matching({_quote(condition.value)})"
    folded = any(c.isalpha() for v in values for c in v)
    plain = _TEXT_NAMES.match(subject)
    trimmed = f"{text} | trim" if plain else f"({text}) | trim"
    lhs = f"{trimmed} | lower" if folded else trimmed
    values = [v.lower() for v in values] if folded else values
    one = _quote(values[0]) if values else '""'
    listed = "[" + ", ".join(_quote(v) for v in values) + "]"
    return {
        "equal_to": f"{lhs} == {one}",
        "not_equal_to": f"{lhs} != {one}",
        "matches_any_of": f"{lhs} in {listed}",
        "does_not_match_any_of": f"{lhs} not in {listed}",
        "contains": f"{one} in {lhs}",
        "does_not_contain": f"{one} not in {lhs}",
        "starts_with": f"({lhs})[:{len(values[0]) if values else 0}] == {one}",
    }.get(kind)


def _compiled(jinja: str | None) -> str | None:
    """The test, when the flow's sandbox compiles it (a subject the Liquid made odd may not)."""
    try:
        return None if jinja is None else (compile_condition(jinja) and jinja)
    except TemplateProblem:
        return None


@converts("split-based-on")
def split_based_on(widget: Widget, ctx: Context) -> Piece:
    """A split: each condition a `when:` test in Studio's order, noMatch the state's next."""
    source = str(widget.prop("input", ""))
    state: dict = {}
    if re.fullmatch(r"\s*\{\{.*?\}\}\s*", source, re.S):  # one variable: test it where it is
        subject = liquid.expression(ctx, widget, source, "input")  # (reported when it has no equivalent)
        if subject is None:  # tests on nothing would quietly send every caller to No Match
            state["todo"] = f"Studio's split reads {source.strip()}, which has no equivalent here: write its tests"
            subject = '""'
    elif "{" in (text := liquid.text(ctx, widget, source, "input")):  # text around variables: test what it renders
        subject = f"{ctx.state(widget)}_value"
        state["set"] = {subject: text}
    else:
        subject = _quote(text)
    tests = []
    for transition in widget.transitions:
        if transition.event == "noMatch":
            continue
        for condition in transition.conditions or ():
            if any(a.strip() != source.strip() for a in condition.arguments):  # Studio's exports repeat the input
                named = ", ".join(condition.arguments)
                what = f"the condition {condition.type} {condition.value!r} names {named}"
                ctx.report(widget, f"{what}; the split's input {source.strip()} is what is tested")
            jinja = _compiled(test(subject, condition))
            if jinja is None:
                what = f"the condition {condition.type} {condition.value!r} (to {transition.next!r})"
                ctx.report(widget, f"{what} has no equivalent; left out, the state is marked todo")
                state.setdefault("todo", f"Studio's split also had {what}: write it as a when: test")
                continue
            tests.append({"if": jinja, "next": ctx.state_of(transition.next)})
    if tests:
        state["when"] = tests
    state["next"] = ctx.target(widget, "noMatch")
    comment = f"Studio's split on {source.strip()}: conditions in order, No Match is next." if source else ""
    return Piece().add(ctx.state(widget), state, *([comment] if comment else []))


def absorb_split(
    widget: Widget,
    event: str,
    path: str,
    ctx: Context,
    *,
    accept: Callable[[str], bool] = lambda value: True,
    keys: Callable[[Condition], list[str] | None] | None = None,
) -> tuple[dict[str, str], str] | None:
    """Fold the split that `widget`'s `event` leads to into `widget`'s own state, when it can be.

    It can when the split tests `{{widgets.<widget>.<path>}}`, no other transition leads to it, and
    each of its conditions is `equal_to` or `matches_any_of` on values `accept` takes (or, with
    `keys`, each condition gives the route keys it stands for, None when it cannot). Returns
    `(routes, no_match)`: each value (as written, in Studio's order; the first condition naming a
    value wins) to the state it leads to, and the state of the split's No Match; the split is then
    absorbed (`ctx.absorb`), and its widget writes no state. None when it cannot (nothing absorbed:
    the split becomes a state of its own)."""
    split = ctx.definition.widget(widget.next(event))
    if split is None or split.type != "split-based-on" or split.name in ctx.absorbed:
        return None
    reads = re.fullmatch(r"\s*\{\{\s*widgets\.([\w-]+)\.([\w.]+)\s*\}\}\s*", str(split.prop("input", "")))
    if not reads or reads.group(1) != widget.name or reads.group(2) != path:
        return None
    if ctx.sources(split.name) != [(widget, event)]:
        return None
    routes: dict[str, str] = {}
    for transition in split.transitions:
        if transition.event == "noMatch":
            continue
        for condition in transition.conditions:
            values = keys(condition) if keys else _exact(condition, accept)
            if not values:
                return None
            for value in values:
                routes.setdefault(value, ctx.state_of(transition.next))
    if not routes:
        return None
    ctx.absorb(split, widget)
    return routes, ctx.state_of(split.next("noMatch"))


def absorb_key_split(widget: Widget, ctx: Context) -> tuple[dict[str, str], str] | None:
    """A gather's keypress split on its Digits as the gather's key routes (None when it cannot be)."""
    finish = str(widget.prop("finish_on_key", "#"))
    return absorb_split(widget, "keypress", "Digits", ctx, accept=lambda v: bool(KEYS.match(v)) and finish not in v)


def _exact(condition: Condition, accept: Callable[[str], bool]) -> list[str] | None:
    """The values an `equal_to` or `matches_any_of` condition names, when `accept` takes each."""
    values = _values(condition)
    return values if condition.type in _EXACT and values and all(accept(v) for v in values) else None
