"""Session stores: the same behaviour from memory and SQLite, then what only SQLite does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import T0

from ivr.errors import ConfigError, StoreError
from ivr.store import RENEW_SLACK, MemoryStore, SQLiteStore, checkpoints, open_store

TTL = 3600.0
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path, clock):
    s = MemoryStore(clock=clock) if request.param == "memory" else SQLiteStore(tmp_path / "ivr.sqlite3", clock=clock)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path, clock):
    s = SQLiteStore(tmp_path / "ivr.sqlite3", clock=clock)
    yield s
    s.close()


def row(store: SQLiteStore, key: str) -> tuple[str, float] | None:
    """Read a row straight from the file, past the store."""
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute("SELECT value, expires_at FROM sessions WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()


def put(value):
    return lambda old: value


def test_get_update_delete_round_trip(store):
    assert store.get("CA1") is None
    assert store.update("CA1", put({"name": "Ada", "tries": [1, 2]}), TTL) == {
        "name": "Ada",
        "tries": [1, 2],
    }
    assert store.get("CA1") == {"name": "Ada", "tries": [1, 2]}
    assert store.get("CA2") is None
    store.delete("CA1")
    assert store.get("CA1") is None
    store.delete("CA1")  # deleting a missing session is fine


def test_update_passes_the_current_value_and_fn_gets_a_copy(store):
    store.update("CA1", put({"n": 1, "list": [1]}), TTL)
    seen = []

    def fn(old):
        seen.append(old)
        old["list"].append(2)  # mutating the argument must not reach the store by itself
        return {"n": old["n"] + 1}

    assert store.update("CA1", fn, TTL) == {"n": 2}
    assert seen == [{"n": 1, "list": [1, 2]}]
    assert store.get("CA1") == {"n": 2}


def test_read_then_replace_is_a_compare_and_set(store):
    assert store.read("CA1") == (None, None)
    assert store.replace("CA1", None, {"n": 1}, TTL)
    assert not store.replace("CA1", None, {"n": 9}, TTL)  # it exists now: "absent" is no longer what was read
    seen = store.read("CA1")
    assert seen.value == {"n": 1}
    store.update("CA1", lambda s: {**s, "status": "in-progress"}, TTL)  # another writer, in between
    assert not store.replace("CA1", seen.text, {"n": 2}, TTL)
    assert store.get("CA1") == {"n": 1, "status": "in-progress"}  # the refused write changed nothing
    again = store.read("CA1")
    assert store.replace("CA1", again.text, {"n": 2}, TTL)
    assert not store.replace("CA1", again.text, {"n": 3}, TTL)  # the same read cannot win twice
    assert store.get("CA1") == {"n": 2}


def test_replace_renews_the_expiry_and_takes_the_place_of_an_expired_session(store, clock):
    store.replace("CA1", None, {"n": 1}, TTL)
    clock.advance(TTL - 10)
    store.replace("CA1", store.read("CA1").text, {"n": 2}, TTL)
    clock.advance(TTL - 10)
    assert store.get("CA1") == {"n": 2}  # alive: the write renewed it
    clock.advance(20)
    assert store.read("CA1") == (None, None)
    assert store.replace("CA1", None, {"n": 3}, TTL)  # expired counts as absent
    assert store.get("CA1") == {"n": 3}


def test_read_gives_a_copy_and_its_stored_text(store):
    store.replace("CA1", None, {"b": [1], "a": 1}, TTL)
    seen = store.read("CA1")
    assert seen.text == '{"a":1,"b":[1]}'
    seen.value["b"].append(2)
    assert store.get("CA1") == {"a": 1, "b": [1]}


def test_get_returns_a_copy(store):
    store.update("CA1", put({"list": [1]}), TTL)
    store.get("CA1")["list"].append(2)
    assert store.get("CA1") == {"list": [1]}


def test_update_returning_none_deletes(store):
    store.update("CA1", put({"a": 1}), TTL)
    assert store.update("CA1", put(None), TTL) is None
    assert store.get("CA1") is None
    assert store.update("CA1", lambda old: old, TTL) is None  # absent stays absent


def test_expired_session_is_absent_everywhere(store, clock):
    store.update("CA1", put({"a": 1}), TTL)
    clock.advance(TTL - 1)
    assert store.get("CA1") == {"a": 1}
    clock.advance(1)
    assert store.get("CA1") is None
    seen = []
    store.update("CA1", lambda old: seen.append(old) or {"b": 2}, TTL)
    assert seen == [None]
    assert store.get("CA1") == {"b": 2}
    clock.advance(TTL)
    assert store.incr("CA1", "n", ttl=TTL) == 1
    assert store.get("CA1") == {"n": 1}


def test_a_changing_update_renews_the_expiry(store, clock):
    store.update("CA1", put({"n": 1}), TTL)
    clock.advance(TTL - 10)
    store.update("CA1", put({"n": 2}), TTL)
    clock.advance(TTL - 1)  # long past the first expiry, 1 s before the renewed one
    assert store.get("CA1") == {"n": 2}
    clock.advance(1)
    assert store.get("CA1") is None


def test_an_unchanged_update_within_the_slack_does_not_renew(store, clock):
    store.update("CA1", put({"n": 1}), TTL)
    clock.advance(RENEW_SLACK - 1)
    assert store.update("CA1", put({"n": 1}), TTL) == {"n": 1}
    clock.advance(TTL - RENEW_SLACK + 1)  # exactly the first expiry
    assert store.get("CA1") is None


def test_an_unchanged_update_outside_the_slack_renews(store, clock):
    store.update("CA1", put({"n": 1}), TTL)
    clock.advance(RENEW_SLACK + 1)
    store.update("CA1", put({"n": 1}), TTL)
    clock.advance(TTL - RENEW_SLACK - 1)  # the first expiry has passed
    assert store.get("CA1") == {"n": 1}
    clock.advance(RENEW_SLACK + 1)
    assert store.get("CA1") is None


def test_sqlite_writes_nothing_when_unchanged_and_renews_once_outside_the_slack(sqlite_store, clock):
    sqlite_store.update("CA1", put({"b": 2, "a": 1}), TTL)
    assert row(sqlite_store, "CA1") == ('{"a":1,"b":2}', T0 + TTL)
    conn = sqlite_store._connection()
    changes = conn.total_changes

    for _ in range(5):
        clock.advance(10)
        sqlite_store.update("CA1", put({"a": 1, "b": 2}), TTL)  # same value, other key order
    assert conn.total_changes == changes
    assert row(sqlite_store, "CA1") == ('{"a":1,"b":2}', T0 + TTL)

    clock.advance(RENEW_SLACK)  # now 110 s after the write
    sqlite_store.update("CA1", put({"a": 1, "b": 2}), TTL)
    sqlite_store.update("CA1", put({"a": 1, "b": 2}), TTL)
    assert conn.total_changes == changes + 1
    assert row(sqlite_store, "CA1") == ('{"a":1,"b":2}', T0 + 110 + TTL)


def test_fn_raising_leaves_the_session_unchanged(store, clock):
    store.update("CA1", put({"n": 1}), TTL)

    def boom(old):
        old["n"] = 99
        raise RuntimeError("hook failed")

    clock.advance(RENEW_SLACK * 2)  # a successful unchanged update would renew here
    with pytest.raises(RuntimeError, match="hook failed"):
        store.update("CA1", boom, TTL)
    assert store.get("CA1") == {"n": 1}
    clock.advance(TTL - RENEW_SLACK * 2)
    assert store.get("CA1") is None  # and its expiry did not move either
    assert store.update("CA2", put({"ok": True}), TTL) == {"ok": True}  # the store still works


@pytest.mark.parametrize("bad", [{"when": object()}, ["not", "a", "dict"], "text"])
def test_values_that_are_not_json_objects_are_refused(store, bad):
    store.update("CA1", put({"n": 1}), TTL)
    with pytest.raises(TypeError):
        store.update("CA1", put(bad), TTL)
    assert store.get("CA1") == {"n": 1}


def test_incr_creates_and_increments(store):
    assert store.incr("CA1", "tries") == 1
    assert store.incr("CA1", "tries") == 2
    assert store.incr("CA1", "tries", 5) == 7
    assert store.incr("CA1", "other", -2) == -2
    store.update("CA2", put({"name": "Ada"}), TTL)
    assert store.incr("CA2", "tries", ttl=TTL) == 1
    assert store.get("CA1") == {"tries": 7, "other": -2}
    assert store.get("CA2") == {"name": "Ada", "tries": 1}


@pytest.mark.parametrize("value", ["3", 1.5, True, None])
def test_incr_refuses_a_field_that_is_not_an_int(store, value):
    store.update("CA1", put({"tries": value}), TTL)
    with pytest.raises(TypeError, match="'tries'"):
        store.incr("CA1", "tries")
    assert store.get("CA1") == {"tries": value}


def test_update_refuses_a_ttl_that_is_not_positive(store):
    with pytest.raises(ValueError, match="ttl"):
        store.update("CA1", put({"n": 1}), 0)
    assert store.get("CA1") is None


def test_incr_from_four_threads_loses_nothing(store):
    start = threading.Barrier(4)

    def work():
        start.wait()
        for _ in range(200):
            store.incr("CA1", "n")

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(work) for _ in range(4)]
    for future in futures:
        future.result()  # re-raises what a thread raised
    assert store.get("CA1") == {"n": 800}


CHILD = """
import sys
from ivr.store import SQLiteStore
store = SQLiteStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(100):
    store.incr("CA1", "n")
