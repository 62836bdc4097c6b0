"""The importer's model: a Studio Flow Definition read into widgets, and what converting them shares.

A Flow Definition (what Studio exports, and what the REST API's revisions hold) is
`{"description", "states": [...], "initial_state": "Trigger", "flags": {...}}`; each state is a
widget `{"name", "type", "properties", "transitions": [{"event", "next", "conditions"}]}`.

Each widget type has one converter (registered with `@converts`) that turns a `Widget` into a
`Piece`: the flow states it becomes, with the comments written above them. Converters meet only
the `Context`: state names, transition targets, templates, reports. How a later widget reads a
widget's results (`{{widgets.gather.Digits}}`) is registered per type with `@reads`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.errors import StudioError

__all__ = [
    "CONVERTERS",
    "OUTPUTS",
    "Condition",
    "Context",
    "Definition",
    "Piece",
    "Report",
    "Transition",
    "Widget",
    "converts",
    "flag",
    "number",
    "read_definition",
    "reads",
    "strings",
]


@dataclass(frozen=True)
class Condition:
    """One condition of a split's transition: `{friendly_name, arguments, type, value}`."""

    friendly_name: str
    type: str
    arguments: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class Transition:
    event: str
    next: str | None  # the widget it leads to; None (or "") ends the execution
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Widget:
    index: int  # its place in the definition's `states` list: reports say `states[7]`
    name: str
    type: str
    properties: Mapping[str, Any]
    transitions: tuple[Transition, ...]

    def prop(self, key: str, default: Any = None) -> Any:
        """A property, with `default` when it is missing, null or empty text (Studio writes all three)."""
        value = self.properties.get(key)
        return default if value is None or value == "" else value

    def next(self, event: str) -> str | None:
        """The widget the first transition named `event` leads to; None when it ends the execution."""
        for transition in self.transitions:
            if transition.event == event:
                return transition.next or None
        return None

    def texts(self) -> Iterator[str]:
        """Every text the widget holds: its properties' and its split conditions' (where Liquid may be)."""
        yield from strings(self.properties)
        for transition in self.transitions:
            for condition in transition.conditions:
                yield from strings([*condition.arguments, condition.value])


def number(value: Any) -> int | None:
    """A Studio number property, written as a number or as text ("30"); None when it is neither."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def flag(value: Any, default: bool | None = None) -> bool | None:
    """A Studio switch: true/false as JSON booleans or as the texts "true"/"false"; else `default`."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text == "true" else False if text == "false" else default


def strings(value: Any) -> Iterator[str]:
    """Every text in a JSON-like value: itself, or those in its mappings' values and lists, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


@dataclass(frozen=True)
class Definition:
    source: str  # how reports name the definition: a file name, or the flow's SID
    description: str
    initial_state: str
    widgets: tuple[Widget, ...]
    flags: Mapping[str, Any]

    def widget(self, name: str | None) -> Widget | None:
        return next((w for w in self.widgets if w.name == name), None) if name else None


def read_definition(data: Any, source: str) -> Definition:
    """Read a parsed Flow Definition; StudioError says what is not a definition and where."""
    if not isinstance(data, Mapping) or not isinstance(data.get("states"), list):
        raise StudioError(f"{source}: not a Studio Flow Definition: it needs a list of widgets under 'states'")
    widgets = []
    for index, raw in enumerate(data["states"]):
        where = f"{source}: states[{index}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("type"), str):
            raise StudioError(f"{where}: a widget needs a text 'name' and 'type'")
        properties = raw.get("properties") or {}
        transitions = raw.get("transitions") or []
        if not isinstance(properties, Mapping) or not isinstance(transitions, list):
            raise StudioError(f"{where} {raw['name']!r}: 'properties' must be an object and 'transitions' a list")
        widgets.append(
            Widget(index, raw["name"], raw["type"], dict(properties), tuple(_transitions(transitions, where)))
        )
    names = [w.name for w in widgets]
    for name in names:
        if names.count(name) > 1:
            raise StudioError(f"{source}: two widgets are named {name!r}; Studio names are unique")
    initial = data.get("initial_state") or "Trigger"
    if initial not in names:
        raise StudioError(f"{source}: initial_state {initial!r} is not a widget of the definition")
    return Definition(
        source, str(data.get("description") or ""), initial, tuple(widgets), dict(data.get("flags") or {})
    )


def _transitions(raw: list, where: str) -> Iterator[Transition]:
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("event"), str):
            raise StudioError(f"{where}: a transition needs an 'event'")
        conditions = tuple(
            Condition(
                str(c.get("friendly_name") or ""),
                str(c.get("type") or ""),
                tuple(str(a) for a in c.get("arguments") or ()),
                "" if c.get("value") is None else str(c.get("value")),
            )
            for c in item.get("conditions") or ()
            if isinstance(c, Mapping)
        )
        yield Transition(item["event"], item.get("next") or None, conditions)


@dataclass(frozen=True)
class Report:
    """Something the importer could not carry over as Studio had it, and what it did instead."""

    source: str
    index: int
    name: str
    type: str
    message: str
    note: bool = False  # changes nothing a call does (a widget no call reaches in Studio either): --strict passes

    def format(self) -> str:
        return f'{self.source}: states[{self.index}] "{self.name}" ({self.type}): {self.message}'


@dataclass
class Piece:
    """What one widget becomes: flow states in the order they are written, each with comments above it."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, state: dict[str, Any], *comments: str) -> Piece:
        self.states[name] = state
        if comments:
            self.comments.setdefault(name, []).extend(comments)
        return self


