"""GET /metrics in one process: each metric moves with what the app does, labels carry no caller input,
and only this machine or the bearer IVR_METRICS_TOKEN may read them (ivr.web.metrics).

Counters live in the process's default registry, shared by every app the suite builds: each test reads
what moved while it ran.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from urllib.parse import urlencode

import pytest
from conftest import BASE, ROOT, TOKEN, caller_params, phone_on, recording_params, sign
from helpers import HOST, free_port, redis_server
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ivr.core.effects import SendText
from ivr.errors import StoreError
from ivr.web import metrics
from ivr.web.effects import send_text
from ivr.web.services import services
from ivr.web.spool import Spool

VOICE_STATE = "/voice/<flow_id>/<state>"
METRICS_TOKEN = "m" * 32
DIGITS = "8675309"
NUMBER = "+15551230000"


def value(name: str, **labels: str) -> float:
    """A sample's value in this process now (0 when it was never counted)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Moved:
    """What a sample was when the test began: `.by()` is how far it moved since."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels
        self.before = value(name, **labels)

    def by(self) -> float:
        return value(self.name, **self.labels) - self.before


@pytest.fixture
def metrics_app(make_app):
    return make_app({"IVR_METRICS_TOKEN": METRICS_TOKEN})


def scrape(client, **headers) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.status_code
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


# -- webhooks, calls, store ------------------------------------------------------------------------


def test_a_call_counts_its_webhooks_by_url_rule_and_status_and_times_them(metrics_app):
    entered = Moved("ivr_webhooks_total", route="/voice/<flow_id>", status="200")
    resumed = Moved("ivr_webhooks_total", route=VOICE_STATE, status="200")
    timed = Moved("ivr_webhook_seconds_count", route=VOICE_STATE)
    gets = Moved("ivr_store_seconds_count", op="get")
    updates = Moved("ivr_store_seconds_count", op="update")
    call = phone_on(metrics_app).dial("main")
    call.press("2")
    assert entered.by() == 1
    assert resumed.by() >= 1 and timed.by() == resumed.by()
    assert gets.by() == updates.by() == 1 + resumed.by()


def test_a_call_is_in_progress_from_its_first_webhook_until_its_final_status(metrics_app):
    in_progress = Moved("ivr_calls_in_progress")
    call = phone_on(metrics_app).dial("main")
    assert in_progress.by() == 1
    call.press("2")
    assert in_progress.by() == 1  # later webhooks of the same call do not count it again
    call.hangup()  # the phone posts the completed status; the test app drains it at once
    assert in_progress.by() == 0


def test_a_refused_signature_is_counted_with_its_403(metrics_app):
    refused = Moved("ivr_webhooks_total", route=VOICE_STATE, status="403")
    response = metrics_app.test_client().post("/voice/main/menu", data=caller_params("CA" + "1" * 32))
    assert response.status_code == 403
    assert refused.by() == 1


def test_a_store_failure_is_counted_and_the_caller_gets_the_apology(metrics_app, monkeypatch):
    failed = Moved("ivr_store_errors_total", op="get")
    apologies = Moved("ivr_error_answers_total", flow="main", kind="apology")
    error_states = Moved("ivr_error_answers_total", flow="main", kind="error_state")

    def down(key):
        raise StoreError("session store: reading failed: Connection refused")

    monkeypatch.setattr(services(metrics_app).store, "read", down)  # a webhook's one read
    phone_on(metrics_app).dial("main")
    assert failed.by() == 1
    assert apologies.by() + error_states.by() == 1  # main has no error state of its own today, or it has one


def test_a_failing_hook_sends_the_call_to_the_error_state_and_both_are_counted(make_app, hooks, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "broken.yaml").write_text(
        "start: lookup\nerror_state: oops\nstates:\n"
        "  lookup: {run: boom, next: menu}\n"
        "  menu: {say: Menu., hangup: true}\n"
        "  oops: {say: Sorry., hangup: true}\n"
    )
    hooks.raises("boom", RuntimeError("the database is down"))
    app = make_app({"IVR_FLOWS_DIR": str(flows)})
    errors = Moved("ivr_error_answers_total", flow="broken", kind="error_state")
    hook_errors = Moved("ivr_hook_calls_total", hook="boom", result="error")
    hook_timed = Moved("ivr_hook_seconds_count", hook="boom")
    phone_on(app).dial("broken")
    assert errors.by() == 1
    assert hook_errors.by() == 1 and hook_timed.by() == 1


@pytest.mark.parametrize(("error", "result"), [(None, "ok"), ("timeout", "timeout"), ("busy", "busy"),
                                               ("RuntimeError: x", "error")])  # fmt: skip
def test_a_hook_record_is_counted_by_its_result(error, result):
    counted = Moved("ivr_hook_calls_total", hook="lookup", result=result)
    metrics.hook_called({"name": "lookup", "error": error, "seconds": 0.01})
    assert counted.by() == 1


def test_texts_are_counted_sent_and_failed(metrics_app, monkeypatch):
    text = SendText("sms:CA1:menu:1", NUMBER, None, "hello")
    sent, failed = Moved("ivr_texts_total", result="sent"), Moved("ivr_texts_total", result="failed")
    monkeypatch.setattr("ivr.web.effects.send_sms", lambda *a, **k: None)
    assert send_text(metrics_app, text) is None
    monkeypatch.setattr("ivr.web.effects.send_sms", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("refused")))
    assert send_text(metrics_app, text) == "refused"
    assert (sent.by(), failed.by()) == (1, 1)


def test_a_delivered_voicemail_is_counted_by_kind_and_result(make_app, hooks):
    app = make_app()
    path, call = "/twilio/recording?flow=accounts&state=voicemail", "CA" + "8" * 32
    delivered = Moved("ivr_deliveries_total", kind="recording", result="sent")
    failed = Moved("ivr_deliveries_total", kind="recording", result="failed")
    hooks.returns("deliver_voicemail")
    for recording in ("RE" + "1" * 32, "RE" + "2" * 32):
        params = recording_params(call, recording)
        response = app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path, params)})
        assert response.status_code == 200
        hooks.raises("deliver_voicemail", RuntimeError("the mailbox is full"))
    assert (delivered.by(), failed.by()) == (1, 1)


def test_campaign_results_are_counted():
    placed, failed = (
        Moved("ivr_campaign_calls_total", result="placed"),
        Moved("ivr_campaign_calls_total", result="failed"),
    )
    metrics.campaign_calls(3, 1)
    assert (placed.by(), failed.by()) == (3, 1)


# -- the spool -------------------------------------------------------------------------------------


def test_spool_depth_and_age_are_read_from_disk_at_scrape_time(metrics_app):
    spool = services(metrics_app).spool
    client = metrics_app.test_client()
    assert _sample(scrape(client), "ivr_spool_depth") == 0
    spool.append({"kind": "status", "params": {"CallSid": "CA1", "CallStatus": "completed"}})
    spool.append({"kind": "status", "params": {"CallSid": "CA2", "CallStatus": "completed"}})
    text = scrape(client)
    assert _sample(text, "ivr_spool_depth") == 2
    assert 0 <= _sample(text, "ivr_spool_oldest_seconds") < 60


def test_the_oldest_entry_ages_by_when_it_was_written(tmp_path):
    spool = Spool(tmp_path)
    assert spool.oldest_age() == 0
    spool.append({"kind": "status", "params": {}})
    written = json.loads((tmp_path / "incoming.jsonl").read_text())["spooled_at"]
    assert spool.oldest_age(now=written + 42) == pytest.approx(42)


# -- labels ----------------------------------------------------------------------------------------


def test_no_label_carries_a_number_digits_or_a_path_the_caller_sent(metrics_app):
    app, client = metrics_app, metrics_app.test_client()
    call = phone_on(app).dial("main")
    call.press("1")
    sid = "CA" + "7" * 32
    url = f"{BASE}/voice/{DIGITS}/{NUMBER}"
    params = {**caller_params(sid, from_=NUMBER), "Digits": DIGITS}
    client.post(f"/voice/{DIGITS}/{NUMBER}", data=params, headers={"X-Twilio-Signature": sign(url, params)})
    client.post("/voice/main/menu?event=" + DIGITS, data=params)  # unsigned: 403
    client.get(f"/nothing/{DIGITS}")
    for family in text_string_to_metric_families(scrape(client)):
        for sample in family.samples:
            for label, text in sample.labels.items():
                if label == "le":
                    continue
                assert DIGITS not in text and "+1555" not in text, (sample.name, label, text)
                assert not re.search(r"\d{4,}", text), (sample.name, label, text)


# -- who may read them ----------------------------------------------------------------------------


def test_metrics_answer_this_machine_in_prometheus_text_format(metrics_app):
    text = scrape(metrics_app.test_client())
    assert "# TYPE ivr_webhooks_total counter" in text
    assert "# TYPE ivr_calls_in_progress gauge" in text


@pytest.mark.parametrize(
    ("environ", "headers", "status"),
    [
        ({"REMOTE_ADDR": "203.0.113.9"}, {}, 403),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.9"}, 403),
        ({"REMOTE_ADDR": "203.0.113.9"}, {"Authorization": f"Bearer {METRICS_TOKEN}"}, 200),
        ({"REMOTE_ADDR": "203.0.113.9"}, {"Authorization": "Bearer " + "x" * 32}, 403),
        ({"REMOTE_ADDR": "203.0.113.9"}, {"Authorization": METRICS_TOKEN}, 403),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "1.2.3.4", "Authorization": f"Bearer {METRICS_TOKEN}"}, 200),
    ],
    ids=["remote", "forwarded", "token", "wrong-token", "not-bearer", "proxied-with-token"],
)
def test_metrics_need_this_machine_or_the_bearer_token(metrics_app, environ, headers, status):
    response = metrics_app.test_client().get("/metrics", headers=headers, environ_base=environ)
    assert response.status_code == status


def test_without_a_token_metrics_never_answer_a_remote_bearer(make_app):
    app = make_app()  # IVR_METRICS_TOKEN unset: an empty bearer must not match an empty token
    response = app.test_client().get("/metrics", headers={"Authorization": "Bearer "},
                                     environ_base={"REMOTE_ADDR": "203.0.113.9"})  # fmt: skip
    assert response.status_code == 403


def _sample(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not in the scrape")


# -- the proof: a real multi-worker gunicorn ------------------------------------------------------

LINE_FLOW = """start: lookup
states:
  lookup: {run: pause, next: menu}
  menu: {say: Press 1., gather: {}, routes: {"1": bye}}
  bye: {say: Goodbye., hangup: true}
