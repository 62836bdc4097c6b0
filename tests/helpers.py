"""Helpers shared by the test modules: a clock that moves only when a test says so, and the tests'
own corner of the shared Redis (database 15, a key prefix per test, only their own keys deleted).

Fixtures built on them (`clock`, `store`, `redis_url`, `redis_prefix`) are in conftest.py.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

HOST, PORT, DB = "127.0.0.1", 6379, 15
REDIS_URL = f"redis://{HOST}:{PORT}/{DB}"
NO_REDIS = f"no Redis on {HOST}:{PORT}: start redis-server or run .ci/run"
T0 = 1_700_000_000.0


class FakeClock:
    """Seconds since the epoch that move only when a test (or the code's `sleep`) says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """Sleep as the code under test does: recorded, and time moves on at once."""
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def redis_answers(host: str = HOST, port: int = PORT) -> bool:
    """Whether a Redis answers PING there within half a second."""
    client = redis.Redis(host, port, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def free_port() -> int:
    """A loopback port that nothing listens on (bound for a moment, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(folder: Path, port: int | None = None, *, durable: bool = False) -> Iterator[subprocess.Popen]:
    """A redis-server of the tests' own on a free (or the given) loopback port, its files in `folder`;
    `durable` keeps every write in an append-only file, so that a restart finds them. The test skips
    where redis-server is not installed; the server is resumed and stopped afterwards, whatever happened."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: run .ci/run or apt-get install redis-server")
    port = port or free_port()
    keep = ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
    args = [binary, "--bind", HOST, "--port", str(port), "--save", "", *keep, "--dir", str(folder)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.port = port  # where it listens, for the tests
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(HOST, port):
            assert server.poll() is None, "the tests' own redis-server exited"
            assert time.monotonic() < deadline, "the tests' own redis-server did not answer within 10 s"
            time.sleep(0.05)
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGCONT)
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def new_prefix() -> str:
    """A Redis key prefix no other test (nor another person's run) uses."""
    return f"ivr-test-{uuid.uuid4().hex[:12]}:"


def own_keys(prefix: str) -> list[str]:
    """Every key under `prefix` in the tests' database."""
    with redis.Redis(HOST, PORT, DB, decode_responses=True) as client:
        return sorted(client.scan_iter(match=prefix + "*", count=1000))  # the tests' prefixes hold no * ? [


def delete_own_keys(prefix: str) -> None:
    """Delete the keys under `prefix`, and nothing else (never FLUSHDB)."""
    with redis.Redis(HOST, PORT, DB) as client:
        keys = own_keys(prefix)
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])


# -- PostgreSQL, for the call journal's tests: a schema of their own per test, dropped after -------

PG_BASE = "postgresql://postgres@127.0.0.1:5432/postgres"
NO_POSTGRES = "no PostgreSQL answers on 127.0.0.1:5432 (user postgres): start it or run .ci/run"


def postgres_answers() -> bool:
    """Whether a PostgreSQL takes the suite's connection within two seconds."""
    import psycopg

    try:
        with psycopg.connect(PG_BASE, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """An IVR_EVENTS URL whose tables live in a new schema, dropped with everything in it afterwards."""
    import psycopg

    schema = f"ivr_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
