"""Per-call session stores keyed by CallSid, behind one base class and one open function:
memory (tests), SQLite (the default), Redis (several servers sharing the calls)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from ivr.errors import ConfigError
from ivr.settings import MEMORY_STORE_ENVS
from ivr.store.base import DEFAULT_TTL, RENEW_SLACK, Clock, Read, SessionStore
from ivr.store.memory import MemoryStore
from ivr.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_TTL",
    "RENEW_SLACK",
    "MemoryStore",
    "Read",
    "SQLiteStore",
    "SessionStore",
    "open_store",
    "sqlite_path",
    "store_from_settings",
]


def open_store(url: str, *, env: str, clock: Clock = time.time, prefix: str = "ivr:") -> SessionStore:
    """Open the session store that an IVR_STORE URL names; `prefix` (IVR_REDIS_PREFIX) is Redis's key prefix.

    Redis keeps time by its own clock: `clock` is for the memory and SQLite stores.
    """
    if url == "memory://":
        if env not in MEMORY_STORE_ENVS:
            raise ConfigError(
                f"IVR_STORE=memory:// is for tests and single-process development only "
                f"(IVR_ENV is {env!r}): its sessions are lost on restart and not "
                f"shared between processes; set IVR_STORE=sqlite:///... or redis://..."
            )
        return MemoryStore(clock=clock)
    path = sqlite_path(url)
    if path is not None:
        return SQLiteStore(path, clock=clock)
    if url.startswith(("redis://", "rediss://")):
        from ivr.store.redis import RedisStore  # here: redis is only loaded when used

        return RedisStore(url, prefix=prefix)
    shown = url.split("://", 1)[0] + "://..." if "://" in url else repr(url)
    raise ConfigError(
        f"IVR_STORE={shown} is not a session store URL; use sqlite:///relative/path, "
        f"sqlite:////absolute/path, redis://host:port/db or memory:// (tests and "
        f"development only)"
    )


def sqlite_path(url: str) -> Path | None:
    """The file a `sqlite:///...` IVR_STORE URL names, None for the other stores; a URL naming no file is refused."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    # ":memory:" would give every thread a database of its own.
    if not path or path == ":memory:":
        raise ConfigError(f"IVR_STORE={url} names no file; use sqlite:///relative/path or sqlite:////absolute/path")
    return Path(path)


def store_from_settings(settings: Mapping, *, clock: Clock = time.time, for_the_app: bool = False) -> SessionStore:
    """The store that IVR_STORE names, with IVR_ENV's rules and IVR_REDIS_PREFIX: how every caller opens it.

    `for_the_app`: a command stores what the app, another process, must read (or reads what it
    stored), so memory:// is refused outside tests, even in development.
    """
    url = settings.get("IVR_STORE") or "memory://"
    env = settings.get("IVR_ENV") or "production"
    if for_the_app and url == "memory://" and env != "test":
        raise ConfigError(
            "IVR_STORE=memory:// lives inside this command, where the app cannot share it: set IVR_STORE to "
            "the app's store (sqlite:///... or redis://...)"
        )
    return open_store(url, env=env, clock=clock, prefix=settings.get("IVR_REDIS_PREFIX") or "ivr:")