store.close()
print("done", flush=True)
"""


CLOSING = """
import sys, threading
from ivr.store import SQLiteStore
for i in range(600):
    store = SQLiteStore(f"{sys.argv[1]}/s{i}.sqlite3")
    store.update(f"CA{i}", lambda s: {**(s or {}), "n": 1}, ttl=60)
    stop = threading.Event()
    def checkpoint():
        while not stop.is_set():
            store.checkpoint()
    thread = threading.Thread(target=checkpoint)
    thread.start()
    store.close()
    stop.set()
    thread.join()
print("done", flush=True)
"""


def test_closing_a_store_while_it_is_checkpointed_never_crashes(tmp_path):
    """close() waits for a checkpoint under way: closing the checkpoint thread's connection in the middle
    of its PRAGMA crashed the process (a segmentation fault, in most runs of this script before the lock)."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", CLOSING, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": pythonpath},
    )
    assert (done.returncode, done.stdout) == (0, "done\n"), done.stderr


def test_incr_from_two_processes_loses_nothing(tmp_path):
    path = tmp_path / "shared" / "ivr.sqlite3"
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        # Both open the file first, then start together, so that their increments interleave.
        assert [c.stdout.readline() for c in children] == ["ready\n", "ready\n"]
        for c in children:
            c.stdin.write("go\n")
            c.stdin.close()
        outputs = [c.stdout.read() for c in children]
        codes = [c.wait(timeout=60) for c in children]
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
            c.stdin.close()
            c.stdout.close()
    assert codes == [0, 0]
    assert outputs == ["done\n", "done\n"]
    with SQLiteStore(path) as s:
        assert s.get("CA1") == {"n": 200}


