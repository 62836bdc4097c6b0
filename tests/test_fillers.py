"""Waiting without dead air: a slow hook's filler, the wait requests that pick its result up, the
deadline, several servers and Twilio's live call update (ivr.web.waiting, ivr.core.filler)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BASE, caller_params, document, phone_on, said, sign

from ivr.cli import cli
from ivr.cli.check import check as check_command
from ivr.core.filler import DEFAULT_AFTER, DEFAULT_DEADLINE
from ivr.core.graph import graph_data, mermaid
from ivr.core.loader import load_flow, read_flow
from ivr.phone.fakes import FakeTwilioHttp
from ivr.phone.recording import read_recording
from ivr.phone.replay import replay
from ivr.testing import use_fake_twilio
from ivr.web import browser, replay_target
from ivr.web.services import services

FLOWS = Path(__file__).resolve().parent / "flows" / "fillers"
SID = "CA" + "f" * 32
FILLER = "One moment while I look that up."
FOUND = "Your balance is 42."
SORRY = "Sorry, we could not look that up."


@pytest.fixture
def release():
    """Set at the end of the test: hooks that hang wait on it (their threads are not left sleeping)."""
    event = threading.Event()
    yield event
    event.set()


def _lookup(seconds: float, release: threading.Event | None = None, *, fail: bool = False):
    def lookup(ctx):
        (release or threading.Event()).wait(seconds)
        if fail:
            raise RuntimeError("the CRM is down")
        return {"outcome": "found", "vars": {"balance": 42}}

    return lookup


@pytest.fixture
def fill_app(make_app, hooks):
    hooks.returns("lookup", outcome="found", vars={"balance": 42})
    return make_app({"IVR_FLOWS_DIR": str(FLOWS)})


def _waits(call) -> list[str]:
    return [e.url for e in call.exchanges if "event=wait" in e.url]


def test_fast_work_answers_as_without_a_filler(fill_app):
    call = phone_on(fill_app).dial("fill", call_sid=SID)
    assert call.heard == ["Welcome.", FOUND]
    assert _waits(call) == []


def test_slow_work_plays_the_filler_then_the_result(fill_app, hooks):
    hooks.use("lookup", _lookup(0.5))
    call = phone_on(fill_app).dial("fill", call_sid=SID)
    assert call.heard[:2] == ["Welcome.", FILLER] and call.heard[-1] == FOUND
    waits = _waits(call)
    assert waits and all(re.search(r"/voice/fill/lookup\?event=wait&job=[0-9a-f]{24}\Z", w) for w in waits)
    assert len(hooks.calls["lookup"]) == 1


def test_very_slow_work_repeats_the_filler_until_the_result(fill_app, hooks):
    hooks.use("lookup", _lookup(1.8))
    call = phone_on(fill_app).dial("fill", call_sid=SID)
    assert call.heard[0] == "Welcome." and call.heard[-1] == FOUND
    fillers = call.heard[1:-1]
    assert len(fillers) >= 3 and set(fillers) == {FILLER}
    assert len(hooks.calls["lookup"]) == 1  # a wait never starts the work again


def test_work_past_its_deadline_takes_the_error_route(fill_app, hooks, release):
    hooks.use("lookup", _lookup(30, release))
    started = time.monotonic()
    call = phone_on(fill_app).dial("fill", call_sid=SID)
    assert call.heard[0] == "Welcome." and call.heard[-1] == SORRY
    assert set(call.heard[1:-1]) == {FILLER}
    assert 3 <= time.monotonic() - started < 7  # the flow's deadline: 3 s


def test_failed_slow_work_takes_the_error_route(fill_app, hooks):
    hooks.use("lookup", _lookup(0.5, fail=True))
    call = phone_on(fill_app).dial("fill", call_sid=SID)
    assert call.heard[:2] == ["Welcome.", FILLER] and call.heard[-1] == SORRY


def _post(app, path: str, params: dict, headers: dict | None = None):
    url = BASE + path
    return app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(url, params),
                                                              **(headers or {})})  # fmt: skip


def _wait_path(response) -> str:
    [redirect] = document(response).iter("Redirect")
    assert redirect.get("method") == "POST"
    return redirect.text.strip()


def test_a_retried_webhook_and_a_second_wait_never_start_the_work_again(fill_app, hooks, release):
    hooks.use("lookup", _lookup(0.6))
    params = caller_params(SID)
    token = {"I-Twilio-Idempotency-Token": "retry-1"}
    first = _post(fill_app, "/voice/fill", params, token)
    assert said(document(first)) == ["Welcome.", FILLER]
    again = _post(fill_app, "/voice/fill", params, token)  # Twilio retried it: the same answer, nothing redone
    assert again.data == first.data
    path = _wait_path(first)
    time.sleep(0.8)
    waited = {"I-Twilio-Idempotency-Token": "wait-1"}
    picked = _post(fill_app, path, params, waited)
    assert said(document(picked)) == [FOUND]
    assert _post(fill_app, path, params, waited).data == picked.data  # a retried wait request
    second = _post(fill_app, path, params)  # the Redirect and a live update both came: the same answer
    assert second.data == picked.data
    assert len(hooks.calls["lookup"]) == 1


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_wait_request_reaching_another_server_finds_the_result(make_app, hooks, tmp_path, request, kind):
    hooks.use("lookup", _lookup(0.5))
    shared = {"IVR_FLOWS_DIR": str(FLOWS), "IVR_STORE": f"sqlite:///{tmp_path}/shared.sqlite3"}
    if kind == "redis":
        shared.update(IVR_STORE=request.getfixturevalue("redis_url"), IVR_REDIS_PREFIX=request.getfixturevalue(
            "redis_prefix"))  # fmt: skip
    one, two = make_app(shared), make_app(shared)
    params = caller_params(SID)
    first = _post(one, "/voice/fill", params)
    assert said(document(first)) == ["Welcome.", FILLER]
    path = _wait_path(first)
    answers = [said(document(_post(two, path, params))) for _ in range(10)]
    assert answers[-1] == [FOUND] or [FOUND] in answers
    assert all(a in ([FILLER], [FOUND]) for a in answers)


def test_a_job_whose_server_died_routes_to_on_error_after_its_deadline(fill_app, hooks, release):
    hooks.use("lookup", _lookup(30, release))
    params = caller_params(SID)
    first = _post(fill_app, "/voice/fill", params)
    path = _wait_path(first)
    job = path.rsplit("=", 1)[1]
    store = services(fill_app).store
    # The server running it died: its record says running, its deadline passed long ago.
    store.update(f"job:{job}", lambda old: {**old, "deadline": time.time() - 60}, 3600)
    assert said(document(_post(fill_app, path, params))) == [SORRY]


def test_with_credentials_the_call_moves_on_by_a_live_update(make_app, hooks):
    release = threading.Event()
    hooks.use("lookup", _lookup(10, release))
    app = make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_PUBLIC_URL": "https://ivr.example.com"})
    http = FakeTwilioHttp()
    updated = threading.Event()

    def update(request):
        updated.set()
        return 200, {"sid": SID, "status": "in-progress"}

    http.respond_with("POST", rf"/Calls/{SID}\.json$", update)
    use_fake_twilio(app, http)
    params = caller_params(SID)
    url = "https://ivr.example.com/voice/fill"
    first = app.test_client().post("/voice/fill", data=params, headers={"X-Twilio-Signature": sign(url, params)},
                                   base_url="https://ivr.example.com")  # fmt: skip
    wait = _wait_path(first)
    assert wait.startswith("https://ivr.example.com/voice/fill/lookup?event=wait&job=")
    assert not http.requests  # nothing moves while the work goes on
    release.set()
    assert updated.wait(5)
    [sent] = http.sent("POST", rf"/Accounts/{params['AccountSid']}/Calls/{SID}\.json$")
    assert sent.data == {"Url": wait, "Method": "POST"}


# -- the flow language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filler", "path", "message"),
    [
        ('{say: "Hello {{ name }}"}', "states.s.filler.say", "a filler is heard as written"),
        ("{say: Hi, after: 3, deadline: 2}", "states.s.filler.deadline", "must be more than after (3 s)"),
        ("{say: Hi, deadline: 200}", "states.s.filler.deadline", "must be 0 to 120, got 200"),
        ("{say: Hi, play: 'https://example.com/a.mp3'}", "states.s.filler", "give one of say, play or msg"),
        ("{say: Hi, wait: 2}", "states.s.filler.wait", "unknown key"),
    ],
)
def test_a_bad_filler_is_an_error_on_its_line(filler, path, message):
    text = f"start: s\nstates:\n  s:\n    run: lookup\n    filler: {filler}\n    next: t\n  t: {{hangup: true}}\n"
    _, errors = read_flow(text, "t.yaml", "t")
    [error] = errors
    assert (error.line, error.path) == (5, path)
    assert message in error.message


def test_a_filler_needs_work_to_wait_for():
    _, errors = read_flow("start: s\nstates:\n  s: {say: Hi, filler: {say: Wait.}, hangup: true}\n", "t.yaml", "t")
    [error] = errors
    assert error.format() == (
        "t.yaml:3:16: error: states.s.filler: "
        "a filler is heard while a hook or HTTP step works: use it with run or http"
    )


def test_a_filler_has_sensible_defaults():
    flow, errors = read_flow("start: s\nstates:\n  s: {run: x, filler: {play: 'https://e.com/h.mp3'}, next: s}\n",
                             "t.yaml", "t")  # fmt: skip
    assert errors == []
    filler = flow.states["s"].filler
    assert (filler.after, filler.deadline) == (DEFAULT_AFTER, DEFAULT_DEADLINE) == (2.0, 30.0)


# -- recording, replay and the journal ------------------------------------------------------------


def test_a_recorded_call_with_a_filler_replays(make_app, hooks, tmp_path):
    hooks.use("lookup", _lookup(0.5))
    app = make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_RECORD_DIR": str(tmp_path)})
    call = phone_on(app).dial("fill", call_sid=SID)
    assert FILLER in call.heard and call.heard[-1] == FOUND
    path = tmp_path / f"{SID}.jsonl"
    _, lines = read_recording(path)
    assert [line.get("hooks", []) for line in lines if "event=wait" in line["url"]][-1][0]["outcome"] == "found"
    hooks.use("lookup", _lookup(0, fail=True))  # replay feeds the recorded result, never the hook
    result = replay(path, replay_target, flows_dir=FLOWS)
    assert result.ok, result.report()
    assert any("event=wait" in step.url for step in result.steps)


def test_the_journal_counts_wait_requests_apart_from_callers_actions(make_app, hooks, tmp_path):
    hooks.use("lookup", _lookup(0.5))
    app = make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_EVENTS": f"sqlite:///{tmp_path}/events.sqlite3"})
    call = phone_on(app).dial("fill", call_sid=SID)
    waits = len(_waits(call))
    services(app).events.flush()
    database = services(app).events.database
    kinds = [k for (k,) in database.query("SELECT kind FROM events WHERE call_sid = ? ORDER BY id", (SID,))]
    assert kinds.count("wait") == waits
    assert kinds.count("input") == 0 and kinds.count("hook") == 1
    assert kinds.count("entered") == len({"welcome", "lookup", "found"})
    services(app).events.close()


def test_check_reports_a_bad_filler_as_the_loader_does(tmp_path):
    bad = tmp_path / "bad.yaml"
    flow = "start: s\nstates:\n  s:\n    run: x\n    filler: {say: Hi, deadline: 200}\n    next: t\n"
    flow += "  t: {hangup: true}\n"
    bad.write_text(flow, encoding="utf-8")
    result = CliRunner().invoke(check_command, [str(bad)], env={"IVR_FLOWS_DIR": None, "IVR_HOOKS": None})
    assert result.exit_code == 1
    assert f"{bad}:5:33: error: states.s.filler.deadline: must be 0 to 120, got 200" in result.output


def test_the_graph_marks_a_state_with_a_filler():
    data = graph_data(load_flow(FLOWS / "fill.yaml"))
    labels = {node["id"]: node["label"] for node in data["nodes"]}
    assert labels["lookup"] == "lookup (filler)" and labels["found"] == "found"
    assert 'state "lookup (filler)"' in mermaid(load_flow(FLOWS / "fill.yaml"))


def test_the_terminal_phone_prints_the_filler_it_hears(make_app, serve, hooks, monkeypatch):
    hooks.use("lookup", _lookup(0.5))
    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    url = serve(make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None}))
    result = CliRunner().invoke(cli, ["phone", "fill", "--url", url, "--keys", ""], env={"TWILIO_AUTH_TOKEN": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"  {FILLER}" in lines and lines.index(f"  {FILLER}") < lines.index(f"  {FOUND}")


def test_the_browser_phone_shows_the_filler_it_hears(make_app, hooks):
    hooks.use("lookup", _lookup(0.5))
    app = make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_PHONE": "1"})
    browser.init_app(app)
    answer = app.test_client().post("/phone/calls", json={"flow": "fill"})
    assert answer.status_code == 201, answer.json
    heard = [h["text"] for h in answer.json["heard"]]
    assert heard[:2] == ["Welcome.", FILLER] and heard[-1] == FOUND


def test_a_sensitive_input_leaves_the_session_while_the_filler_plays(fill_app, hooks):
    seen = []

    def lookup(ctx):
        seen.append(ctx.input["digits"])
        time.sleep(0.5)
        return {"outcome": "found"}

    hooks.use("lookup", lookup)
    params = caller_params(SID)
    _post(fill_app, "/voice/pin", params)
    answer = _post(fill_app, "/voice/pin/pin", {**params, "Digits": "4321"})
    assert said(document(answer)) == ["Checking."]
    assert services(fill_app).store.get(SID)["input"] == {"digits": "", "speech": "", "confidence": None,
                                                          "redacted": True}  # fmt: skip
    assert seen == ["4321"]  # the hook saw it
    time.sleep(0.6)
    assert said(document(_post(fill_app, _wait_path(answer), params))) == ["Done."]


def test_a_refused_live_update_leaves_the_call_to_the_fillers_redirect(make_app, hooks, caplog):
    release = threading.Event()
    hooks.use("lookup", _lookup(10, release))
    app = make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_PUBLIC_URL": "https://ivr.example.com"})
    http = FakeTwilioHttp()
    refused = threading.Event()

    def gone(request):
        refused.set()
        return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}

    http.respond_with("POST", rf"/Calls/{SID}\.json$", gone)
    use_fake_twilio(app, http)
    params = caller_params(SID)
    url = "https://ivr.example.com/voice/fill"
    first = app.test_client().post("/voice/fill", data=params, headers={"X-Twilio-Signature": sign(url, params)},
                                   base_url="https://ivr.example.com")  # fmt: skip
    wait = _wait_path(first)
    release.set()
    assert refused.wait(5)
    for _ in range(50):  # the worker logs after Twilio answers
        if any("live call update" in r.getMessage() for r in caplog.records):
            break
        time.sleep(0.02)
    assert any("live call update to lookup's result failed" in r.getMessage() for r in caplog.records)
    path = wait.removeprefix("https://ivr.example.com")
    again = app.test_client().post(path, data=params, headers={"X-Twilio-Signature": sign(wait, params)},
                                   base_url="https://ivr.example.com")  # fmt: skip
    assert said(document(again)) == [FOUND]
