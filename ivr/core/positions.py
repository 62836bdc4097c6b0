"""Where things are written: a position in a flow file, and a string with its position and template.

Part of the flow model (`ivr.core.flow` re-exports both); the other parts of the model build on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Pos", "Text"]


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node starts: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Text:
    """A string as written, with its compiled template when it has `{{ }}` markup."""

    source: str
    pos: Pos
    template: object | None = field(default=None, compare=False, repr=False)
    path: str = field(default="", compare=False, repr=False)  # the key path, for messages about it