def test_purge_expired_removes_only_expired_sessions(store, clock):
    store.update("short", put({"a": 1}), 10)
    store.update("shorter", put({"a": 2}), 5)
    store.update("long", put({"a": 3}), TTL)
    assert store.purge_expired() == 0
    clock.advance(10)
    assert store.purge_expired() == 2
    assert store.purge_expired() == 0
    assert store.get("long") == {"a": 3}


def test_sqlite_purge_deletes_the_rows(sqlite_store, clock):
    sqlite_store.update("short", put({"a": 1}), 10)
    sqlite_store.update("long", put({"a": 2}), TTL)
    clock.advance(10)
    assert row(sqlite_store, "short") is not None  # expired, but rows go only when purged
    assert sqlite_store.purge_expired() == 1
    assert row(sqlite_store, "short") is None
    assert row(sqlite_store, "long") == ('{"a":2}', T0 + TTL)


def test_stores_purge_by_themselves_every_so_many_writes(tmp_path, clock):
    memory = MemoryStore(clock=clock, purge_every=10)
    sqlite = SQLiteStore(tmp_path / "ivr.sqlite3", clock=clock, purge_every=10)
    for s in (memory, sqlite):
        s.update("old", put({"a": 1}), 5)
        for i in range(8):
            s.update(f"CA{i}", put({"i": i}), TTL)
    clock.advance(5)
    assert "old" in memory._data
    assert row(sqlite, "old") is not None
    for s in (memory, sqlite):
        s.update("CA9", put({"i": 9}), TTL)  # the tenth write
    assert "old" not in memory._data
    assert len(memory._data) == 9
    assert row(sqlite, "old") is None
    memory.close()
    sqlite.close()


def test_sqlite_purges_on_open(tmp_path, clock):
    path = tmp_path / "ivr.sqlite3"
    with SQLiteStore(path, clock=clock) as s:
        s.update("old", put({"a": 1}), 5)
        s.update("new", put({"a": 2}), TTL)
    clock.advance(5)
    with SQLiteStore(path, clock=clock) as s:
        assert row(s, "old") is None
        assert s.get("new") == {"a": 2}


def test_sqlite_sessions_survive_a_restart(tmp_path, clock):
    path = tmp_path / "ivr.sqlite3"
    with SQLiteStore(path, clock=clock) as s:
        s.incr("CA1", "tries", 3)
    with SQLiteStore(path, clock=clock) as s:
        assert s.get("CA1") == {"tries": 3}


def test_sqlite_pragmas_are_in_effect(sqlite_store):
    conn = sqlite_store._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (2000,)  # the store's share of a webhook's deadline
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (checkpoints.BACKSTOP_PAGES,)
    assert conn.isolation_level is None


