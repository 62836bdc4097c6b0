"""Callbacks are never acknowledged before they are durable: the spool, its drainer, the connection
overrides Twilio is given, `python -m ivr drain` and `reconcile`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ACCOUNT, BASE, phone_on, recording_params, sign, verb
from helpers import free_port

from ivr.cli.drain import drain, reconcile
from ivr.errors import StoreError
from ivr.outbound.client import make_client
from ivr.outbound.deps import OutboundDeps
from ivr.phone.fakes import FakeTwilioHttp
from ivr.store import MemoryStore
from ivr.web.background import Background
from ivr.web.drain import drain_now, warn_if_volatile
from ivr.web.messages import MessageBox
from ivr.web.services import services
from ivr.web.spool import Spool

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "twilio"
CALL = "CA" + "7" * 32
RECORDING = "RE" + "7" * 32
PATH = "/twilio/recording?flow=accounts&state=voicemail"
RECORDING_PARAMS = recording_params(CALL, RECORDING, 9)


class FlakyStore(MemoryStore):
    """A memory store whose writes fail while `down` is set, as a stalled Redis or a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def update(self, key, fn, ttl):
        if self.down:
            raise StoreError("session store flaky://: updating failed: Timeout reading from socket")
        return super().update(key, fn, ttl)


def post(app, path: str, params: dict):
    return app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path, params)})


@pytest.fixture
def voicemail(make_app, hooks):
    """The accounts line on a store that can fail, and the deliveries its on_message hook received."""
    delivered: list[dict] = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(dict(ctx.message)))
    app = make_app()
    services(app).store = FlakyStore()
    return app, delivered


def test_a_recording_callback_during_a_store_fault_is_kept_and_delivered_once_the_store_is_back(voicemail):
    app, delivered = voicemail
    services(app).store.down = True
    assert post(app, PATH, RECORDING_PARAMS).status_code == 200
    assert delivered == [] and services(app).spool.pending() == 1  # on disk, not lost
    services(app).store.down = False
    drain_now(app)
    assert [m["recording_sid"] for m in delivered] == [RECORDING]
    assert MessageBox(services(app).store).get(RECORDING)["delivered"] is True
    assert services(app).spool.pending() == 0


def test_a_final_status_during_a_store_fault_is_kept_until_the_store_is_back(voicemail):
    app, _ = voicemail
    store = services(app).store
    store.update(CALL, lambda _: {"status": "in-progress"}, 3600)
    store.down = True
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": CALL,
        "CallStatus": "completed",
        "CallDuration": "31",
        "Direction": "inbound",
    }
    assert post(app, "/twilio/status", params).status_code == 200
    assert store.get(CALL)["status"] == "in-progress"
    store.down = False
    drain_now(app)
    assert store.get(CALL) == {"status": "completed", "ended": True, "duration": "31"}


def test_a_spool_that_cannot_write_answers_503_and_logs_the_recording_and_url(voicemail, tmp_path, caplog):
    app, delivered = voicemail
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    services(app).spool = Spool(blocker / "spool")
    with caplog.at_level(logging.ERROR, logger="ivr.web"):
        assert post(app, PATH, RECORDING_PARAMS).status_code == 503  # Twilio may retry: nothing was kept
    [line] = [r.getMessage() for r in caplog.records if "NOT acknowledged" in r.getMessage()]
    assert f"RecordingSid={RECORDING}" in line and f"CallSid={CALL}" in line and BASE + PATH in line
    assert delivered == []


def test_an_entry_leaves_the_spool_only_once_the_store_committed_it(tmp_path):
    spool = Spool(tmp_path)
    for n in range(3):
        spool.append({"n": n})
    applied = []

    def apply(entry):
        if entry["n"] == 1:
            raise StoreError("the store is down")
        applied.append(entry["n"])

    result = spool.drain(apply)
    assert (applied, result.applied, result.left, spool.pending()) == ([0], 1, 2, 2)
    result = spool.drain(lambda entry: applied.append(entry["n"]))
    assert (applied, result.left, spool.pending()) == ([0, 1, 2], 0, 0)


def test_an_entry_that_cannot_be_applied_is_set_aside_and_the_rest_go_on(tmp_path, caplog):
    spool = Spool(tmp_path)
    spool.append({"n": 0})
    spool.append({"n": 1})
    applied = []

    def apply(entry):
        if entry["n"] == 0:
            raise KeyError("kind")
        applied.append(entry["n"])

    assert spool.drain(apply).rejected == 1
    assert applied == [1]
    rejected = json.loads((tmp_path / "rejected.jsonl").read_text())
    assert rejected.pop("spooled_at") > 0  # set aside with when it was written, for whoever looks
    assert rejected == {"n": 0}


