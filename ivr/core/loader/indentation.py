"""What a YAML syntax error says when its cause is a tab or a line's indentation.

The parser reports where it got lost, which is often a line after the mistake, and in its own words
("found character that cannot start any token", "mapping values are not allowed"). Flow authors
make two such mistakes most: a tab where YAML wants spaces, and a key indented less (or more) than
the keys it belongs with. These functions name that mistake at its own line and column instead.
"""

from __future__ import annotations

import re

__all__ = ["TAB", "misindented_line", "tab_in_indentation"]

TAB = "a tab is not indentation in YAML: use spaces"
# `say: Hello`: a key with plain text after it, which a deeper line would continue
_KEY_WITH_TEXT = re.compile(r"\s*[^\s#:'\"{\[&*!|>-][^:#]*:\s+[^\s{\[|>'\"&*!#]")
_KEY = re.compile(r"\s*[^\s#:-][^:#]*:(\s|$)")


def tab_in_indentation(lines: list[str], line: int) -> tuple[int, int] | None:
    """The 1-based line and column of a tab in the indentation of `line` (0-based) or the line after it."""
    for number in (line, line + 1):
        if number < len(lines):
            text = lines[number]
            indentation = text[: len(text) - len(text.lstrip(" \t"))]
            if "\t" in indentation:
                return number + 1, indentation.index("\t") + 1
    return None


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _previous(lines: list[str], line: int) -> int | None:
    """The 0-based number of the last line before `line` that holds more than a comment."""
    for number in range(line - 1, -1, -1):
        stripped = lines[number].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return None


def misindented_line(lines: list[str], line: int) -> tuple[int, int, str] | None:
    """When a key on `line` (0-based) reads as more text of the `key: text` line above it, the line whose
    indentation is wrong (1-based line, column) and what to do; None when indentation is not the cause."""
    if line >= len(lines) or not _KEY.match(lines[line]):
        return None
    above = _previous(lines, line)
    if above is None or not _KEY_WITH_TEXT.match(lines[above]) or _indent(lines[line]) <= _indent(lines[above]):
        return None
    before = _previous(lines, above)
    here, there = _indent(lines[above]), _indent(lines[line])
    if before is not None and _indent(lines[before]) == there:
        # The key above is the odd one out: the lines on both sides of it agree with each other.
        message = f"line {above + 1} is indented {here} spaces, the lines around it {there}: indent it as they are"
        return above + 1, here + 1, message
    message = (
        f"line {line + 1} is indented {there} spaces, deeper than line {above + 1} ({here}), so it reads as more of"
        f" that line's text: indent it as the keys it belongs with"
    )
    return line + 1, there + 1, message