def test_sqlite_checkpoints_run_on_their_own_thread_and_empty_the_wal(tmp_path):
    store = SQLiteStore(tmp_path / "ivr.sqlite3")
    ran = threading.Event()
    threads: list[str] = []
    real = store.checkpoint

    def checkpoint():
        threads.append(threading.current_thread().name)
        real()
        ran.set()

    store.checkpoint = checkpoint
    try:
        for n in range(50):
            store.replace(f"CA{n}", None, {"n": n, "pad": "x" * 2000}, TTL)
        assert ran.wait(10), "no checkpoint ran"
        assert set(threads) == {"ivr-sqlite-checkpoints"}
        # Every frame is in the database file now: a new reader finds the rows without the WAL's help.
        conn = sqlite3.connect(store.path)
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, frames) == (0, copied)
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (50,)
        conn.close()
    finally:
        store.close()


def test_a_checkpoint_of_a_closed_store_does_nothing(tmp_path):
    store = SQLiteStore(tmp_path / "ivr.sqlite3")
    store.close()
    store.checkpoint()  # the thread may still hold it once: no error


def test_sqlite_errors_name_the_file(tmp_path):
    path = tmp_path / "ivr.sqlite3"
    path.mkdir()  # a folder where the file should be
    with pytest.raises(StoreError, match=r"session store .*ivr\.sqlite3: cannot open"):
        SQLiteStore(path)


def test_sqlite_store_refuses_use_after_close(tmp_path):
    s = SQLiteStore(tmp_path / "ivr.sqlite3")
    s.close()
    s.close()
    with pytest.raises(StoreError, match=r"ivr\.sqlite3 is closed"):
        s.get("CA1")


def test_open_store_sqlite_relative_path_creates_its_folder(tmp_path, monkeypatch, clock):
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///instance/ivr.sqlite3", env="production", clock=clock) as s:
        assert isinstance(s, SQLiteStore)
        s.update("CA1", put({"a": 1}), TTL)
        assert row(s, "CA1") == ('{"a":1}', T0 + TTL)
    assert (tmp_path / "instance" / "ivr.sqlite3").is_file()


def test_open_store_sqlite_absolute_path(tmp_path):
    path = tmp_path / "deep" / "er" / "ivr.sqlite3"
    with open_store(f"sqlite:///{path}", env="production") as s:
        assert isinstance(s, SQLiteStore)
        assert s.path == path
    assert path.is_file()


@pytest.mark.parametrize("env", ["test", "development"])
def test_open_store_memory_in_tests_and_development(env, clock):
    with open_store("memory://", env=env, clock=clock) as s:
        assert isinstance(s, MemoryStore)
        s.update("CA1", put({"a": 1}), 10)
        clock.advance(10)
        assert s.get("CA1") is None  # the clock was passed on


@pytest.mark.parametrize(
    ("url", "env", "message"),
    [
        (
            "memory://",
            "production",
            "IVR_STORE=memory:// is for tests and single-process development only (IVR_ENV is 'production')",
        ),
        ("memory://", "production", "set IVR_STORE=sqlite:///... or redis://..."),
        (
            "postgres://db/ivr",
            "development",
            "IVR_STORE=postgres://... is not a session store URL; use sqlite:///relative/path, "
            "sqlite:////absolute/path, redis://host:port/db or memory://",
        ),
        ("ivr.sqlite3", "test", "IVR_STORE='ivr.sqlite3' is not a session store URL"),
        ("sqlite:///", "test", "IVR_STORE=sqlite:/// names no file"),
        ("sqlite:///:memory:", "test", "names no file"),
    ],
)
def test_open_store_refusals(url, env, message):
    with pytest.raises(ConfigError) as info:
        open_store(url, env=env)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_writers_starting_together_start_one_checkpoint_thread(tmp_path, monkeypatch):
    started: list[threading.Thread] = []

    class Counted(threading.Thread):
        def start(self) -> None:
            if self.name == "ivr-sqlite-checkpoints":
                started.append(self)
            super().start()

    monkeypatch.setattr(checkpoints, "_thread", None)  # as in a new worker: no checkpoint thread yet
    monkeypatch.setattr(checkpoints.threading, "Thread", Counted)
    store = SQLiteStore(tmp_path / "ivr.sqlite3")
    barrier = threading.Barrier(8)

    def first_write(n: int) -> None:
        barrier.wait()
        store.replace(f"CA{n}", None, {"n": n}, TTL)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(first_write, range(8)))
        assert len(started) == 1
    finally:
        store.close()
