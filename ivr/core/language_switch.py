"""Switching a call's language as it goes: a state's `language:`, or a hook's answer."""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.templates import render

__all__ = ["matching_language", "switch_language"]


def matching_language(offered, value: str) -> str | None:
    """The offered language `value` names: exactly, in another case (es-mx), or by its language alone (es)."""
    if value in offered:
        return value
    lowered = value.strip().lower().replace("_", "-")
    for tag in offered:
        if tag.lower() == lowered:
            return tag
    for tag in offered:
        if tag.lower().split("-")[0] == lowered:
            return tag
    return None


def switch_language(flow: f.Flow, call, text: f.Text) -> None:
    """The call goes on in the language `text` names (rendered when it is a template), when the flow offers
    it; a language it does not offer leaves the call in the one it speaks (the loader refuses such a
    literal, so only a template's or a hook's value can name one)."""
    value = text.source if text.template is None else render(text.template, call.context(), f"{text.pos}: language")
    tag = matching_language(flow.localized, str(value))
    if tag is not None and call.session.get("language") != tag:
        call.session["language"] = tag
        call.changed()
