"""What the journal keeps of people, and how it lets go: the analytics key, retention, erasure.

    key = analytics_key(settings)                      # IVR_ANALYTICS_KEY, or development's key file
    purge(db, before=time.time() - 90 * 86400)         # rows older than the retention
    forget_caller(db, key, "hash", "+15551234567")     # one caller's calls and every row of them

Callers are kept as `keyed_hash(key, number)` (ivr.analytics.rows): a salted hash of a phone number
falls to brute force (about 10^10 numbers per country code), a keyed one cannot be tried without the
key. So the app and every command that looks a caller up must hash with the same key: this module
is its one home.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.analytics.database import EventsDatabase
from ivr.analytics.rows import keyed_hash
from ivr.errors import ConfigError

__all__ = [
    "DAY",
    "KEY_FILE",
    "Erased",
    "analytics_key",
    "forget_caller",
    "key_file",
    "normalise_number",
    "purge",
]

DAY = 86400.0
KEY_FILE = "ivr-analytics.key"
_BATCH = 5000  # rows per delete: short transactions, so the writer never waits long for the database
_CHUNK = 500  # CallSids per IN (...) list
_SEPARATORS = re.compile(r"[\s\-().\u00a0]")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


@dataclass(frozen=True, slots=True)
class Erased:
    """What a purge or an erasure deleted from the journal: calls, events, and which calls they were."""

    calls: int = 0
    events: int = 0
    call_sids: tuple[str, ...] = ()


def key_file(settings: Mapping) -> Path:
    """Where development keeps its analytics key: beside a SQLite journal, else in instance/."""
    url = settings.get("IVR_EVENTS") or ""
    folder = Path(url[len("sqlite:///") :]).parent if url.startswith("sqlite:///") else Path("instance")
    return folder / KEY_FILE


def analytics_key(settings: Mapping, *, create: bool = True) -> bytes | None:
    """IVR_ANALYTICS_KEY; else, outside production, a random key kept in a file beside the journal (made
    when `create`, else None when there is none yet). In production without it: ConfigError naming it."""
    given = settings.get("IVR_ANALYTICS_KEY")
    if given:
        return given.encode()
    path = key_file(settings)
    kept = _read_key(path)
    if kept is not None:  # a development app made it: commands run beside it (in production mode by default) use it
        return kept
    if settings.get("IVR_ENV") == "production":
        raise ConfigError(
            "IVR_ANALYTICS_KEY is not set: the journal keeps callers as keyed hashes of their numbers, and "
            f"only the app's key finds them. Set IVR_ANALYTICS_KEY to the value the app runs with (no development "
            f"key file is at {path} either)."
        )
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then linked into place: a worker starting at the same moment
    # reads either no file or the whole key, never an empty one.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_hex(32).encode())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process was first: its key is the one
    finally:
        draft.unlink()
    kept = _read_key(path)
    if kept is None:
        raise ConfigError(f"the development analytics key {path} is unreadable or too short: delete it")
    return kept


def _read_key(path) -> bytes | None:
    """The key kept in `path`, None when there is none; a short key is no key (32 bytes at least)."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    return key if len(key) >= 32 else None


def normalise_number(text: str) -> str:
    """A phone number as Twilio writes it (E.164: +15551234567); spaces, dashes, dots, brackets and a
    leading 00 are accepted. ValueError, saying what to give, for anything else."""
    compact = _SEPARATORS.sub("", text or "")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.fullmatch(compact):
        raise ValueError(
            f"{text!r} is not a phone number: give it in international form with its country code, "
            "such as +1 555 123 4567 or +44 20 7946 0958"
        )
    return compact


def purge(db: EventsDatabase, before: float, *, batch: int = _BATCH) -> Erased:
    """Delete events from before `before` (Unix seconds), and calls whose last moment (their end, else
    their last webhook, else their start) came before it; how many of each."""
    events = _delete_in_batches(db, "events", "id", "at < ?", before, batch)
    calls = _delete_in_batches(db, "calls", "call_sid", "COALESCE(ended_at, last_at, started_at) < ?", before, batch)
    return Erased(calls=calls, events=events)


def forget_caller(db: EventsDatabase, key: bytes | None, numbers_policy: str, number: str) -> Erased:
    """Delete every call of the caller with this (normalised) number, and all their events.

    Calls are found by the number's keyed hash under `key` and by the number as written (a journal kept
    with IVR_ANALYTICS_NUMBERS=keep, for a while or always). Without a key only the number as written
    can be found: with the `hash` policy that is a ConfigError, since the caller's calls would stay.
    """
    if key is None and numbers_policy != "keep":
        raise ConfigError(
            "no analytics key: the journal keeps callers as keyed hashes (IVR_ANALYTICS_NUMBERS=hash), and "
            "without the key the caller's calls cannot be found. Set IVR_ANALYTICS_KEY to the app's key."
        )
    forms = [number] + ([keyed_hash(key, number)] if key is not None else [])
    marks = ", ".join("?" * len(forms))
    sids = tuple(row[0] for row in db.query(f"SELECT call_sid FROM calls WHERE caller IN ({marks})", forms))
    events = calls = 0
    for chunk in _chunks(sids, _CHUNK):  # events first: an erasure cut short still finds the calls again
        marks = ", ".join("?" * len(chunk))
        events += db.execute(f"DELETE FROM events WHERE call_sid IN ({marks})", chunk)
        calls += db.execute(f"DELETE FROM calls WHERE call_sid IN ({marks})", chunk)
    return Erased(calls=calls, events=events, call_sids=sids)


def _delete_in_batches(db: EventsDatabase, table: str, key: str, where: str, before: float, batch: int) -> int:
    total = 0
    while True:
        deleted = db.execute(
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {where} LIMIT ?)", (before, batch)
        )
        total += max(deleted, 0)
        if deleted < batch:
            return total


def _chunks(items: Sequence[str], size: int):
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])
