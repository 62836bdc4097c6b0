"""Voicemail delivered effectively once, campaign outcomes that are never lost, and only the records
something reads: concurrent threads on SQLite and on the shared Redis."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ACCOUNT, BASE, phone_on, recording_params, sign

from ivr.outbound.calls import place_call
from ivr.outbound.campaign import row_key
from ivr.outbound.client import make_client
from ivr.phone.fakes import FakeTwilioHttp, call_json
from ivr.store import MemoryStore
from ivr.web.delivery import LINK_TTL, redeliver_stale
from ivr.web.messages import DELIVERY_LEASE, MessageBox
from ivr.web.services import services

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
CALL = "CA" + "8" * 32
RECORDING = "RE" + "8" * 32
RECORDING_PARAMS = recording_params(CALL, RECORDING, 12)
TRANSCRIPTION_PARAMS = {**RECORDING_PARAMS, "TranscriptionText": "Call me back.", "TranscriptionStatus": "completed"}
VOICEMAIL = "?flow=accounts&state=voicemail"


def post(app, path: str, params: dict, base: str = BASE):
    return app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(base + path, params)})


@pytest.fixture(params=["sqlite", "redis"])
def servers(request, make_app, tmp_path):
    """`servers(n)`: n apps, each with its own spool, sharing one store (SQLite, or Redis under the test's prefix)."""
    if request.param == "sqlite":
        config = {"IVR_STORE": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"}
    else:
        config = {"IVR_STORE": request.getfixturevalue("redis_url"),
                  "IVR_REDIS_PREFIX": request.getfixturevalue("redis_prefix")}  # fmt: skip
    made = []

    def make(n: int, clock=None):
        made.extend(make_app(config, clock=clock) for _ in range(n))
        return made[-n:]

    yield make
    for app in made:
        services(app).store.close()


def at_once(*jobs) -> None:
    """Run each job in a thread of its own, all released together; wait for all."""
    start = threading.Barrier(len(jobs))
    threads = [threading.Thread(target=lambda job=job: (start.wait(), job())) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


# -- item 2: effectively once -----------------------------------------------------------------------


def test_five_concurrent_copies_of_a_recording_callback_deliver_once(servers, hooks):
    delivered = []

    def deliver(ctx):
        time.sleep(0.2)  # long enough for every copy to arrive while the first delivery runs
        delivered.append(ctx.message["recording_sid"])

    hooks.use("deliver_voicemail", deliver)
    apps = servers(5)
    answers = []
    at_once(*[lambda app=app: answers.append(post(app, "/twilio/recording" + VOICEMAIL, RECORDING_PARAMS).status_code)
              for app in apps])  # fmt: skip
    assert answers == [200] * 5
    assert delivered == [RECORDING]
    [message] = MessageBox(services(apps[0]).store).recent()
    assert message["delivered"] is True and "claim" not in message


def test_a_transcription_that_arrives_while_on_message_runs_is_delivered_after_it(servers, hooks):
    running, release, delivered = threading.Event(), threading.Event(), []

    def deliver(ctx):
        delivered.append((ctx.message["update"], (ctx.message["transcription"] or {}).get("text")))
        running.set()
        release.wait(10)

    hooks.use("deliver_voicemail", deliver)
    first, second = servers(2)
    recording = threading.Thread(target=post, args=(first, "/twilio/recording" + VOICEMAIL, RECORDING_PARAMS))
    recording.start()
    assert running.wait(10)
    assert post(second, "/twilio/transcription" + VOICEMAIL, TRANSCRIPTION_PARAMS).status_code == 200
    assert delivered == [(False, None)]  # stored by the other server; the delivery in progress still owns it
    release.set()
    recording.join(10)
    assert delivered == [(False, None), (True, "Call me back.")]


def test_a_claim_whose_lease_ran_out_is_delivered_again_with_its_recording_sid(servers, hooks):
    now = {"t": NOW}
    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append((ctx.message["recording_sid"], ctx.message["attempt"])))
    [app] = servers(1, clock=lambda: now["t"])
    box = MessageBox(services(app).store)
    _, claim = box.recording(RECORDING_PARAMS, "accounts", "voicemail", None, NOW)  # a deliverer took it, then died
    assert claim is not None
    assert redeliver_stale(app) == 0 and delivered == []  # its lease still runs
    now["t"] = NOW + timedelta(seconds=DELIVERY_LEASE + 1)
    assert redeliver_stale(app) == 1
    assert delivered == [(RECORDING, 2)]
    assert box.get(RECORDING)["delivered"] is True
    assert redeliver_stale(app) == 0


# -- item 3: a campaign outcome is one atomic decision -------------------------------------------------


class GappyStore(MemoryStore):
    """A memory store that takes 50 ms between reading a record and being done with it."""

    def get(self, key):
        value = super().get(key)
        time.sleep(0.05)
        return value

    def update(self, key, fn, ttl):
        return super().update(key, lambda value: (time.sleep(0.05), fn(value))[1], ttl)


def test_a_status_callback_racing_the_campaigns_link_never_loses_the_outcome(make_app):
    app = make_app({"IVR_PUBLIC_URL": "https://ivr.example.com", "TWILIO_FROM_NUMBER": "+15005550006"})
    store = services(app).store = GappyStore()
    sids = [f"CA{n:032x}" for n in range(20)]
    http = FakeTwilioHttp().respond_with(
        "POST", r"/Calls\.json$", lambda request: (201, call_json(request, sids[int(request.data["To"][-2:])]))
    )
    client = make_client(app.config, http_client=http)
    flows = services(app).flows.flows
    for n in range(20):  # as a campaign marks each row pending before its create request
        store.update(row_key("spring", f"+141555501{n:02d}"), lambda _: {"status": "pending"}, 3600)

    def campaign_side(n: int) -> None:
        time.sleep(0.01)  # the status callback reads call:<sid> first, then the link comes
        row = row_key("spring", f"+141555501{n:02d}")
        result = place_call(app.config, "main", f"+141555501{n:02d}", client=client, store=store, flows=flows,
                            campaign="spring", row=row)  # fmt: skip
        store.update(row, lambda old: {**(old or {}), "status": "placed",
                                       **({"outcome": result.outcome} if result.outcome else {})}, 3600)  # fmt: skip

    def callback_side(n: int) -> None:
        params = {"AccountSid": ACCOUNT, "CallSid": sids[n], "CallStatus": "busy", "Direction": "outbound-api"}
        post(app, "/twilio/status", params, base=app.config["IVR_PUBLIC_URL"])

    at_once(*[lambda n=n: campaign_side(n) for n in range(20)], *[lambda n=n: callback_side(n) for n in range(20)])
    outcomes = [store.get(row_key("spring", f"+141555501{n:02d}")).get("outcome") for n in range(20)]
    assert outcomes == ["busy"] * 20


# -- item 15: only what something reads ---------------------------------------------------------------


def test_an_inbound_call_leaves_no_call_record_behind(make_app):
    app = make_app()
    call = phone_on(app).dial("main")
    call.hangup()
    assert services(app).store.scan("call:") == []


def test_a_campaign_calls_link_lasts_only_until_its_outcome_is_kept(make_app, clock):
    app = make_app()
    store = services(app).store = MemoryStore(clock=clock)
    row = row_key("spring", "+14155550143")
    store.update(row, lambda _: {"status": "placed"}, 3600)
    store.update(f"call:{CALL}", lambda _: {"campaign": "spring", "row": row}, 3600)
    params = {"AccountSid": ACCOUNT, "CallSid": CALL, "CallStatus": "completed", "Direction": "outbound-api"}
    assert post(app, "/twilio/status", params).status_code == 200
    assert store.get(row)["outcome"] == "answered"
    clock.advance(LINK_TTL + 1)
    assert store.get(f"call:{CALL}") is None
    assert store.get(row)["outcome"] == "answered"


@pytest.mark.parametrize("kind", ["recording", "transcription"])
def test_a_callback_without_recording_sid_gets_one_clear_line_and_200(make_app, caplog, kind):
    app = make_app()
    params = {k: v for k, v in RECORDING_PARAMS.items() if k != "RecordingSid"}
    with caplog.at_level(logging.INFO, logger="ivr"):
        assert post(app, f"/twilio/{kind}" + VOICEMAIL, params).status_code == 200
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.exc_info is None
    assert record.getMessage() == (
        f"CallSid={CALL} {kind} callback without RecordingSid ignored ({BASE}/twilio/{kind}{VOICEMAIL})"
    )
    assert services(app).spool.pending() == 0


def test_a_message_of_a_flow_without_on_message_is_stored_and_never_swept_again(make_app):
    now = {"t": NOW}
    app = make_app(clock=lambda: now["t"])
    assert post(app, "/twilio/recording?flow=main&state=voicemail", RECORDING_PARAMS).status_code == 200
    box = MessageBox(services(app).store)
    assert "claim" not in box.get(RECORDING) and not box.get(RECORDING).get("delivered")
    now["t"] = NOW + timedelta(seconds=DELIVERY_LEASE + 1)
    assert redeliver_stale(app) == 0
