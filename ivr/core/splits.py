"""A/B splits (`split:`): which variant a caller hears, chosen deterministically and stickily. No I/O.

The same caller always lands in the same variant of the same split: the choice is a hash of the
flow, the split state and the caller's number (the number called, on an outbound call), or of the
CallSid when the number is withheld. The hash's first 8 bytes, big-endian, modulo 100 give a
bucket from 0 to 99, mapped through the variants' shares in the order the flow writes them: with
`{greeting_new: 90, greeting_old: 10}`, buckets 0-89 hear greeting_new and 90-99 greeting_old.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ivr.core import flow as f

__all__ = ["ANONYMOUS", "SPLIT_EVENT", "bucket", "caller_key", "caller_number", "choose", "is_anonymous", "split_event"]

SPLIT_EVENT = "split"  # a variant's event is "split:<state>": one per variant, so graphs label their edges
# What Twilio puts in From (To) when the number is withheld: words, and the placeholder numbers it
# shows for anonymous callers.
ANONYMOUS = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "unavailable"}
    | {"+266696687", "+86282452253", "+7378742833", "+2562533"}
)


def split_event(target: str) -> str:
    """The machine's event that takes a split state to its variant `target`."""
    return f"{SPLIT_EVENT}:{target}"


def is_anonymous(number: str | None) -> bool:
    """Whether a From (To) value names no caller: empty, withheld, or one of Twilio's placeholders."""
    return (number or "").strip().lower() in ANONYMOUS


def caller_number(params: Mapping[str, str]) -> str | None:
    """The other party's number (From inbound; To when Direction starts with "outbound"); None when withheld."""
    outbound = (params.get("Direction") or "").startswith("outbound")
    number = params.get("To" if outbound else "From")
    return None if is_anonymous(number) else (number or "").strip()


def caller_key(params: Mapping[str, str]) -> str:
    """What a split is keyed by: the other party's number, or the CallSid when that number is withheld."""
    number = caller_number(params)
    return (params.get("CallSid") or "") if number is None else number


def bucket(flow_id: str, state: str, key: str) -> int:
    """The caller's bucket (0-99) in a split: sha256 of flow, state and key, its first 8 bytes mod 100."""
    digest = hashlib.sha256(f"{flow_id}\x00{state}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def choose(variants: tuple[f.Variant, ...], at: int) -> str:
    """The variant whose cumulative share covers bucket `at` (shares sum to 100; the last takes any rest)."""
    total = 0
    for variant in variants:
        total += variant.share
        if at < total:
            return variant.target
    return variants[-1].target
