"""Memory: bytes per active call in each session store, and the app's memory over 20,000 calls.

1. Bytes per active call. A real session is taken from a call that has walked main.yaml to the
   support menu (entered, pressed 2; the session then holds the caller, visits, menus, the
   input and the idempotency answer). 10,000 copies of it under different CallSids go into:
   - the memory store: Python heap it takes (tracemalloc);
   - the SQLite store: database file bytes (after a WAL checkpoint);
   - the Redis store, when Redis answers on 127.0.0.1:6379 (database 13, a prefix of its own,
     deleted after): MEMORY USAGE of every key, summed.
2. The app's memory after many calls. In a fresh process per store, the app (production mode;
   the memory store needs test mode) serves whole calls through the Flask test client: each
   call walks main.yaml end to end (4 signed webhooks, the app's clock fixed in office hours).
   The store's injected clock then moves past the sessions' lifetime and expired sessions are
   purged, as a long-running server does. Measured: resident memory (RSS) and Python's
   allocated blocks after a warm-up of 1,000 calls, after 10,000 more (sessions live), after
   they expire, and after 10,000 more that expire too. With Redis, whose clock cannot be moved,
   expiry is played by deleting the benchmark's keys.

Run (about three minutes):

    python -m benchmarks.memory
    python -m benchmarks.memory --calls 2000    # shorter

Target: no growth per call once sessions expire (the second 10,000 calls leave memory where the
first left it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from datetime import datetime
from pathlib import Path

from benchmarks import common
from ivr.web.services import services

REDIS_URL = "redis://127.0.0.1:6379/13"
OFFICE_HOURS = datetime(2026, 11, 25, 10, 0, tzinfo=common.NEW_YORK)  # a Wednesday morning
SESSIONS = 10_000
WARM_UP = 1_000
# What "no growth per call" allows: RSS moves by whole pages and arenas, and caches fill once.
MAX_RSS_PER_CALL = 100
MAX_BLOCKS_PER_CALL = 0.1


class FakeClock:
    """Seconds since the epoch that move only when told to."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def redis_prefix() -> str:
    return f"ivr-bench-mem-{os.getpid()}:"


def redis_answers() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except Exception:
        return False
    return True


def delete_keys(prefix: str) -> int:
    """Delete the keys under this benchmark's own prefix, nothing else."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    names = list(client.scan_iter(match=prefix + "*", count=1000))
    for i in range(0, len(names), 1000):
        client.delete(*names[i : i + 1000])
    return len(names)


# -- 1. bytes per active call ------------------------------------------------------------------


def sample_session(tmp: Path) -> dict:
    """The session of a call waiting at main.yaml's support menu."""
    from ivr import create_app

    app = create_app(common.ivr_config(common.copy_example_flows(tmp / "flows"), "memory://", env="test"),
                     clock=lambda: OFFICE_HOURS)  # fmt: skip
    client = app.test_client()
    sid = "CA" + "a" * 32
    for signed, expect in common.signed_walk("http://localhost", sid, True)[:2]:
        answer = client.post(signed.path, data=signed.body, headers=signed.headers, content_type=common.FORM)
        assert expect in answer.data, answer.data
    return services(app).store.get(sid)


def per_call_bytes(tmp: Path) -> list[list]:
    from ivr.store import DEFAULT_TTL, MemoryStore, SQLiteStore

    session = sample_session(tmp)
    text = json.dumps(session, separators=(",", ":"), sort_keys=True)
    keys = [f"CA{i:032d}" for i in range(SESSIONS)]
    rows = [["(the session's JSON)", f"{len(text):,} B", "-"]]

    store = MemoryStore()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for key in keys:
        store.update(key, lambda _: session, DEFAULT_TTL)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rows.append(["memory", f"{(after - before) / SESSIONS:,.0f} B", "Python heap (tracemalloc)"])
    store.close()

    path = tmp / "bytes.sqlite3"
    store = SQLiteStore(path)
    empty = _sqlite_bytes(path)
    for key in keys:
        store.update(key, lambda _: session, DEFAULT_TTL)
    full = _sqlite_bytes(path)
    store.close()
    rows.append(["SQLite", f"{(full - empty) / SESSIONS:,.0f} B", "database file, after a WAL checkpoint"])

    if redis_answers():
        from ivr.store.redis import RedisStore

        prefix = redis_prefix()
        store = RedisStore(REDIS_URL, prefix=prefix)
        for key in keys:
            store.update(key, lambda _: session, DEFAULT_TTL)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(prefix + key)
        used = sum(pipe.execute())
        store.close()
        delete_keys(prefix)
        rows.append(["Redis", f"{used / SESSIONS:,.0f} B", "MEMORY USAGE of each key, in Redis"])
    else:
        rows.append(["Redis", "skipped", f"no Redis at {REDIS_URL}"])
    return rows