Converter = Callable[[Widget, "Context"], Piece]
Reader = Callable[[Widget, str, "Context"], "str | None"]
CONVERTERS: dict[str, Converter] = {}
OUTPUTS: dict[str, Reader] = {}


def converts(*types: str) -> Callable[[Converter], Converter]:
    """Register the converter of one or more widget types (`"say-play"`)."""

    def register(function: Converter) -> Converter:
        for kind in types:
            CONVERTERS[kind] = function
        return function

    return register


def reads(*types: str) -> Callable[[Reader], Reader]:
    """Register how `{{widgets.W.PATH}}` reads for widgets of these types: `reader(widget, PATH, ctx)`
    returns a template expression of the flow language (`input.digits`), or None when the result
    has no equivalent (the caller of the reader reports it)."""

    def register(function: Reader) -> Reader:
        for kind in types:
            OUTPUTS[kind] = function
        return function

    return register


_WIDGET_REF = re.compile(r"\bwidgets\.([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+|\[[^\]]*\])*)")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")
RESERVED_STATES = frozenset({"repeat", "back", "hangup"})


class Context:
    """What converters share: names, targets, templates and reports for one definition."""

    END = "end"  # the state an empty transition leads to: Studio ends the execution, and the call
    ERROR = "error"  # the flow's error_state, and where a widget without a failure transition fails

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.reports: list[Report] = []
        self.names = _state_names(definition.widgets)
        self.absorbed: dict[str, str] = {}  # widget name -> the widget whose state took it over
        self.needed: set[str] = set()  # END and ERROR, once something leads there
        self.defaults: dict[str, Any] = {}  # the flow's `defaults:` (voice, language...) a converter sets
        self.extras: dict[str, Any] = {}  # flow-level keys a converter sets (`start`, `inputs`...)
        self.references = _references(definition)

    # --- names and targets ---------------------------------------------------------------------

    def state(self, widget: Widget | str) -> str:
        """The state name a widget becomes (made valid and unique)."""
        return self.names[widget if isinstance(widget, str) else widget.name]

    def target(self, widget: Widget, event: str) -> str:
        """Where `event` of `widget` leads, as a state name: the next widget's state (or the state
        that absorbed it), or END when Studio would end the execution there."""
        name = widget.next(event)
        if name is not None and self.definition.widget(name) is None:
            self.report(
                widget, f"{event} leads to {name!r}, which is no widget of the definition; it goes to the error state"
            )
            return self.error_state()
        return self.state_of(name)

    def state_of(self, widget_name: str | None) -> str:
        if widget_name is None or self.definition.widget(widget_name) is None:
            self.needed.add(self.END)
            return self.END
        while widget_name in self.absorbed:
            widget_name = self.absorbed[widget_name]
        return self.state(widget_name)

    def failure(self, widget: Widget, *events: str) -> str:
        """The target of the first of `events` that leads somewhere, else the error state: an
        unconverted or failing widget never takes its success path."""
        for event in events:
            if widget.next(event):
                return self.target(widget, event)
        self.needed.add(self.ERROR)
        return self.ERROR

    def todo(self, widget: Widget, what: str, *failures: str, todo: str | None = None) -> Piece:
        """The marked state of what cannot be carried over (the one home of that rule): it takes the
        first of `failures` that leads somewhere, else the error state, never the widget's success
        (skipping a PIN check or a payment must not look like passing it); `check` warns of its
        `todo:` (`todo`, else `what`), and the import reports `what`."""
        target = self.failure(widget, *failures)
        self.report(widget, f"{what}; marked todo, going to {target!r}")
        return Piece().add(self.state(widget), {"todo": todo or what, "next": target})

    def error_state(self) -> str:
        self.needed.add(self.ERROR)
        return self.ERROR

    def sources(self, widget_name: str) -> list[tuple[Widget, str]]:
        """Every (widget, event) whose transition leads to `widget_name`."""
        return [(w, t.event) for w in self.definition.widgets for t in w.transitions if t.next == widget_name]

    def absorb(self, widget: Widget, into: Widget) -> None:
        """`widget` is written as part of `into`'s state (a split that becomes a menu's routes)."""
        self.absorbed[widget.name] = into.name

    # --- reports and reading results -----------------------------------------------------------

    def report(self, widget: Widget, message: str, *, note: bool = False) -> None:
        self.reports.append(Report(self.definition.source, widget.index, widget.name, widget.type, message, note))

    def uses(self, widget: Widget) -> set[str]:
        """The paths other widgets read of this one's results: `{"Digits", "parsed.order.status"}`."""
        return self.references.get(widget.name, set())

    def output(self, widget_name: str, path: str) -> str | None:
        """The template expression that reads `widgets.<widget_name>.<path>`, or None."""
        widget = self.definition.widget(widget_name)
        reader = OUTPUTS.get(widget.type) if widget else None
        return reader(widget, path, self) if reader else None


def _state_names(widgets: tuple[Widget, ...]) -> dict[str, str]:
    """Widget names made into state names: lower case, `[a-z0-9_]`, unique, never a reserved name."""
    taken = {Context.END, Context.ERROR} | RESERVED_STATES
    names: dict[str, str] = {}
    for widget in widgets:
        base = _UNSAFE.sub("_", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", widget.name)).strip("_").lower() or "state"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names[widget.name] = name
    return names


def _references(definition: Definition) -> dict[str, set[str]]:
    """Every `widgets.NAME.PATH` written anywhere in the definition, by widget name."""
    found: dict[str, set[str]] = {}
    for widget in definition.widgets:
        for text in widget.texts():
            for match in _WIDGET_REF.finditer(text):
                found.setdefault(match.group(1), set()).add(match.group(2).lstrip("."))
    return found
