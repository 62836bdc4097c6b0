"""Webhooks Twilio sends more than once, at the same time: one answer stored, one text sent, the token a hint.

Attempts are made to overlap for sure: each reads the call's session and then waits at a barrier
until every attempt has read it, so all of them step from the same session before any writes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import BASE, phone_on, sign

from ivr.phone.fakes import FakeTwilioHttp, message_json
from ivr.web.services import services

SHOP = """\
start: menu
states:
  menu:
    say: Press 1 to confirm your order, 2 to hear it again.
    gather: {}
    routes: {"1": confirm, "2": order}
  confirm:
    sms: Your order is confirmed.
    say: Confirmed. We sent you a text.
    hangup: true
  order:
    say: Your order is one blue teapot.
    hangup: true
"""
LOOP = """\
start: menu
states:
  menu:
    say: Press 1 to be noted.
    gather: {}
    routes: {"1": note}
  note: {run: note, next: menu}
"""
LOOKUP = """\
start: lookup
states:
  lookup: {run: lookup, next: menu}
  menu:
    say: Press 1 to hear it again.
    gather: {}
    routes: {"1": greet}
  greet:
    say: "Hello {{ name }}."
    hangup: true
"""
TEXTS = r"/Messages\.json$"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_settings(request, tmp_path) -> dict:
    """The settings of each kind of store; Redis is the tests' shared one, under this test's prefix."""
    if request.param == "memory":
        return {"IVR_STORE": "memory://"}
    if request.param == "sqlite":
        return {"IVR_STORE": f"sqlite:///{tmp_path}/sessions.sqlite3"}
    prefix = request.getfixturevalue("redis_prefix")
    return {"IVR_STORE": request.getfixturevalue("redis_url"), "IVR_REDIS_PREFIX": prefix}


@pytest.fixture
def shop(make_app, flows_dir):
    """Build the shop's app on a store, with the fake Twilio REST API answering texts."""

    def build(settings: dict | None = None):
        (flows_dir / "shop.yaml").write_text(SHOP)
        app = make_app({"IVR_FLOWS_DIR": str(flows_dir), **(settings or {})})
        http = FakeTwilioHttp().respond_with("POST", TEXTS, lambda request: (201, message_json(request)))
        services(app).twilio_http = http
        return app, http

    return build


def overlapping(monkeypatch, store, sid: str, parties: int, meanwhile=None) -> None:
    """The first `parties` reads of the session wait for one another; `meanwhile` runs once, after all read."""
    barrier = threading.Barrier(parties, action=meanwhile, timeout=10)
    real, reads = store.read, []

    def read(key):
        value = real(key)
        if key == sid and len(reads) < parties:
            reads.append(key)
            barrier.wait()
        return value

    monkeypatch.setattr(store, "read", read)


def post_at_once(app, requests: list[tuple[str, dict, dict]]) -> list:
    """POST every (path, params, headers) from its own thread at the same time; the responses, closed."""

    def post(path, params, headers):
        response = app.test_client().post(path, data=params, headers=headers)
        response.close()  # a server closes the response once sent: texts go then
        return response

    with ThreadPoolExecutor(len(requests)) as pool:
        return [f.result() for f in [pool.submit(post, *r) for r in requests]]


def menu_press(call, digits: str, token: str, flow: str = "shop") -> tuple[str, dict, dict]:
    """The menu's Gather result for `call`, signed, with Twilio's idempotency token."""
    path = f"/voice/{flow}/menu"
    params = {**call.exchanges[0].params, "CallStatus": "in-progress", "Digits": digits}
    headers = {"X-Twilio-Signature": sign(BASE + path, params), "I-Twilio-Idempotency-Token": token}
    return path, params, headers


def counting_writes(monkeypatch, store) -> list:
    """Every write to the store from now on, as (how, key): a compare-and-set that took (`replace`), one that
    found the session changed (`replace refused`), an `update`."""
    writes, replace, update = [], store.replace, store.update

    def counted_replace(key, seen, value, ttl):
        done = replace(key, seen, value, ttl)
        writes.append(("replace" if done else "replace refused", key))
        return done

    def counted_update(key, fn, ttl):
        writes.append(("update", key))
        return update(key, fn, ttl)

    monkeypatch.setattr(store, "replace", counted_replace)
    monkeypatch.setattr(store, "update", counted_update)
    return writes


def test_overlapping_retries_send_one_text_answer_alike_and_store_the_winners_session(
    shop, store_settings, monkeypatch
):
    app, http = shop(store_settings)
    store = services(app).store
    call = phone_on(app).dial("shop")
    status = {"status": "in-progress", "duration": "7"}  # a status callback stored while the attempts step
    callback = store.update  # the callback's write is not the webhooks' to count
    overlapping(monkeypatch, store, call.sid, 5, lambda: callback(call.sid, lambda s: {**s, **status}, 60))
    writes = counting_writes(monkeypatch, store)

    responses = post_at_once(app, [menu_press(call, "1", "retried")] * 5)

    assert [r.status_code for r in responses] == [200] * 5  # the test client checked each against the schema
    answer = responses[0].get_data(as_text=True)
    assert "Confirmed. We sent you a text." in answer
    assert all(r.get_data(as_text=True) == answer for r in responses)
    [text] = http.sent("POST", TEXTS)
    assert dict(text.form)["Body"] == "Your order is confirmed."
    stored = store.get(call.sid)
    assert "twiml" not in stored["last"] and stored["last"]["document"] == [["confirm", "enter"]]
    assert stored["visits"]["shop/confirm"] == 1  # one attempt's step, not several laid over one another
    assert stored["effects"] == {f"{call.sid}:shop/confirm:1": "sent"}
    assert {k: stored[k] for k in status} == status
    # One step is written: the winner's (after at least one refusal: the callback wrote since every read); each
    # loser's write is refused, at least once, and changes nothing; then the text is marked sent.
    assert writes.count(("replace", call.sid)) == 1 and writes.count(("update", call.sid)) == 1
    assert writes.count(("replace refused", call.sid)) >= 5 and len({key for _, key in writes}) == 1