"""
BROKEN_FLOW = """start: lookup
error_state: oops
states:
  lookup: {run: boom, next: bye}
  bye: {say: Goodbye., hangup: true}
  oops: {say: Sorry., hangup: true}
"""
HOOKS = """import time
from ivr import hook

@hook
def pause(ctx):
    time.sleep(0.3)  # long enough that one sync worker cannot take every call of a burst

@hook
def boom(ctx):
    raise RuntimeError("the database is down")
"""
CALLS = 6


class Gunicorn:
    """`python -m gunicorn -c ivr/web/gunicorn_conf.py app:app` on a free loopback port, as production runs it."""

    def __init__(self, folder, env: dict) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log = folder / "gunicorn.log"
        config = str(ROOT / "ivr" / "web" / "gunicorn_conf.py")
        command = [sys.executable, "-m", "gunicorn", "-c", config, "--bind", f"{HOST}:{self.port}",
                   "--no-control-socket", "app:app"]  # fmt: skip
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env={**env, "IVR_PUBLIC_URL": self.base},
                                            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 20
        while self.get("/healthz")[0] != 200:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.1)

    def get(self, path: str, headers: dict | None = None) -> tuple[int, str]:
        return self.request("GET", path, None, headers or {})

    def post(self, path: str, params: dict) -> tuple[int, str]:
        return self.request("POST", path, params, {"X-Twilio-Signature": sign(self.base + path, params)})

    def request(self, method: str, path: str, params: dict | None, headers: dict) -> tuple[int, str]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            body = urlencode(params) if params is not None else None
            if body is not None:
                headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError:
            return 0, ""
        finally:
            connection.close()

    def samples(self) -> dict[tuple, float]:
        status, text = self.get("/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200, status
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_gunicorn_workers_add_up_in_metrics_and_the_spool_drains_after_a_store_fault(tmp_path):
    """Calls driven through two workers are all counted, a failing hook's call counts as an error answer,
    and with the store stopped a status callback waits in the spool until the store is back."""
    pytest.importorskip("gunicorn", reason="gunicorn is not installed: the multi-worker proof needs it")
    if not hasattr(os, "fork"):
        pytest.skip("gunicorn's workers need fork(), which this platform lacks")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "line.yaml").write_text(LINE_FLOW)
    (flows / "broken.yaml").write_text(BROKEN_FLOW)
    (flows / "hooks.py").write_text(HOOKS)
    with redis_server(tmp_path, durable=True) as redis:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("IVR_", "TWILIO_", "PROMETHEUS_")) and k not in ("PORT", "GUNICORN_CMD_ARGS")
        }
        # One connection at a time each: a threaded worker otherwise accepts whatever arrives, one may take
        # every call, and the proof is that two workers' counts add up.
        env.update(WEB_CONCURRENCY="2", GUNICORN_CMD_ARGS="--threads 1 --worker-connections 1")
        env.update(IVR_ENV="production", TWILIO_AUTH_TOKEN=TOKEN, IVR_METRICS_TOKEN=METRICS_TOKEN,
                   IVR_STORE=f"redis://{HOST}:{redis.port}/0", IVR_SPOOL_DIR=str(tmp_path / "spool"),
                   IVR_FLOWS_DIR=str(flows), IVR_HOT_RELOAD="0", IVR_ANALYTICS_KEY="k" * 64,
                   IVR_EVENTS=f"sqlite:///{tmp_path}/events.sqlite3")  # fmt: skip
        server = Gunicorn(tmp_path, env)
        try:
            sids = ["CA" + f"{i:032x}" for i in range(CALLS)]
            answers: list[int] = []

            def call(sid: str) -> None:
                params = caller_params(sid)
                answers.append(server.post("/voice/line", params)[0])
                answers.append(server.post("/voice/line/menu", {**params, "Digits": "1"})[0])

            threads = [threading.Thread(target=call, args=(sid,)) for sid in sids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert answers == [200] * 2 * CALLS
            assert server.post("/voice/broken", caller_params("CA" + "e" * 32))[0] == 200
            served_by = set(re.findall(r"\[(\d+)\] access .*path=/voice/line ", server.log.read_text()))
            assert len(served_by) == 2, "both workers served calls"

            samples = server.samples()
            assert _value(samples, "ivr_webhooks_total", route="/voice/<flow_id>", status="200") == CALLS + 1
            assert _value(samples, "ivr_webhooks_total", route=VOICE_STATE, status="200") == CALLS
            assert _value(samples, "ivr_webhook_seconds_count", route=VOICE_STATE) == CALLS
            assert _value(samples, "ivr_hook_calls_total", hook="pause", result="ok") == CALLS
            assert _value(samples, "ivr_error_answers_total", flow="broken", kind="error_state") == 1
            assert _value(samples, "ivr_hook_calls_total", hook="boom", result="error") == 1
            assert _value(samples, "ivr_calls_in_progress") == CALLS + 1
            assert _value(samples, "ivr_spool_depth") == 0

            redis.terminate()
            redis.wait(10)
            assert server.get("/readyz")[0] == 503
            ended = {**caller_params(sids[0], status="completed"), "CallDuration": "12"}
            assert server.post("/twilio/status", ended)[0] == 200  # spooled: the store is down
            assert _value(server.samples(), "ivr_spool_depth") >= 1
            with redis_server(tmp_path, redis.port, durable=True):
                deadline = time.monotonic() + 12  # the drainer looks again every 5 s
                while _value(samples := server.samples(), "ivr_spool_depth") > 0:
                    assert time.monotonic() < deadline, "the spool did not drain once the store was back"
                    time.sleep(0.25)
                assert _value(samples, "ivr_calls_in_progress") == CALLS  # the completed call no longer counts
                assert server.get("/readyz")[0] == 200
        finally:
            server.stop()
