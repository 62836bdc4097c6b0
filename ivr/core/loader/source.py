"""YAML text -> positioned nodes, read under the flow language's rules.

The loader composes YAML into nodes (never constructs Python objects from tags) and the flow
reader turns nodes into typed values itself. That gives every value its file:line:col and lets
the language use YAML 1.2 scalars: `yes`, `no`, `on` and `off` are strings, `01` written as an
outcome key stays the string "01", and a duplicate key is an error instead of last-wins.
"""

from __future__ import annotations

import re

import yaml

from ivr.core.flow import Pos
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.indentation import TAB, misindented_line, tab_in_indentation
from ivr.errors import FlowError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "Reader",
    "check_limits",
    "compose",
    "core_scalar",
    "describe",
    "key_paths",
    "pos_of",
]

try:  # libyaml's composer is several times faster on large flows
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_MERGE_TAG = "tag:yaml.org,2002:merge"
# YAML 1.2 core schema: only these spellings are booleans, nulls and numbers.
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")


def pos_of(file: str, node: yaml.Node) -> Pos:
    """The 1-based position of a YAML node."""
    mark = node.start_mark
    return Pos(file, mark.line + 1, mark.column + 1)


# Limits no real flow meets (a 10,000-state flow is 1.6 MB and nests 8 deep), checked before the
# composer runs: libyaml's recurses once per level, and 30,000 nested brackets (60 kB) overflow its
# stack, killing the process (check, start-up, a hot reload under calls in progress).
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64  # mappings and lists inside one another
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def check_limits(text: str, file: str) -> None:
    """Raise FlowError where a YAML text crosses MAX_FILE_BYTES or MAX_DEPTH, without composing it.

    Depth is counted on libyaml's event stream, whose parser keeps its own stack instead of recursing.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        at = len(text.encode("utf-8", "surrogatepass")[:MAX_FILE_BYTES].decode("utf-8", "ignore"))
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        message = f"the file is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,}: split it into several flows"
        raise FlowError(file, line, column, "", message)
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                message = f"mappings and lists nest more than {MAX_DEPTH} deep here; no flow needs that many levels"
                raise FlowError(file, mark.line + 1, mark.column + 1, "", message)
        elif isinstance(event, _CLOSE):
            depth -= 1


def compose(text: str, file: str) -> yaml.Node | None:
    """Parse one YAML document into nodes; raise FlowError at the syntax error's or the crossed limit's position."""
    try:
        check_limits(text, file)
        loader = _Loader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        # At the end of the file, where a construct was opened (a quote, a bracket) says more.
        if exc.context_mark and (mark is None or "end of stream" in problem):
            mark = exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if exc.context and exc.context_mark:
            problem = f"{problem} ({exc.context} at line {exc.context_mark.line + 1})"
        lines = text.splitlines()
        tabbed = mark and ("tab" in problem or "cannot start any token" in problem)
        if tabbed and (tab := tab_in_indentation(lines, mark.line)):
            raise FlowError(file, *tab, "", f"YAML syntax: {TAB}") from None
        if "mapping values are not allowed" in problem:
            if mark and (misplaced := misindented_line(lines, mark.line)):
                raise FlowError(file, misplaced[0], misplaced[1], "", f"YAML indentation: {misplaced[2]}") from None
            problem += "; text with ': ' in it must be quoted"
        raise FlowError(file, line, col, "", f"YAML syntax: {problem}") from None
    except yaml.YAMLError as exc:
        raise FlowError(file, 1, 1, "", f"YAML: {exc}") from None


class Reader:
    """Collects every problem found while reading a file's nodes, with positions and key paths."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[FlowError] = []

    # -- reporting ---------------------------------------------------------------------------

    def error(self, node_or_pos, path: str, message: str, severity: str = "error") -> None:
        """Record one problem at a node (or a Pos)."""
        pos = node_or_pos if isinstance(node_or_pos, Pos) else pos_of(self.file, node_or_pos)
        self.errors.append(FlowError(pos.file, pos.line, pos.column, path, message, severity))

    def pos(self, node: yaml.Node) -> Pos:
        """The node's position in this file."""
        return pos_of(self.file, node)

    # -- shapes ------------------------------------------------------------------------------

    def mapping(self, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping node as {key: (key_node, value_node)}, keys as written; None after an error."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, f"expected a mapping, got {describe(node)}")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in _merged_pairs(node):
            if not isinstance(key_node, yaml.ScalarNode) or (key_node.value == "" and not key_node.style):
                self.error(key_node, path, f"keys must be plain text, got {describe(key_node)}")
                continue
            key = key_node.value
            if key in out:
                first = self.pos(out[key][0])
                self.error(key_node, path_join(path, key), f"duplicate key (first defined at line {first.line})")
                continue
            out[key] = (key_node, value_node)
        return out

    def known_keys(self, items: dict, allowed, path: str) -> None:
        """Report every key that is not in `allowed`, with a did-you-mean."""
        for key, (key_node, value_node) in items.items():
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                if not hint and " " in key and isinstance(value_node, yaml.ScalarNode) and value_node.value == "":
                    hint = " (inside {...} a comma ends a value: put text with commas in quotes)"
                self.error(key_node, path_join(path, key), f"unknown key{hint}")

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node] | None:
        """A sequence node's items; None after an error."""
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, path, f"expected a list, got {describe(node)}")
            return None
        return list(node.value)

    # -- scalars -----------------------------------------------------------------------------

    def mappings(self, node: yaml.Node, path: str):
        """Each mapping in a sequence node, as (its node, its key path, its items); others are reported."""
        for i, item in enumerate(self.sequence(node, path) or ()):
            item_path = path_join(path, i)
            entry = self.mapping(item, item_path)
            if entry is not None:
                yield item, item_path, entry

    def string(self, node: yaml.Node, path: str, *, empty_ok: bool = False) -> str | None:
        """A scalar read as the text written (YAML 1.2: `no` is the string "no")."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, path, f"expected text, got {describe(node)}")
            return None
        if node.value == "" and not empty_ok:
            self.error(node, path, "must not be empty")
            return None
        return node.value

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        """true or false only (YAML 1.2: `yes`, `on` are not booleans)."""
        if isinstance(node, yaml.ScalarNode) and not node.style:
            if node.value in _TRUE:
                return True
            if node.value in _FALSE:
                return False
        shown = node.value if isinstance(node, yaml.ScalarNode) else describe(node)
        self.error(node, path, f"expected true or false, got '{shown}'")
        return None

    def number(
        self, node: yaml.Node, path: str, *, minimum: float = 0, maximum: float | None = None, integer: bool = True
    ) -> float | int | None:
        """A number in [minimum, maximum]; integers unless integer=False."""
        if isinstance(node, yaml.ScalarNode) and not node.style:
            text = node.value
            if _INT.match(text):
                value: float | int = int(text)
            elif not integer and _FLOAT.match(text):
                value = float(text)
            else:
                value = None  # type: ignore[assignment]
            if value is not None:
                if value < minimum or (maximum is not None and value > maximum):
                    upper = f" to {maximum}" if maximum is not None else " or more"
                    self.error(node, path, f"must be {minimum}{upper}, got {value}")
                    return None
                return value
        kind = "a whole number" if integer else "a number"
        shown = node.value if isinstance(node, yaml.ScalarNode) else describe(node)
        quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"') and _FLOAT.match(node.value)
        hint = " (quoted, it is text: remove the quotes)" if quoted else ""
        self.error(node, path, f"expected {kind}, got '{shown}'{hint}")
        return None

    def plain(self, node: yaml.Node, path: str):
        """A scalar under the YAML 1.2 core schema (null, bool, int, float, else text)."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, path, f"expected a single value, got {describe(node)}")
            return None
        return core_scalar(node)


