"""HTTP steps (`http:`) end to end: a real server on 127.0.0.1 answers ok, slowly, with errors or with
what is not JSON; the call routes on the answer, the values it sends are encoded, its secrets stay
out of logs, recordings and the journal, and replay feeds recorded answers back without the server."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import copy_flows, phone_on

from ivr.core.http_step import MAX_TIMEOUT
from ivr.core.lint import run_checks
from ivr.core.loader import load_flow_text
from ivr.errors import FlowLoadError
from ivr.phone.replay import replay
from ivr.web import replay_target
from ivr.web.deadline import HOOKS_BY
from ivr.web.services import services

SID = "CA" + "7" * 32
TOKEN_VALUE = "s3cr3t-crm-token-value"


ANSWER = {
    "account": {"balance": 42.5},
    "items": [{"name": "Ada"}],
    "order": {"status": "shipped", "delivery_date": "Friday"},
}


class _Api(BaseHTTPRequestHandler):
    """Answers by path: /ok, /slow, /fail, /missing, /text, /echo (what it got, as JSON)."""

    seen: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        got = {"method": self.command, "path": parts.path, "raw_query": parts.query,
               "query": parse_qs(parts.query), "auth": self.headers.get("Authorization"), "body": body}  # fmt: skip
        _Api.seen.append(got)
        first = parts.path.split("/")[1]
        if first == "slow":
            time.sleep(1.5)
        status, payload = {
            "fail": (500, b'{"error": "down"}'),
            "missing": (404, b'{"error": "no such account"}'),
            "teapot": (418, b"{}"),
            "text": (200, b"<html>not json</html>"),
        }.get(first, (200, json.dumps(ANSWER).encode()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def api():
    """An HTTP API on 127.0.0.1 (a thread); yields its base URL."""
    _Api.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SAVE = '{balance: "account.balance", first: "items[0].name"}'
FLOW = """\
start: ask
states:
  ask:
    say: Your account number?
    gather: {{num_digits: 12, finish_on_key: "#", input: [dtmf, speech]}}
    next: look
  look:
    http:
      method: {method}
      url: "{base}/{first}/accounts/{{{{ input.speech or input.digits }}}}"
      query: {{caller: "{{{{ call.From }}}}", q: "{{{{ input.speech }}}}", key: "{{{{ secrets.CRM_TOKEN }}}}"}}
      headers: {{Authorization: "Bearer {{{{ secrets.CRM_TOKEN }}}}"}}
      {body}
      timeout: 1
      save: {save}
      status: code
    routes: {{ok: balance, "404": unknown, 5xx: later, timeout: slow, error: sorry}}
  balance:
    say: "{{{{ first }}}}, your balance is {{{{ balance }}}} ({{{{ code }}}})."
    hangup: true
  unknown:
    say: "No such account ({{{{ code }}}})."
    hangup: true
  later:
    say: "Our system is down ({{{{ code }}}})."
    hangup: true
  slow:
    say: Our system is slow.
    hangup: true
  sorry:
    say: Sorry, something went wrong.
    hangup: true