def test_a_webhook_writes_the_session_once(shop, monkeypatch):
    app, _ = shop()
    call = phone_on(app).dial("shop")
    writes = counting_writes(monkeypatch, services(app).store)
    path, params, headers = menu_press(call, "2", "once")
    assert b"one blue teapot" in app.test_client().post(path, data=params, headers=headers).data
    assert writes == [("replace", call.sid)]


def test_a_sqlite_webhook_is_one_select_and_one_write(shop, tmp_path):
    app, _ = shop({"IVR_STORE": f"sqlite:///{tmp_path}/sessions.sqlite3"})
    call = phone_on(app).dial("shop")
    statements: list[str] = []
    services(app).store._connection().set_trace_callback(statements.append)
    path, params, headers = menu_press(call, "2", "once")
    assert b"one blue teapot" in app.test_client().post(path, data=params, headers=headers).data
    assert [s.split()[0] for s in statements] == ["SELECT", "UPDATE"]  # no BEGIN, no COMMIT, no second read


def test_a_redis_webhook_is_two_round_trips(shop, redis_url, redis_prefix, monkeypatch):
    app, _ = shop({"IVR_STORE": redis_url, "IVR_REDIS_PREFIX": redis_prefix})
    call = phone_on(app).dial("shop")  # its first webhook loaded the compare-and-set script
    client = services(app).store._client
    commands, real = [], client.execute_command
    monkeypatch.setattr(client, "execute_command", lambda *args, **kw: (commands.append(args[0]), real(*args, **kw))[1])
    path, params, headers = menu_press(call, "2", "once")
    assert b"one blue teapot" in app.test_client().post(path, data=params, headers=headers).data
    assert commands == ["GET", "EVALSHA"]  # a read, then one script that checks and writes


def test_the_same_token_on_a_different_request_is_answered_for_that_request(shop):
    app, _ = shop()
    call = phone_on(app).dial("shop")
    client = app.test_client()
    path, confirm, headers = menu_press(call, "1", "same")
    _, repeat, other_headers = menu_press(call, "2", "same")
    assert b"Confirmed." in client.post(path, data=confirm, headers=headers).data
    other = client.post(path, data=repeat, headers=other_headers)
    assert b"one blue teapot" in other.data  # not the first request's answer
    assert client.post(path, data=repeat, headers=other_headers).data == other.data  # the same again: as stored


def test_overlapping_different_requests_with_one_token_each_get_their_own_answer(shop, monkeypatch):
    app, http = shop()
    store = services(app).store
    call = phone_on(app).dial("shop")
    overlapping(monkeypatch, store, call.sid, 2)
    confirm, repeat = post_at_once(app, [menu_press(call, "1", "same"), menu_press(call, "2", "same")])
    assert b"Confirmed." in confirm.data
    assert b"one blue teapot" in repeat.data
    stored = store.get(call.sid)
    # Both steps are in the session, one after the other: the later one stepped again on the earlier's.
    assert (stored["visits"]["shop/confirm"], stored["visits"]["shop/order"]) == (1, 1)
    assert len(http.sent("POST", TEXTS)) == 1


def test_a_hook_gets_a_key_stable_for_its_call_state_and_visit(make_app, flows_dir, hooks):
    hooks.returns("note")
    (flows_dir / "loop.yaml").write_text(LOOP)
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("loop")
    call.press("1")
    call.press("1")
    assert [ctx.key for ctx in hooks.calls["note"]] == [f"{call.sid}:loop/note:1", f"{call.sid}:loop/note:2"]


# -- what a retry is answered from --------------------------------------------------------------------


def test_a_retry_after_a_hook_is_the_same_bytes_and_runs_nothing_again(make_app, flows_dir, hooks, store_settings):
    hooks.returns("lookup", vars={"name": "Ada"})
    (flows_dir / "lookup.yaml").write_text(LOOKUP)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), **store_settings})
    client = app.test_client()
    params = {**phone_on(app).dial("lookup").exchanges[0].params, "CallSid": "CA" + "7" * 32}
    headers = {"X-Twilio-Signature": sign(BASE + "/voice/lookup", params), "I-Twilio-Idempotency-Token": "t1"}
    first = client.post("/voice/lookup", data=params, headers=headers).data
    assert len(hooks.calls["lookup"]) == 2  # the dial's, and this call's
    again = client.post("/voice/lookup", data=params, headers=headers).data
    assert again == first and b"Press 1 to hear it again." in first
    assert len(hooks.calls["lookup"]) == 2  # not run again
    last = services(app).store.get(params["CallSid"])["last"]
    # Kept as the chain its flow version renders again, not as the TwiML.
    assert last["document"] == [["lookup", "enter"], ["menu", "enter"]] and "twiml" not in last


def test_a_templated_answer_is_kept_as_its_twiml(make_app, flows_dir, hooks):
    hooks.returns("lookup", vars={"name": "Ada"})
    (flows_dir / "lookup.yaml").write_text(LOOKUP)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir)})
    call = phone_on(app).dial("lookup")
    path, params, headers = menu_press(call, "1", "t2", flow="lookup")
    first = app.test_client().post(path, data=params, headers=headers)
    assert b"Hello Ada." in first.data
    last = services(app).store.get(call.sid)["last"]
    assert last["twiml"] == first.get_data(as_text=True) and "document" not in last
    again = app.test_client().post(path, data=params, headers=headers)
    assert again.data == first.data