def test_one_drainer_per_spool_directory_whatever_the_process(tmp_path):
    spool = Spool(tmp_path)
    spool.append({"n": 0})
    holder = subprocess.Popen(
        ["python", "-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f,fcntl.LOCK_EX); "
         "print('held',flush=True); time.sleep(30)", str(tmp_path / "drain.lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert spool.drain(lambda entry: None) is None  # another process drains this directory
        assert spool.pending() == 1
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert spool.drain(lambda entry: None).applied == 1


def test_appends_from_many_processes_while_draining_lose_nothing(tmp_path):
    script = (
        "import sys; from ivr.web.spool import Spool; s = Spool(sys.argv[1]); "
        "[s.append({'w': sys.argv[2], 'n': n}) for n in range(200)]"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(w)]) for w in range(4)]
    seen = []
    spool = Spool(tmp_path)
    while any(w.poll() is None for w in writers):
        spool.drain(seen.append)
    spool.drain(seen.append)
    assert all(w.returncode == 0 for w in writers)
    assert sorted((e["w"], e["n"]) for e in seen) == sorted((str(w), n) for w in range(4) for n in range(200))


def test_delivery_runs_without_a_request_context(voicemail, hooks):
    from flask import has_app_context, has_request_context

    app, _ = voicemail
    contexts = []
    hooks.use("deliver_voicemail", lambda ctx: contexts.append((has_request_context(), has_app_context())))
    assert post(app, PATH, RECORDING_PARAMS).status_code == 200
    assert contexts == [(False, False)]


def test_a_worker_forked_after_start_gets_a_background_thread_of_its_own(tmp_path):
    ran = []
    background = Background(on_start=lambda: ran.append(os.getpid()))
    background.start()
    background.wait().result(timeout=5)
    assert ran == [os.getpid()]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: the parent's thread did not come along; a new one must run the work
        try:
            done = []
            background.soon("work", lambda: done.append(1))
            background.wait().result(timeout=5)
            os.write(write, f"{ran[-1] == os.getpid()} {done}".encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 100).decode() == "True [1]"
    background.shutdown()


def test_the_start_up_drain_stores_what_an_earlier_process_spooled(voicemail):
    app, delivered = voicemail
    services(app).spool.append(
        {"kind": "recording", "params": RECORDING_PARAMS, "flow": "accounts", "state": "voicemail"}
    )
    services(app).background.start()
    assert [m["recording_sid"] for m in delivered] == [RECORDING]


# -- what Twilio is told --------------------------------------------------------------------------


def test_callback_urls_carry_connection_overrides_that_retry_within_twilios_total(make_app):
    call = phone_on(make_app()).dial("accounts")
    call.press("3")
    record = verb(call, "Record")
    for url in (record.get("recordingStatusCallback"), record.get("transcribeCallback")):
        if url is None:
            continue
        options = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).fragment))
        assert set(options["rp"].split(",")) == {"ct", "rt", "5xx"}
        assert 1 <= int(options["rc"]) <= 5
        attempts = int(options["rc"]) + 1
        assert attempts * (int(options["ct"]) + int(options["rt"])) <= int(options["tt"]) <= 15000


def test_the_fragment_is_never_sent_so_the_signed_callback_is_accepted(make_app, hooks):
    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(ctx.message["recording_sid"]))
    app = make_app()  # with TWILIO_AUTH_TOKEN: every callback's signature is checked
    call = phone_on(app).dial("accounts")
    call.press("3")
    call.record(seconds=4)
    [recording] = [c for c in call.callbacks if "/twilio/recording" in c.url]
    assert (recording.status, "#" in recording.url) == (200, False)
    assert len(delivered) == 1


def test_a_placed_calls_status_callback_carries_the_overrides(make_app):
    from ivr.core.twiml import CALLBACK_OVERRIDES
    from ivr.outbound.calls import place_call
    from ivr.phone.fakes import call_json

    http = FakeTwilioHttp().respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    app = make_app({"IVR_PUBLIC_URL": "https://ivr.example.com"})
    client = make_client(app.config, http_client=http)
    place_call(app.config, "main", "+14155550143", from_="+15005550006", client=client, store=MemoryStore())
    [sent] = http.sent("POST", r"/Calls\.json$")
    assert dict(sent.form)["StatusCallback"] == "https://ivr.example.com/twilio/status" + CALLBACK_OVERRIDES


