"""YAML for imported flows, written the way a person writes flow files.

PyYAML's dumper quotes too much, sorts keys and cannot put a comment above a state, so the
importer writes its own small subset: block mappings for the file and its states, flow-style
`{a: b}` and `[a, b]` for short maps and lists of plain values, comments above each state, and
quotes only where YAML would otherwise read the text as something else (`"1"`, `"yes"`, `"{{ x }}"`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = ["dump_flow", "scalar"]

WIDTH = 100  # a flow-style map or list longer than this is written as a block
_PLAIN_START = re.compile(r"^[-?:,\[\]{}#&*!|>'\"%@`\s]")
_FLOW_UNSAFE = re.compile(r"[,\[\]{}]")


def scalar(value: Any, *, in_flow: bool = False) -> str:
    """One value as YAML: plain when it reads back as the same text, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _plain(text, in_flow):
        return text
    if '"' in text and "'" not in text and "\\" not in text and "\n" not in text:
        return "'" + text + "'"
    return json.dumps(text, ensure_ascii=False)


def _plain(text: str, in_flow: bool) -> bool:
    if not text or text != text.strip() or "\n" in text or _PLAIN_START.match(text):
        return False
    if ": " in text or " #" in text or "{" in text or text.endswith(":") or (in_flow and _FLOW_UNSAFE.search(text)):
        return False
    try:
        return yaml.safe_load(text) == text  # "1", "yes", "null", "1e3", "0x10" read back as something else
    except yaml.YAMLError:
        return False


def _inline(value: Any) -> str | None:
    """A short map or list of plain values in flow style, or None when it belongs in a block."""
    if isinstance(value, Mapping):
        parts = []
        for key, item in value.items():
            inner = _inline(item) if isinstance(item, (Mapping, list, tuple)) else scalar(item, in_flow=True)
            if inner is None:
                return None
            parts.append(f"{scalar(key, in_flow=True)}: {inner}")
        text = "{" + ", ".join(parts) + "}"
    elif isinstance(value, (list, tuple)):
        if any(isinstance(item, (Mapping, list, tuple)) for item in value):
            return None
        text = "[" + ", ".join(scalar(item, in_flow=True) for item in value) + "]"
    else:
        return scalar(value)
    return text if len(text) <= WIDTH else None


def _block(key: str, value: Any, indent: int) -> list[str]:
    pad = " " * indent
    head = f"{pad}{scalar(key)}:"
    if not isinstance(value, (Mapping, list, tuple)):
        return [f"{head} {scalar(value)}"]
    inline = _inline(value)
    if inline is not None and len(head) + 1 + len(inline) <= WIDTH + indent:
        return [f"{head} {inline}"]
    if not value:
        return [f"{head} {'{}' if isinstance(value, Mapping) else '[]'}"]
    lines = [head]
    if isinstance(value, Mapping):
        for sub, item in value.items():
            lines.extend(_block(sub, item, indent + 2))
    else:
        lines.extend(_item(item, indent + 2) for item in value)
    return lines


def _item(value: Any, indent: int) -> str:
    """A list item: `- value`, or a map item whose first key shares the dash's line."""
    pad = " " * indent
    if not isinstance(value, Mapping) or not value:
        inline = _inline(value)
        return f"{pad}- {inline if inline is not None else json.dumps(value, ensure_ascii=False)}"
    lines: list[str] = []
    for n, (key, item) in enumerate(value.items()):
        written = _block(key, item, indent + 2)
        if n == 0:
            written[0] = f"{pad}- {written[0].lstrip()}"
        lines.extend(written)
    return "\n".join(lines)


def _comment(line: str, indent: int) -> str:
    return (" " * indent + "# " + line).rstrip() if line else " " * indent + "#"


def dump_flow(
    header: Mapping[str, Any],
    states: Mapping[str, Mapping[str, Any]],
    comments: Mapping[str, Sequence[str]] | None = None,
    top: Sequence[str] = (),
) -> str:
    """A flow file: `top` comment lines, the header keys, then each state with its comments above it."""
    comments = comments or {}
    lines = [_comment(line, 0) for line in top]
    for key, value in header.items():
        lines.extend(_block(key, value, 0))
    lines.append("states:")
    for n, (name, state) in enumerate(states.items()):
        if n:
            lines.append("")  # a blank line between states, as people space them
        lines.extend(_comment(line, 2) for line in comments.get(name, ()))
        if not state:
            lines.append(f"  {scalar(name)}: {{}}")
            continue
        lines.append(f"  {scalar(name)}:")
        for key, value in state.items():
            lines.extend(_block(key, value, 4))
    return "\n".join(lines) + "\n"