def _sqlite_bytes(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


# -- 2. the app's memory over many calls (one process per store) -------------------------------


def one_store(kind: str, calls: int) -> dict:
    """Serve warm-up + 2 x `calls` calls with the `kind` store; memory at each stage."""
    from ivr import create_app
    from ivr.store import MemoryStore, SQLiteStore
    from ivr.web import SESSION_TTL

    common.clean_environ()
    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    flows = common.copy_example_flows(tmp / "flows")
    clock = FakeClock()
    prefix = redis_prefix()
    if kind == "memory":
        app = create_app(common.ivr_config(flows, "memory://", env="test"), clock=lambda: OFFICE_HOURS)
        store = MemoryStore(clock=clock)
    elif kind == "SQLite":
        app = create_app(common.ivr_config(flows, f"sqlite:///{tmp}/sessions.sqlite3"), clock=lambda: OFFICE_HOURS)
        store = SQLiteStore(tmp / "sessions.sqlite3", clock=clock)
    else:
        config = {**common.ivr_config(flows, REDIS_URL), "IVR_REDIS_PREFIX": prefix}
        app = create_app(config, clock=lambda: OFFICE_HOURS)
        store = services(app).store
    if kind != "Redis":
        # create_app gives its store no clock; this one's moves when the benchmark says.
        services(app).store.close()
        services(app).store = store
        services(app).flows.store = store
    client = app.test_client()
    served = 0

    def serve(count: int) -> None:
        nonlocal served
        for _ in range(count):
            served += 1
            for signed, expect in common.signed_walk("http://localhost", f"CA{served:032d}", True):
                answer = client.post(signed.path, data=signed.body, headers=signed.headers, content_type=common.FORM)
                if answer.status_code != 200 or expect not in answer.data:
                    raise AssertionError(f"{signed.path}: {answer.status_code} {answer.data[:300]!r}")
            clock.now += 0.01

    def expire() -> None:
        clock.now += SESSION_TTL + 1
        if kind == "Redis":
            import redis

            client_ = redis.Redis.from_url(REDIS_URL)
            names = list(client_.scan_iter(match=prefix + "CA*", count=1000))
            for i in range(0, len(names), 1000):
                client_.delete(*names[i : i + 1000])
        else:
            store.purge_expired()

    def reading(stage: str) -> dict:
        gc.collect()
        out = {"stage": stage, "rss": common.rss_bytes(), "blocks": sys.getallocatedblocks(), "calls": served}
        if kind == "SQLite":
            out["file"] = sum(p.stat().st_size for p in tmp.glob("sessions.sqlite3*"))
        return out

    stages = []
    serve(WARM_UP)
    expire()
    stages.append(reading(f"after {WARM_UP:,} warm-up calls, expired"))
    serve(calls)
    stages.append(reading(f"after {calls:,} more calls (sessions live)"))
    expire()
    stages.append(reading("... and expired"))
    serve(calls)
    stages.append(reading(f"after {calls:,} more calls (sessions live)"))
    expire()
    stages.append(reading("... and expired"))
    if kind == "Redis":
        delete_keys(prefix)
    return {"store": kind, "stages": stages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls per round (default 10,000)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process that measures one store
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_store(args.one, args.calls)))
        return 0
    common.clean_environ()
    common.print_header("Memory: per active call, and over many calls")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        rows = per_call_bytes(Path(tmp))
    print(f"### Bytes per active call ({SESSIONS:,} sessions of a call waiting at the support menu)\n")
    print(common.table(["store", "bytes per call", "what was measured"], rows))
    print()
    kinds = ["memory", "SQLite"] + (["Redis"] if redis_answers() else [])
    print(f"### The app's memory over {WARM_UP:,} + 2 x {args.calls:,} calls (each a fresh process per store)\n")
    rows = []
    verdicts = []
    for kind in kinds:
        command = [sys.executable, "-m", "benchmarks.memory", "--one", kind, "--calls", str(args.calls)]
        result = json.loads(subprocess.run(command, cwd=common.ROOT, check=True, capture_output=True, text=True,
                                           timeout=600).stdout)  # fmt: skip
        stages = result["stages"]
        first = stages[0]
        for stage in stages:
            rows.append(
                [
                    kind,
                    stage["stage"],
                    f"{stage['rss'] / 2**20:,.1f} MiB",
                    f"{(stage['rss'] - first['rss']) / 2**10:+,.0f} KiB",
                    f"{stage['blocks']:,}",
                    f"{stage['blocks'] - first['blocks']:+,}",
                ]
            )
        live = (stages[1]["rss"] - stages[0]["rss"]) / args.calls
        peak = (stages[3]["rss"] - stages[1]["rss"]) / args.calls
        left = (stages[4]["rss"] - stages[2]["rss"]) / args.calls
        blocks = (stages[4]["blocks"] - stages[2]["blocks"]) / args.calls
        files = (stages[2].get("file"), stages[4].get("file"))
        verdicts.append((kind, live, peak, left, blocks, files))
    headers = ["store", "stage", "RSS", "RSS vs first", "Python blocks", "blocks vs first"]
    print(common.table(headers, rows))
    print()
    for kind, live, peak, left, blocks, (first_file, last_file) in verdicts:
        met = "met" if peak < MAX_RSS_PER_CALL and blocks < MAX_BLOCKS_PER_CALL else "MISSED"
        extra = ""
        if first_file:
            extra = (
                f"; database and WAL files {first_file / 2**20:,.1f} MiB after the first round, "
                f"{last_file / 2**20:,.1f} MiB after the second"
            )
        print(
            f"- {kind}: {live:,.0f} B of RSS per call while sessions live. Second round against the first: "
            f"Python blocks left after expiry {blocks:+.3f} per call, RSS peak {peak:+,.1f} B per call, "
            f"RSS after expiry {left:+,.1f} B per call: {met}{extra}."
        )
    print(
        f"\n(Met: under {MAX_BLOCKS_PER_CALL} Python blocks per call left once sessions expired, and the second "
        f"round's RSS peak under {MAX_RSS_PER_CALL} B per call above the first's. RSS after expiry is shown, not "
        "judged: Python's allocator keeps freed arenas for reuse rather than returning them at once.)"
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