# -- commands -------------------------------------------------------------------------------------


def test_the_drain_command_stores_what_the_spool_holds(make_app, hooks, tmp_path):

    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(ctx.message["recording_sid"]))
    store_url = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    app = make_app({"IVR_STORE": store_url})
    settings = {k: app.config[k] for k in app.config if k.startswith(("IVR_", "TWILIO_"))}
    Spool(app.config["IVR_SPOOL_DIR"]).append(
        {"kind": "recording", "params": RECORDING_PARAMS, "flow": "accounts", "state": "voicemail"}
    )
    result = CliRunner().invoke(drain, [], obj=OutboundDeps(settings=settings))
    assert (result.exit_code, result.output) == (0, "1 applied, 0 rejected, 0 left; 0 retried deliveries\n")
    assert delivered == [RECORDING]


def test_reconcile_stores_and_delivers_recordings_whose_callbacks_were_lost(make_app, hooks, tmp_path):

    delivered = []
    hooks.use("deliver_voicemail", lambda ctx: delivered.append(ctx.message["recording_sid"]))
    app = make_app({"IVR_STORE": f"sqlite:///{tmp_path / 'ivr.sqlite3'}"})
    settings = {k: app.config[k] for k in app.config if k.startswith(("IVR_", "TWILIO_"))}
    listed = json.loads((FIXTURES / "recordings_list.json").read_text())
    kept = listed["recordings"][0]
    MessageBox(services(app).store).recording(
        {"RecordingSid": kept["sid"], "CallSid": kept["call_sid"], "RecordingStatus": "completed"},
        "accounts", "voicemail", None, datetime(2026, 11, 25, 15, 1, tzinfo=UTC),
    )  # fmt: skip
    services(app).store.close()
    http = FakeTwilioHttp().respond("GET", r"/Recordings\.json$", file=FIXTURES / "recordings_list.json")
    deps = OutboundDeps(settings=settings, client=make_client(settings, http_client=http))
    result = CliRunner().invoke(reconcile, ["--since", "2026-11-25T15:00Z", "--flow", "accounts"], obj=deps)
    assert result.exit_code == 0, result.output
    [request] = http.sent("GET", r"/Recordings\.json$")
    assert request.params == {"DateCreated>": "2026-11-25T15:00:00Z"}
    missing = listed["recordings"][1]["sid"]
    assert delivered == [missing]  # the first one was stored already: not delivered again
    assert "2 recordings in the window, 1 missing from the store" in result.output


# -- the store's own durability ---------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_redis_that_keeps_nothing_on_disk_is_warned_about_while_it_holds_messages(make_app, tmp_path, caplog):
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        app = None
        for _ in range(100):
            try:
                app = make_app({"IVR_STORE": f"redis://127.0.0.1:{port}/0"})
                services(app).store.get("x")
                break
            except StoreError:
                time.sleep(0.05)
        with caplog.at_level(logging.WARNING, logger="ivr.web"):
            warn_if_volatile(app)  # no messages yet: nothing to lose
            assert not caplog.records
            MessageBox(services(app).store).recording(RECORDING_PARAMS, "accounts", "voicemail", None,
                                                      datetime(2026, 11, 25, 15, tzinfo=UTC))  # fmt: skip
            warn_if_volatile(app)
        [line] = [r.getMessage() for r in caplog.records]
        assert "writes nothing to disk" in line and "appendonly yes" in line
        services(app).store.close()
    finally:
        server.terminate()
        server.wait()


def test_a_status_callback_sent_with_get_is_stored_like_a_post(app, phone):
    """Twilio lets a number's status callback use GET: its parameters come in the query, signed with the URL."""
    import urllib.parse

    from conftest import BASE, caller_params, sign

    call = phone.dial("main")
    params = {**caller_params(call.sid, status="completed"), "CallDuration": "42"}
    target = "/twilio/status?" + urllib.parse.urlencode(params)
    response = app.test_client().get(target, headers={"X-Twilio-Signature": sign(BASE + target, {})})
    assert response.status_code == 200
    session = services(app).store.get(call.sid)
    assert (session["status"], session["duration"]) == ("completed", "42")
