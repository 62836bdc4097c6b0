"""The Redis store: test_store.py's behaviour suite against a real Redis, then what only Redis does.

The tests use database 15 and a key prefix of their own, and delete only their own keys. Where no
Redis answers on 127.0.0.1:6379 they skip (.ci/run starts one). A Redis that is down or stalled is
one the tests make themselves: a port nothing listens on, or a redis-server they start and stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import test_store as suite
from helpers import DB, HOST, free_port, own_keys, redis_server

from ivr.errors import ConfigError, StoreError
from ivr.store import RENEW_SLACK, open_store
from ivr.store.redis import RedisStore

TTL = suite.TTL
ROOT = Path(__file__).resolve().parents[1]
BUDGET = 1.0  # seconds within which a store must give up on a Redis that is down or stalled


@pytest.fixture
def store(redis_url, redis_prefix):
    s = RedisStore(redis_url, prefix=redis_prefix)
    yield s
    s.close()


@pytest.fixture
def raw(redis_url):
    """A plain client on the tests' database, to look past the store."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


class RedisClock:
    """Time passing for a test's keys: what Redis's clock does to them, without the wait.

    Redis keeps each key's expiry relative to its own clock, and so does the store; moving time
    forward by s seconds is taking s seconds off the time to live of every key under the prefix
    (a key whose time runs out is gone, as Redis would have it).
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def advance(self, seconds: float) -> None:
        for key in own_keys(self.prefix):
            left = self.client.pttl(key) - round(seconds * 1000)
            if left > 0:
                self.client.pexpire(key, left)
            else:
                self.client.delete(key)


@pytest.fixture
def clock(raw, redis_prefix) -> RedisClock:
    return RedisClock(raw, redis_prefix)


put = suite.put

# The behaviour every store shares, from test_store.py, run here against Redis.
test_get_update_delete_round_trip = suite.test_get_update_delete_round_trip
test_update_passes_the_current_value_and_fn_gets_a_copy = suite.test_update_passes_the_current_value_and_fn_gets_a_copy
test_get_returns_a_copy = suite.test_get_returns_a_copy
test_read_then_replace_is_a_compare_and_set = suite.test_read_then_replace_is_a_compare_and_set
test_replace_renews_the_expiry_and_takes_the_place_of_an_expired_session = (
    suite.test_replace_renews_the_expiry_and_takes_the_place_of_an_expired_session
)
test_read_gives_a_copy_and_its_stored_text = suite.test_read_gives_a_copy_and_its_stored_text
test_update_returning_none_deletes = suite.test_update_returning_none_deletes
test_expired_session_is_absent_everywhere = suite.test_expired_session_is_absent_everywhere
test_a_changing_update_renews_the_expiry = suite.test_a_changing_update_renews_the_expiry
test_an_unchanged_update_within_the_slack_does_not_renew = (
    suite.test_an_unchanged_update_within_the_slack_does_not_renew
)
test_an_unchanged_update_outside_the_slack_renews = suite.test_an_unchanged_update_outside_the_slack_renews
test_fn_raising_leaves_the_session_unchanged = suite.test_fn_raising_leaves_the_session_unchanged
test_values_that_are_not_json_objects_are_refused = suite.test_values_that_are_not_json_objects_are_refused
test_incr_creates_and_increments = suite.test_incr_creates_and_increments
test_incr_refuses_a_field_that_is_not_an_int = suite.test_incr_refuses_a_field_that_is_not_an_int
test_update_refuses_a_ttl_that_is_not_positive = suite.test_update_refuses_a_ttl_that_is_not_positive
test_incr_from_four_threads_loses_nothing = suite.test_incr_from_four_threads_loses_nothing


# -- what only Redis does -----------------------------------------------------------------------


def test_sessions_are_compact_json_under_the_prefix_with_a_redis_expiry(store, redis_prefix, raw):
    store.update("CA1", put({"b": 2, "a": [1, "x"]}), TTL)
    assert own_keys(redis_prefix) == [redis_prefix + "CA1"]
    assert raw.get(redis_prefix + "CA1") == '{"a":[1,"x"],"b":2}'
    assert TTL * 1000 - 1000 < raw.pttl(redis_prefix + "CA1") <= TTL * 1000


def test_redis_writes_nothing_when_unchanged_and_renews_once_outside_the_slack(store, redis_prefix, raw, clock):
    store.update("CA1", put({"b": 2, "a": 1}), TTL)
    for _ in range(5):
        clock.advance(10)
        store.update("CA1", put({"a": 1, "b": 2}), TTL)  # same value, other key order
    assert (TTL - 51) * 1000 < raw.pttl(redis_prefix + "CA1") <= (TTL - 50) * 1000  # not renewed

    clock.advance(RENEW_SLACK)  # now 110 s after the write
    store.update("CA1", put({"a": 1, "b": 2}), TTL)
    assert raw.pttl(redis_prefix + "CA1") > (TTL - 1) * 1000  # renewed
    clock.advance(5)
    store.update("CA1", put({"a": 1, "b": 2}), TTL)
    assert raw.pttl(redis_prefix + "CA1") <= (TTL - 5) * 1000  # and not again within the slack


def test_a_session_without_an_expiry_gets_one(store, redis_prefix, raw):
    """A key someone set without an expiry must not live for ever once the store touches it."""
    raw.set(redis_prefix + "CA1", '{"n":1}')
    assert store.update("CA1", put({"n": 1}), TTL) == {"n": 1}
    assert raw.pttl(redis_prefix + "CA1") > (TTL - 1) * 1000


def test_purge_is_left_to_redis(store, redis_prefix, clock):
    store.update("short", put({"a": 1}), 10)
    store.update("long", put({"a": 3}), TTL)
    clock.advance(10)
    assert store.purge_expired() == 0
    assert own_keys(redis_prefix) == [redis_prefix + "long"]  # Redis dropped the expired one by itself


def test_a_real_expiry_by_redis_clock(store):
    store.update("CA1", put({"a": 1}), 0.2)
    assert store.get("CA1") == {"a": 1}
    time.sleep(0.3)
    assert store.get("CA1") is None


def test_scan_lists_live_sessions_by_prefix_across_many_pages(store, raw, redis_prefix):
    """More keys than one SCAN page or MGET batch; glob characters in prefixes are literal."""
    with raw.pipeline(transaction=False) as pipe:
        for i in range(2500):
            pipe.set(f"{redis_prefix}message:RE{i:04d}", f'{{"i":{i}}}', px=60_000)
        pipe.execute()
    store.update("CA1", put({"call": True}), TTL)
    store.update("m*ss[a]ge?:1", put({"odd": True}), TTL)
    store.update("mXssage:2", put({"odd": False}), TTL)

    found = store.scan("message:")
    assert len(found) == 2500
    assert found[:2] == [("message:RE0000", {"i": 0}), ("message:RE0001", {"i": 1})]
    assert store.scan("m*ss[a]ge?") == [("m*ss[a]ge?:1", {"odd": True})]
    assert store.scan("nothing:") == []
    everything = [("CA1", {"call": True}), ("m*ss[a]ge?:1", {"odd": True}), ("mXssage:2", {"odd": False}), *found]
    assert store.scan("") == everything  # sorted by key


def test_stores_with_other_prefixes_do_not_see_each_other(redis_url, store, redis_prefix):
    other = RedisStore(redis_url, prefix=redis_prefix + "other:")
    try:
        store.update("CA1", put({"mine": True}), TTL)
        other.update("CA1", put({"theirs": True}), TTL)
        assert store.get("CA1") == {"mine": True}
        assert other.get("CA1") == {"theirs": True}
        assert other.scan("CA") == [("CA1", {"theirs": True})]
        other.delete("CA1")
        assert store.get("CA1") == {"mine": True}
    finally:
        other.close()


def test_update_retries_when_another_writer_got_in_first(store, redis_prefix, raw):
    """fn runs again on the value the other writer left; nothing of either is lost."""
    store.update("CA1", put({"n": 1}), TTL)
    seen = []

    def fn(old):
        seen.append(dict(old))
        if len(seen) == 1:  # another server writes between this read and the write
            raw.set(redis_prefix + "CA1", '{"n":5}', keepttl=True)
        return {"n": old["n"] + 1}

    assert store.update("CA1", fn, TTL) == {"n": 6}
    assert seen == [{"n": 1}, {"n": 5}]
    assert store.get("CA1") == {"n": 6}


def test_update_does_not_bring_back_a_session_deleted_meanwhile(store, redis_prefix, raw):
    store.update("CA1", put({"n": 1}), TTL)
    seen = []

    def fn(old):
        seen.append(old)
        if len(seen) == 1:
            raw.delete(redis_prefix + "CA1")
        return None if old is None else {"n": old["n"] + 1}

    assert store.update("CA1", fn, TTL) is None
    assert seen == [{"n": 1}, None]
    assert store.get("CA1") is None


CHILD = """
import sys
from ivr.store.redis import RedisStore
store = RedisStore(sys.argv[1], prefix=sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(100):
    store.incr("CA1", "n")
store.close()
print("done", flush=True)
"""


def test_incr_from_two_processes_loses_nothing(store, redis_url, redis_prefix):
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, redis_prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        assert [c.stdout.readline() for c in children] == ["ready\n", "ready\n"]
        for c in children:  # both start together, so that their increments interleave
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
    assert store.get("CA1") == {"n": 200}


def test_use_after_close_is_refused(redis_url, redis_prefix):
    s = RedisStore(redis_url, prefix=redis_prefix)
    s.close()
    s.close()
    with pytest.raises(StoreError, match=r"redis://127\.0\.0\.1:6379/15 is closed"):
        s.get("CA1")


# -- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/15"),
        ("redis://cache", "redis://cache:6379/0"),
        ("rediss://user:s3cret@cache.example:6380/2", "rediss://cache.example:6380/2"),
    ],
)
def test_open_store_opens_redis_with_the_prefix_and_names_no_password(url, where):
    """Opening does not connect: an app starts while Redis is away, and its webhooks apologise."""
    with open_store(url, env="production", prefix="acme:") as s:
        assert isinstance(s, RedisStore)
        assert s.prefix == "acme:"
        assert s.where == where
        assert "s3cret" not in repr(s)


def test_open_store_redis_prefix_defaults_to_ivr():
    with open_store("redis://cache:6379/0", env="production") as s:
        assert s.prefix == "ivr:"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:s3cret@cache:port/0", "IVR_STORE=redis://...: Port could not be cast"),
        ("redis://:s3cret@cache/zero", "the path must be a database number (redis://host:6379/0), not 'zero'"),
        ("redis://:s3cret@/0", "IVR_STORE=redis://... names no host"),
    ],
)
def test_bad_redis_urls_are_config_errors_that_hide_the_password(url, message):
    with pytest.raises(ConfigError) as info:
        open_store(url, env="production")
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_refused_password_is_a_store_error_that_hides_it(own_redis):
    _, port = own_redis
    with redis.Redis(HOST, port) as admin:
        admin.execute_command("ACL", "SETUSER", "ivr", "on", ">right", "~*", "+@all")
    with RedisStore(f"redis://ivr:s3cret@{HOST}:{port}/{DB}") as s, pytest.raises(StoreError) as info:
        s.get("CA1")
    assert str(info.value).startswith(f"session store redis://{HOST}:{port}/{DB}: reading session 'CA1' failed: ")
    assert "s3cret" not in str(info.value)


# -- Redis down or stalled ----------------------------------------------------------------------

OPERATIONS = {
    "get": lambda s: s.get("CA1"),
    "update": lambda s: s.update("CA1", put({"n": 1}), TTL),
    "read": lambda s: s.read("CA1"),
    "replace": lambda s: s.replace("CA1", None, {"n": 1}, TTL),
    "incr": lambda s: s.incr("CA1", "n"),
    "delete": lambda s: s.delete("CA1"),
    "scan": lambda s: s.scan("message:"),
}


def assert_gives_up_in_time(store: RedisStore, operation, where: str) -> float:
    started = time.perf_counter()
    with pytest.raises(StoreError) as info:
        operation(store)
    took = time.perf_counter() - started
    assert took < BUDGET, f"gave up after {took:.2f} s"
    assert str(info.value).startswith(f"session store {where}: ")
    assert "s3cret" not in str(info.value)
    return took


@pytest.mark.parametrize("name", OPERATIONS)
def test_redis_down_every_operation_fails_fast_with_a_store_error(name):
    port = free_port()
    with RedisStore(f"redis://:s3cret@{HOST}:{port}/{DB}") as s:
        assert_gives_up_in_time(s, OPERATIONS[name], f"redis://{HOST}:{port}/{DB}")
        assert_gives_up_in_time(s, OPERATIONS[name], f"redis://{HOST}:{port}/{DB}")  # and again


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A redis-server of the tests' own on a free port, which they may stall; stopped afterwards."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server, server.port


@pytest.fixture
def stalled(own_redis):
    """The tests' own Redis, stopped (SIGSTOP) as a hung server would be; resumed afterwards."""
    server, port = own_redis
    warm = RedisStore(f"redis://{HOST}:{port}/{DB}")
    warm.update("CA1", put({"n": 1}), TTL)  # a pooled connection, open before the stall
    server.send_signal(signal.SIGSTOP)
    try:
        yield warm, port
    finally:
        server.send_signal(signal.SIGCONT)
        warm.close()


@pytest.mark.parametrize("name", OPERATIONS)
def test_redis_stalled_every_operation_gives_up_within_a_second(stalled, name):
    warm, port = stalled
    where = f"redis://{HOST}:{port}/{DB}"
    assert_gives_up_in_time(warm, OPERATIONS[name], where)  # on the connection it had
    with RedisStore(f"redis://{HOST}:{port}/{DB}") as fresh:  # connecting anew: accepted, then silence
        assert_gives_up_in_time(fresh, OPERATIONS[name], where)


def test_the_store_works_again_once_redis_is_back(own_redis):
    server, port = own_redis
    with RedisStore(f"redis://{HOST}:{port}/{DB}", prefix="back:") as s:
        s.update("CA1", put({"n": 1}), TTL)
        server.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(StoreError):
                s.incr("CA1", "n")
        finally:
            server.send_signal(signal.SIGCONT)
        assert s.incr("CA1", "n") == 2


@pytest.mark.parametrize("token", [None, "tok-1"], ids=["plain", "with-idempotency-token"])
def test_a_webhook_with_redis_stalled_answers_the_error_state_within_a_second(own_redis, token, tmp_path):
    """The caller hears the flow's error state, not silence and not Twilio's application error."""
    from conftest import BASE, FLOWS, TOKEN, caller_params, check_twiml, sign

    from ivr import create_app

    server, port = own_redis
    app = create_app({"IVR_ENV": "test", "IVR_STORE": f"redis://{HOST}:{port}/{DB}", "IVR_REDIS_PREFIX": "stall:",
                      "IVR_FLOWS_DIR": str(FLOWS), "TWILIO_AUTH_TOKEN": TOKEN, "IVR_RECORD_DIR": None})  # fmt: skip
    params = caller_params("CA" + "8" * 32)
    headers = {"X-Twilio-Signature": sign(BASE + "/voice/main", params)}
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    server.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = app.test_client().post("/voice/main", data=params, headers=headers)
        took = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGCONT)
    assert response.status_code == 200
    assert b"something went wrong on our side" in response.data  # main's error state
    check_twiml(response.data)
    assert took < 1.0, f"answered after {took:.2f} s"
