"""The Redis session store: for several app servers that share the calls.

Each session is one Redis string under the key prefix (`IVR_REDIS_PREFIX`, `ivr:` by default),
holding the session's JSON and expiring by Redis's own clock (SET ... PX), so no purge is needed.
An update reads the value and its remaining time in one round trip, lets `plan_update` decide, and writes
only when the value is still the one it read (a compare-and-set in Lua); another writer getting in
first makes it read and try again. Every Redis error becomes a StoreError within the time budget:
a webhook must answer the caller even when Redis is down or stalled.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from ivr.errors import ConfigError, StoreError
from ivr.store.base import Read, SessionStore, Updater, dumps, plan_update

__all__ = ["DEFAULT_PREFIX", "REDIS_TIMEOUT", "RedisStore"]

DEFAULT_PREFIX = "ivr:"
# Seconds Redis gets to connect and to answer each command. A healthy Redis answers in well under
# a millisecond; a stalled one must not eat the time in which Twilio waits for TwiML.
REDIS_TIMEOUT = 0.5
# Attempts of one update while other writers keep changing the same session.
MAX_ATTEMPTS = 100
_SCAN_COUNT = 1000

# KEYS[1]: the session; ARGV: "1" when it was absent at the read, else the text read; the new text
# ("" deletes); milliseconds to live. Writes only when the session is still what was read.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
    if current then return 0 end
elseif current ~= ARGV[2] then
    return 0
end
if ARGV[3] == '' then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
"""


def _glob_escape(text: str) -> str:
    """`text` matched literally by a Redis glob pattern (SCAN MATCH)."""
    return "".join("\\" + c if c in "\\*?[]^" else c for c in text)


class RedisStore(SessionStore):
    """Sessions in Redis under a key prefix; processes and servers share them."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = REDIS_TIMEOUT) -> None:
        options = _options(url)
        self.prefix = prefix
        # Where errors say the store is: scheme, host, port and database; never the password.
        scheme, host, port, db = (
            url.split("://", 1)[0],
            options["host"],
            options.get("port", 6379),
            options.get("db", 0),
        )
        self.where = f"{scheme}://{host}:{port}/{db}"
        self._password = options.get("password")
        options.update(
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # redis-py retries thrice by default: that would triple the budget.
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
            decode_responses=True,
            # No CLIENT SETINFO: two round trips fewer for each new connection.
            driver_info=None,
        )
        self._client = redis.Redis(connection_pool=redis.ConnectionPool(**options))
        self._options = options
        self._pinger: tuple[float, redis.Redis] | None = None  # readiness's own connection and its timeout
        self._compare_and_set = self._client.register_script(_COMPARE_AND_SET)
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisStore({self.where!r}, prefix={self.prefix!r})"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        if self._closed:
            raise StoreError(f"session store {self.where} is closed")
        try:
            yield
        except redis.RedisError as exc:
            reason = str(exc) or type(exc).__name__
            if self._password:
                reason = reason.replace(self._password, "***")
            raise StoreError(f"session store {self.where}: {doing} failed: {reason}") from None

    def get(self, key: str) -> dict | None:
        """Return the session, or None when it is absent or expired."""
        with self._errors(f"reading session {key!r}"):
            text = self._client.get(self.prefix + key)
        return None if text is None else json.loads(text)

    def read(self, key: str) -> Read:
        """The session and its stored text: one round trip (GET)."""
        with self._errors(f"reading session {key!r}"):
            text = self._client.get(self.prefix + key)
        return Read(None if text is None else json.loads(text), text)

    def replace(self, key: str, seen: str | None, value: dict, ttl: float) -> bool:
        """Store `value` if the session is still the text `read` saw: one round trip (the compare-and-set script)."""
        args = ["1" if seen is None else "0", seen or "", dumps(value), max(1, round(ttl * 1000))]
        with self._errors(f"updating session {key!r}"):
            return bool(self._compare_and_set(keys=[self.prefix + key], args=args))

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        """Atomically replace the session with fn(a copy of it); return the new one.

        fn runs again on a fresh copy when another writer changed the session meanwhile.
        """
        name = self.prefix + key
        doing = f"updating session {key!r}"
        for _ in range(MAX_ATTEMPTS):
            with self._errors(doing):
                pipe = self._client.pipeline(transaction=True)
                old_text, pttl = pipe.get(name).pttl(name).execute()
            # Times relative to now: Redis keeps the expiry by its own clock (-1, none, renews).
            new, text, write = plan_update(fn, old_text, pttl / 1000 if pttl > 0 else 0.0, 0.0, ttl)
            if not write:
                return new
            absent = "1" if old_text is None else "0"
            args = [absent, old_text or "", text or "", max(1, round(ttl * 1000))]
            with self._errors(doing):
                if self._compare_and_set(keys=[name], args=args):
                    return new
        raise StoreError(f"session store {self.where}: {doing} failed: other writers kept changing it")

    def delete(self, key: str) -> None:
        """Remove the session; a missing one is not an error."""
        with self._errors(f"deleting session {key!r}"):
            self._client.delete(self.prefix + key)

    def scan(self, prefix: str) -> list[tuple[str, dict]]:
        """Every live (key, value) whose key starts with `prefix`, by SCAN (never KEYS), sorted by key."""
        start = len(self.prefix)
        with self._errors(f"listing {prefix!r}"):
            pattern = _glob_escape(self.prefix + prefix) + "*"
            names = sorted(set(self._client.scan_iter(match=pattern, count=_SCAN_COUNT)))
            texts = []
            for i in range(0, len(names), _SCAN_COUNT):
                texts += self._client.mget(names[i : i + _SCAN_COUNT])
        # A session may expire between SCAN and MGET.
        return [(name[start:], json.loads(text)) for name, text in zip(names, texts, strict=True) if text is not None]

    def purge_expired(self) -> int:
        """Nothing to do: Redis deletes expired sessions itself; returns 0."""
        return 0

    def keeps_on_disk(self) -> bool | None:
        """Whether Redis writes to disk (an append-only file or snapshots); None when CONFIG is refused."""
        try:
            with self._errors("asking how Redis persists"):
                aof = self._client.config_get("appendonly").get("appendonly", "no")
                save = self._client.config_get("save").get("save", "")
        except StoreError:
            return None  # managed Redis services often refuse CONFIG
        return aof == "yes" or bool(save.strip())

    def ping(self, timeout: float) -> None:
        """PING on a connection of its own, `timeout` to connect and to answer: a busy pool waits for nothing."""
        with self._errors("PING"):
            if self._pinger is None or self._pinger[0] != timeout:
                options = {**self._options, "socket_timeout": timeout, "socket_connect_timeout": timeout}
                self._pinger = (timeout, redis.Redis(connection_pool=redis.ConnectionPool(**options)))
            self._pinger[1].ping()

    def close(self) -> None:
        """Close the connections; the store cannot be used afterwards."""
        self._closed = True
        self._client.close()
        if self._pinger is not None:
            self._pinger[1].close()


def _options(url: str) -> dict:
    """redis-py's connection options from a redis:// or rediss:// URL; ConfigError when it is wrong."""
    # Messages name the scheme only: the URL may carry a password.
    shown = f"IVR_STORE={url.split('://', 1)[0]}://..."
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"{shown} is not a Redis URL; use redis://host:port/db or rediss://host:port/db")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ConfigError(f"{shown}: the path must be a database number (redis://host:6379/0), not {path!r}")
    try:
        options = parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
    if "host" not in options:
        raise ConfigError(f"{shown} names no host; use redis://host:port/db")
    return options
