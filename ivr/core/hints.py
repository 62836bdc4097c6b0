"""How problems are worded: the dotted key path to the bad key, and a did-you-mean suggestion."""

from __future__ import annotations

import difflib
import re

__all__ = ["did_you_mean", "path_join"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def path_join(path: str, key: str | int) -> str:
    """Extend a dotted key path; keys that are not plain words are quoted: routes."1"."""
    if isinstance(key, int):
        part = f"[{key}]"
        return f"{path}{part}" if path else part
    part = key if _PLAIN_KEY.fullmatch(key) else f'"{key}"'
    return f"{path}.{part}" if path else part


def did_you_mean(word: str, options) -> str:
    """A ' (did you mean 'x'?)' suffix when something close exists, else ''."""
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