"""


@pytest.fixture
def http_app(make_app, flows_dir, tmp_path, monkeypatch):
    """An app with the test flow pointed at `base`; CRM_TOKEN allowed and set."""
    monkeypatch.setenv("CRM_TOKEN", TOKEN_VALUE)

    def make(base: str, first: str = "ok", *, method: str = "GET", body: str = "", save: str = SAVE,
             config: dict | None = None):  # fmt: skip
        flow = FLOW.format(base=base, first=first, method=method, body=body, save=save)
        (flows_dir / "acct.yaml").write_text(flow, encoding="utf-8")
        settings = {"IVR_FLOWS_DIR": str(flows_dir), "IVR_HTTP_SECRETS": "CRM_TOKEN", **(config or {})}
        return make_app(settings)

    return make


def _call(app, digits: str = "1234#", sid: str = SID):
    call = phone_on(app).dial("acct", call_sid=sid)
    call.press(digits)
    return call


@pytest.mark.parametrize(
    ("first", "heard"),
    [
        ("ok", "Ada, your balance is 42.5 (200)."),
        ("missing", "No such account (404)."),
        ("fail", "Our system is down (500)."),
        ("slow", "Our system is slow."),
        ("text", "Sorry, something went wrong."),  # a 2xx that is not JSON: save cannot be met
        ("teapot", "Sorry, something went wrong."),  # a 4xx nobody routes
    ],
)
def test_the_answer_routes_the_call(http_app, api, first, heard):
    call = _call(http_app(api, first))
    assert call.heard == [heard]


def test_a_missing_path_in_a_2xx_answer_takes_the_error_route(http_app, api):
    call = _call(http_app(api, save='{first: "items[3].name"}'))
    assert call.heard == ["Sorry, something went wrong."]


def test_a_refused_connection_takes_the_error_route(http_app):
    call = _call(http_app(f"http://127.0.0.1:{_closed_port()}"))
    assert call.heard == ["Sorry, something went wrong."]


def test_a_slow_answer_ends_within_the_steps_timeout(http_app, api):
    app = http_app(api, "slow")
    started = time.monotonic()
    call = _call(app)
    assert call.heard == ["Our system is slow."]
    assert time.monotonic() - started < 1.45  # timeout: 1, the server answers after 1.5 s


def test_callers_values_are_encoded_into_the_path_and_query(http_app, api):
    call = phone_on(http_app(api)).dial("acct", call_sid=SID)
    call.say("12/34?x=1&y 2")
    assert call.heard[-1].startswith("Ada, your balance")
    [got] = _Api.seen
    assert got["path"] == "/ok/accounts/12%2F34%3Fx%3D1%26y%202"
    assert got["query"]["q"] == ["12/34?x=1&y 2"]
    assert got["query"]["caller"] == ["+15551230000"]
    assert "&y" not in got["raw_query"].replace("%26y", "")


def test_the_secret_is_sent_and_never_logged_recorded_or_journaled(http_app, api, tmp_path, caplog):
    record_dir = tmp_path / "rec"
    app = http_app(api, "fail", config={"IVR_RECORD_DIR": str(record_dir)})
    caplog.set_level("DEBUG")
    call = _call(app)
    assert call.heard == ["Our system is down (500)."]
    assert _Api.seen[0]["auth"] == f"Bearer {TOKEN_VALUE}"
    assert _Api.seen[0]["query"]["key"] == [TOKEN_VALUE]
    assert TOKEN_VALUE not in caplog.text
    recorded = (record_dir / f"{SID}.jsonl").read_text()
    assert TOKEN_VALUE not in recorded and "CRM_TOKEN" not in recorded
    hooks = [h for line in recorded.splitlines() for h in json.loads(line).get("hooks", [])]
    host = api.removeprefix("http://")
    assert hooks == [{"name": f"http:{host}", "outcome": "500", "vars": {"code": 500}, "error": None}]
    assert TOKEN_VALUE not in json.dumps(call.effects)


def test_a_json_body_and_a_form_body_are_encoded(http_app, api):
    body = 'json: {account: "{{ input.digits }}", note: "a&b=c", n: 2}'
    _call(http_app(api, method="POST", body=body))
    assert json.loads(_Api.seen[0]["body"]) == {"account": "1234", "note": "a&b=c", "n": 2}
    _Api.seen.clear()
    form = 'form: {account: "{{ input.digits }}", note: "a&b=c"}'
    _call(http_app(api, method="POST", body=form), sid="CA" + "8" * 32)
    assert parse_qs(_Api.seen[0]["body"]) == {"account": ["1234"], "note": ["a&b=c"]}


def test_replay_feeds_back_the_recorded_answers_without_the_server(http_app, api, tmp_path, flows_dir):
    record_dir = tmp_path / "rec"
    app = http_app(api, config={"IVR_RECORD_DIR": str(record_dir)})
    assert _call(app).heard == ["Ada, your balance is 42.5 (200)."]
    api_gone = f"http://127.0.0.1:{_closed_port()}"
    flow = (flows_dir / "acct.yaml").read_text().replace(api, api_gone)
    (flows_dir / "acct.yaml").write_text(flow)
    result = replay(record_dir / f"{SID}.jsonl", replay_target, flows_dir=flows_dir,
                    config={"IVR_HTTP_SECRETS": "CRM_TOKEN"})  # fmt: skip
    assert result.ok, result.report()


def test_the_step_timeout_cap_is_the_webhooks_budget_for_hooks():
    assert MAX_TIMEOUT == HOOKS_BY


def test_the_journal_notes_the_step_as_a_hook_without_its_secret(http_app, api, tmp_path):
    app = http_app(api, "missing", config={"IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3"})
    assert _call(app).heard == ["No such account (404)."]
    services(app).events.flush()
    database = services(app).events.database
    host = api.removeprefix("http://")
    assert ("look", "hook", "404", f"http:{host}") in database.query("SELECT state, kind, detail, input FROM events")
    for table in ("events", "calls"):
        assert TOKEN_VALUE not in repr(database.query(f"SELECT * FROM {table}"))


# -- load and check ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["CRM_TOKEN", "TWILIO_AUTH_TOKEN"])
def test_a_secret_not_allowed_is_a_load_and_check_error_at_its_line(make_app, flows_dir, secret):
    flow = FLOW.format(base="http://127.0.0.1:9", first="ok", method="GET", body="", save=SAVE)
    (flows_dir / "acct.yaml").write_text(flow.replace("CRM_TOKEN", secret), encoding="utf-8")
    message = f"secret '{secret}' is not in IVR_HTTP_SECRETS (add its name there to allow it)"
    with pytest.raises(FlowLoadError) as caught:
        make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_HTTP_SECRETS": "OTHER"})
    lines = str(caught.value).splitlines()
    for line, path in ((11, "query.key"), (12, "headers.Authorization")):
        where = rf"acct\.yaml:{line}:\d+: error: states\.look\.http\.{re.escape(path)}: "
        assert any(re.search(where + re.escape(message) + "$", x) for x in lines), lines
    checked = run_checks([str(flows_dir / "acct.yaml")], flows_dir=str(flows_dir), secrets={"OTHER"})
    assert [p.message for p in checked.problems if p.severity == "error"] == [message] * 2
    allowed = run_checks([str(flows_dir / "acct.yaml")], flows_dir=str(flows_dir), secrets={secret})
    assert [p for p in allowed.problems if p.severity == "error"] == []


@pytest.mark.parametrize(
    "url",
    ["https://{{ host }}/a", "{{ base }}/a", "https://api.example.com{{ port }}/a", "http://{{ call.To }}.example.com"],
)
def test_the_scheme_and_host_are_never_templated(url):
    text = f"start: s\nstates:\n  s:\n    http: {{url: '{url}'}}\n    next: t\n  t: {{hangup: true}}\n"
    with pytest.raises(FlowLoadError) as caught:
        load_flow_text(text, "f.yaml", "f")
    assert str(caught.value).splitlines()[0].startswith("f.yaml:4:17: error: states.s.http.url: ")
    assert "never templated" in str(caught.value) or "host written out" in str(caught.value)


def test_routes_an_http_step_cannot_take_are_refused():
    text = "start: s\nstates:\n  s:\n    http: {url: 'https://a.example.com'}\n    routes: {found: t}\n    next: t\n"
    text += "  t: {hangup: true}\n"
    with pytest.raises(FlowLoadError) as caught:
        load_flow_text(text, "f.yaml", "f")
    assert "f.yaml:5:14: error: states.s.routes.found: an HTTP step routes on ok" in str(caught.value)


# -- the shipped example ---------------------------------------------------------------------------


def test_the_shipped_orders_flow_apologises_at_once_when_its_api_is_not_there(make_app, flows_dir):
    copy_flows(flows_dir, "orders.yaml")
    flow = (flows_dir / "orders.yaml").read_text().replace("127.0.0.1:8025", f"127.0.0.1:{_closed_port()}")
    (flows_dir / "orders.yaml").write_text(flow)
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("orders")
    call.press("12345#")
    assert call.heard == ["We cannot look up orders right now. Please try again later.",
                          "Thank you for calling Acme. Goodbye."]  # fmt: skip


def test_the_shipped_orders_flow_tells_the_status_from_its_api(make_app, flows_dir, api):
    copy_flows(flows_dir, "orders.yaml")
    flow = (flows_dir / "orders.yaml").read_text().replace("http://127.0.0.1:8025/orders", f"{api}/order")
    (flows_dir / "orders.yaml").write_text(flow)
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("orders")
    call.press("12345#")
    assert call.heard[0] == "Order 1 2 3 4 5 is shipped. Expected delivery: Friday."
    assert _Api.seen[0]["path"] == "/order/12345"


def test_a_slow_answer_with_a_filler_is_waited_for_past_the_timeout(make_app, flows_dir, api):
    """With a filler the step's deadline is its budget: the API answering in 1.5 s is heard, the filler first."""
    (flows_dir / "slow.yaml").write_text(
        f"""\
start: look
states:
  look:
    say: Let me check.
    http: {{url: "{api}/slow/accounts/1", timeout: 1, save: {{balance: "account.balance"}}}}
    filler: {{say: Still looking., after: 0.3, deadline: 5}}
    routes: {{ok: balance, timeout: slow, error: slow}}
  balance:
    say: "Your balance is {{{{ balance }}}}."
    hangup: true
  slow:
    say: Our system is slow.
    hangup: true
""",
        encoding="utf-8",
    )
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("slow")
    assert call.heard[:2] == ["Let me check.", "Still looking."]
    assert call.heard[-1] == f"Your balance is {ANSWER['account']['balance']}."
    assert len(_Api.seen) == 1