def core_scalar(node: yaml.ScalarNode):
    """Resolve a scalar by the YAML 1.2 core schema."""
    text = node.value
    if node.style:  # quoted or block text is always a string
        return text
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text) and any(ch.isdigit() for ch in text):
        return float(text)
    return text


def describe(node: yaml.Node) -> str:
    """A short name of a node's kind, for messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.value == "" and not node.style:
        return "nothing"
    return f"'{node.value}'"


def _merged_pairs(node: yaml.MappingNode):
    """The node's key/value pairs with `<<: *anchor` merges expanded (explicit keys win)."""
    own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
    merged = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if isinstance(source, yaml.MappingNode):
                merged.extend(_merged_pairs(source))
    written = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
    seen: set[str] = set()
    extra = []
    for key_node, value_node in merged:
        if key_node.value in written or key_node.value in seen:
            continue
        seen.add(key_node.value)
        extra.append((key_node, value_node))
    return own + extra


def key_paths(text: str, file: str) -> dict[tuple[int, int], str]:
    """The key path of every value in a YAML document, by its 1-based line and column."""
    out: dict[tuple[int, int], str] = {}
    todo, seen = [(compose(text, file), "")], set()
    while todo:
        node, path = todo.pop()
        if id(node) in seen or not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [(v, path_join(path, k.value)) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
        else:
            children = [(v, path_join(path, i)) for i, v in enumerate(node.value)]
        for child, sub in children:
            out.setdefault((child.start_mark.line + 1, child.start_mark.column + 1), sub)
            todo.append((child, sub))
    return out
