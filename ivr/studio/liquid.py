"""Liquid, as Studio writes it, rewritten into the flow language's (Jinja) templates.

PLACEHOLDER (interface only): handles `{{ a.b.c }}` variables without filters or tags. The
importer's core replaces it with the full translation (filters, assign, if/else, for).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.studio.model import Context, Widget

__all__ = ["expression", "text", "variable"]

_OUTPUT = re.compile(r"\{\{\s*([A-Za-z0-9_.\-\[\]]+)\s*\}\}")


def text(ctx: Context, widget: Widget, value: str, where: str) -> str:
    """Studio text with Liquid (a say, a URL, a body) as flow-language template text; what has no
    equivalent is reported on `widget` (naming `where`, e.g. "say") and left out."""

    def one(match: re.Match) -> str:
        expr = variable(ctx, widget, match.group(1), where)
        return "" if expr is None else "{{ " + expr + " }}"

    return _OUTPUT.sub(one, value)


def expression(ctx: Context, widget: Widget, value: str, where: str) -> str | None:
    """A Studio value that names one variable (`{{widgets.menu.Digits}}`) as a Jinja expression
    (`input.digits`); None, reported, when it has no equivalent."""
    match = _OUTPUT.fullmatch(value.strip())
    return variable(ctx, widget, match.group(1), where) if match else None


def variable(ctx: Context, widget: Widget, path: str, where: str) -> str | None:
    """One Liquid variable path as a Jinja expression, or None (reported)."""
    head, _, rest = path.partition(".")
    if head == "widgets":
        name, _, attr = rest.partition(".")
        found = ctx.output(name, attr)
    elif head == "trigger" and rest.startswith("call."):
        found = "call." + rest[len("call.") :]
    elif head == "flow" and rest.startswith(("variables.", "data.")):
        found = rest.partition(".")[2]
    elif path == "contact.channel.address":
        found = 'call.From if call.Direction == "inbound" else call.To'
    else:
        found = None
    if found is None:
        ctx.report(widget, f"{where}: {{{{{path}}}}} has no equivalent in the flow language; left out")
    return found
