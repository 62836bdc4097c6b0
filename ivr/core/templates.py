"""Author templates: `{{ ... }}` in Say text, URLs and numbers, and `when:` conditions.

Templates are compiled once when a flow loads, in Jinja's immutable sandbox. What a caller says or
types reaches a template only as data: a SpeechResult of `{{7*7}}` is a string value, never
re-rendered, and the TwiML builder escapes it as XML text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from ivr.errors import FlowRuntimeError, TemplateProblem

__all__ = [
    "compile_condition",
    "compile_text",
    "evaluate",
    "is_template",
    "number_or_text",
    "open_names",
    "parse_condition",
    "parse_text",
    "render",
    "unknown_variables",
    "value_of",
]


def _url_value(value) -> str:
    """A value substituted into a URL: percent-encoded whole, so that it cannot add a path, query or fragment."""
    if isinstance(value, Markup):  # `{{ recording.url | safe }}`: the author vouches for a whole URL
        return str(value)
    encoded = quote("" if value is None else str(value), safe="")
    if encoded.strip(".") == "" and encoded:  # `.` and `..` stay dot segments even encoded (%2E is read as .)
        raise ValueError(f"{encoded!r} cannot be a part of a URL")
    return encoded


_env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)
# Templates whose text is a URL (play, redirect url, enqueue wait_url): every value they substitute is encoded.
_url_env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False, finalize=_url_value)


def _matching(value, pattern) -> bool:
    """`x is matching("^[0-9]+$")`: whether a regular expression (Python's) matches anywhere in the value's text."""
    return re.search(str(pattern), "" if value is None else str(value)) is not None


for _environment in (_env, _url_env):
    _environment.tests["matching"] = _matching


def is_template(text: str) -> bool:
    """Whether the text has Jinja markup and must be rendered per call."""
    return "{{" in text or "{%" in text or "{#" in text


def _check_safe(tree: nodes.Node) -> None:
    # The sandbox also refuses these at run time; refusing at load tells the author where.
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else ""
        elif isinstance(node, nodes.Name):
            name = node.name
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            first = node.args[0] if node.args else None
            if not (isinstance(first, nodes.Const) and isinstance(first.value, str)):
                raise TemplateProblem("the attr filter needs a plain attribute name")
            name = first.value
        else:
            continue
        if name.startswith("_"):
            raise TemplateProblem(f"'{name}' is not allowed in templates (names starting with '_' are private)")


def parse_text(source: str) -> nodes.Template:
    """The syntax tree of a text template (for checks that read it, not for rendering)."""
    return _env.parse(source)


def parse_condition(source: str) -> nodes.Template:
    """The syntax tree of a `when:` expression."""
    return _env.parse("{{ (" + source + ") }}")


def open_names(tree: nodes.Template) -> set[str]:
    """The schedules a template or condition asks about: the names in `open('name')` calls."""
    calls = [c for c in tree.find_all(nodes.Call) if isinstance(c.node, nodes.Name) and c.node.name == "open"]
    return {a.value for c in calls for a in c.args if isinstance(a, nodes.Const) and isinstance(a.value, str)}


def unknown_variables(tree: nodes.Template, known: set[str]) -> set[str]:
    """The names a template reads that are neither in `known` nor the sandbox's own globals."""
    return meta.find_undeclared_variables(tree) - known - set(_env.globals)


def compile_text(source: str, *, url: bool = False):
    """Compile a text template (`url`: one that renders a URL, its values percent-encoded); raise
    TemplateProblem with a readable reason."""
    try:
        _check_safe(_env.parse(source))
        return (_url_env if url else _env).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax: {exc.message}") from None


def compile_condition(source: str):
    """Compile a `when:` expression into a callable of the template context."""
    try:
        _check_safe(_env.parse("{{ (" + source + ") }}"))
        return _env.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"condition syntax: {exc.message}") from None


def render(template, context: dict, where: str = "template") -> str:
    """Render a compiled template; any failure becomes FlowRuntimeError naming `where` (file:line:col)."""
    try:
        return template.render(context)
    except SecurityError as exc:
        raise FlowRuntimeError(f"{where}: template refused by the sandbox: {exc}") from None
    except Exception as exc:
        raise FlowRuntimeError(f"{where}: template failed: {type(exc).__name__}: {exc}") from None


def evaluate(condition, context: dict, where: str = "condition") -> bool:
    """Evaluate a compiled `when:` expression; a failure becomes FlowRuntimeError naming `where`."""
    try:
        return bool(condition(**context))
    except Exception as exc:
        raise FlowRuntimeError(f"{where}: condition failed: {type(exc).__name__}: {exc}") from None


_CANONICAL_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\Z")


def number_or_text(value: str):
    """A rendered `set:` value, subflow input or returned value: a plain number becomes a number (so
    `when: x > 2` compares numbers); anything else, "0123" and "+15551230000" included, stays text."""
    if _CANONICAL_NUMBER.match(value):
        number = float(value) if "." in value else int(value)
        if str(number) == value:  # "2.50" would read back as 2.5: keep it as written
            return number
    return value


@lru_cache(maxsize=4096)
def _lone_variable(source: str) -> str | None:
    """The variable a template is exactly one reference to (`{{ name }}`, spaces and comments aside), else None."""
    body = _env.parse(source).body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1:
        node = body[0].nodes[0]
        if isinstance(node, nodes.Name) and node.ctx == "load":
            return node.name
    return None


def value_of(text, context: dict, where: str):
    """A `set:` value, subflow input or returned value (an `ivr.core.flow.Text`) as the call gets it: its
    source without a template, else its rendering through `number_or_text`.

    A template that only names a variable (`{{ account }}`) holding a str, an int or a float is not
    rendered: Jinja renders such a value as `str(value)`, so `number_or_text` of that text is the same
    value without the render. Anything else (a missing name, None, a bool, a str subclass, a
    list, a URL template) is rendered."""
    template = text.template
    if template is None:
        return text.source
    if template.environment is _env:
        name = _lone_variable(text.source)
        value = context.get(name) if name is not None else None
        kind = type(value)
        if kind is str:
            return number_or_text(value)
        if (kind is int or kind is float) and -(10**15) < value < 10**15:  # str() of a huge int fails: render
            return number_or_text(str(value))
    return number_or_text(render(template, context, where))
