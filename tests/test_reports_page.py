"""The reports page (/reports): who may read it, its data (the same JSON as `report --format json`),
the drill-down, and the page itself in a real headless Chromium holding every figure shown to the
report. Calls are the desk's seven (tests/test_report.py), made with the built-in phone."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DESK, Desk
from helpers import T0, FakeClock
from test_report import seven_calls

from ivr.analytics.calls import call_steps
from ivr.analytics.report import Window, build_report
from ivr.cli import cli
from ivr.errors import ConfigError
from ivr.settings import REPORTS_TOKEN_IS_API_TOKEN, production_problems
from ivr.web import drawing, reports, reports_access
from ivr.web.reports_access import COOKIE, SESSION_SECONDS, session_value
from ivr.web.services import services

REPORTS_TOKEN = "reports-token-0123456789abcdefghij"
API_TOKEN = "api-token-0123456789abcdefghijklmn"
PAGES = ["/reports", "/reports/desk", "/reports/desk/data.json", "/reports/desk/graph.svg",
         "/reports/desk/states/menu/calls.json", "/reports/calls/CA0123.json", "/reports/login",
         "/reports/static/reports.js"]  # fmt: skip


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def make_desk(make_app, url: str, hooks, **config) -> Desk:
    hooks.slow("look_up_account", 0.02, outcome="found")
    clock = FakeClock(T0)
    settings = {"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": url, **config}
    return Desk(make_app(settings, clock=lambda: datetime.fromtimestamp(clock(), UTC)), clock)


@pytest.fixture
def desk(make_app, journal_url, hooks):
    """The desk in the test environment (reports open to this machine), on SQLite and PostgreSQL."""
    desk = make_desk(make_app, journal_url, hooks)
    yield desk
    services(desk.app).events.close()


@pytest.fixture
def locked(make_app, production, hooks, tmp_path):
    """The desk in production with a reports token (and an API token of its own), on SQLite."""
    config = {**production, "IVR_REPORTS_TOKEN": REPORTS_TOKEN, "IVR_API_TOKEN": API_TOKEN}
    desk = make_desk(make_app, production["IVR_EVENTS"], hooks, **config)
    yield desk
    services(desk.app).events.close()


def cli_output(desk: Desk, monkeypatch, *args: str) -> str:
    monkeypatch.setenv("IVR_EVENTS", desk.app.config["IVR_EVENTS"])
    shown = CliRunner().invoke(cli, list(args))
    assert shown.exit_code == 0, shown.output
    return shown.output


def cli_json(desk: Desk, monkeypatch, *args: str):
    return json.loads(cli_output(desk, monkeypatch, *args))


def log_in(client, token: str = REPORTS_TOKEN):
    return client.post("/reports/login", data={"token": token})


# -- who may read the reports ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_production_without_a_token_has_no_reports(make_app, production, path):
    client = make_app({**production, "IVR_API_TOKEN": API_TOKEN}).test_client()
    assert client.get(path).status_code == 404
    assert client.post("/reports/login", data={"token": API_TOKEN}).status_code == 404


def test_production_asks_for_the_token_before_anything(locked):
    client = locked.app.test_client()
    form = client.get("/reports/login")
    assert form.status_code == 200
    assert 'type="password" name="token"' in form.get_data(as_text=True)
    page = client.get("/reports/desk")
    assert (page.status_code, page.headers["Location"]) == (303, "/reports/login")
    data = client.get("/reports/desk/data.json")
    assert (data.status_code, data.json) == (401, {"error": "log in first: /reports/login"})
    assert client.get("/reports/calls/CA0123.json").status_code == 401


@pytest.mark.parametrize("token", ["wrong", "", API_TOKEN, REPORTS_TOKEN[:-1], REPORTS_TOKEN + "x"])
def test_a_wrong_token_or_the_api_token_opens_nothing(locked, token):
    client = locked.app.test_client()
    refused = log_in(client, token)
    assert refused.status_code == 403
    assert "That is not the reports token" in refused.get_data(as_text=True)
    assert "Set-Cookie" not in refused.headers
    assert client.get("/reports/desk/data.json").status_code == 401


def test_the_token_is_exchanged_for_a_secure_cookie(locked):
    client = locked.app.test_client()
    answer = log_in(client)
    assert (answer.status_code, answer.headers["Location"]) == (303, "/reports")
    [header] = answer.headers.getlist("Set-Cookie")
    morsel = SimpleCookie(header)[COOKIE]
    assert REPORTS_TOKEN not in header
    assert (morsel["path"], morsel["samesite"], morsel["max-age"]) == ("/reports", "Strict", str(SESSION_SECONDS))
    assert morsel["secure"] and morsel["httponly"]  # IVR_PUBLIC_URL is https
    assert client.get("/reports").status_code == 200
    assert client.get("/reports/desk/data.json").json["flow"] == "desk"
    client.post("/reports/logout")
    assert client.get("/reports/desk/data.json").status_code == 401


@pytest.mark.parametrize(("public", "base", "secure"), [
    (None, "http://localhost", False),
    (None, "https://localhost", True),
    ("https://ivr.example.com/ivr", "http://x", True),
])  # fmt: skip
def test_the_cookie_is_secure_over_https(make_app, public, base, secure):
    app = make_app({"IVR_ENV": "development", "IVR_REPORTS_TOKEN": REPORTS_TOKEN, "IVR_PUBLIC_URL": public})
    answer = app.test_client().post("/reports/login", data={"token": REPORTS_TOKEN}, base_url=base)
    morsel = SimpleCookie(answer.headers["Set-Cookie"])[COOKIE]
    assert bool(morsel["secure"]) is secure
    assert morsel["path"] == ("/ivr/reports" if public else "/reports")  # the path the browser sees


def forge(client, value: str) -> None:
    client.set_cookie(COOKIE, value, path="/reports")


def _flipped(value: str) -> str:
    """The value with its last character changed, certainly."""
    return value[:-1] + ("1" if value[-1] != "1" else "2")


# Made when the test runs (a session made at collection could have expired by then for another reason).
@pytest.mark.parametrize("make", [
    lambda: session_value(REPORTS_TOKEN, int(time.time()) - 1),  # expired
    lambda: session_value(REPORTS_TOKEN, int(time.time()) + 10 * SESSION_SECONDS),  # longer than any session given
    lambda: session_value("another-token", int(time.time()) + 3600),  # signed with another token
    lambda: _flipped(session_value(REPORTS_TOKEN, int(time.time()) + 3600)),  # the HMAC changed
    lambda: REPORTS_TOKEN,  # the token itself is no cookie
    lambda: "", lambda: "1.2", lambda: "x.y.z",
])  # fmt: skip
def test_an_expired_or_forged_cookie_is_refused(locked, make):
    client = locked.app.test_client()
    forge(client, session_value(REPORTS_TOKEN, int(time.time()) + 3600))
    assert client.get("/reports/desk/data.json").status_code == 200  # a good one opens: the refusal is the value's
    forge(client, make())
    assert client.get("/reports/desk/data.json").status_code == 401


def test_a_cookie_lasts_twelve_hours(locked, monkeypatch):
    client = locked.app.test_client()
    log_in(client)
    assert client.get("/reports/desk/data.json").status_code == 200
    now = time.time()
    monkeypatch.setattr(reports_access, "_now", lambda: now + SESSION_SECONDS + 1)
    assert client.get("/reports/desk/data.json").status_code == 401


@pytest.mark.parametrize("query", [
    f"token={REPORTS_TOKEN}", "token=anything", "access_token=x", f"since={REPORTS_TOKEN}", f"source={API_TOKEN}",
    "Token=x",
])  # fmt: skip
@pytest.mark.parametrize("path", ["/reports", "/reports/desk/data.json", "/reports/login"])
def test_a_token_in_a_query_string_is_refused_even_when_logged_in(locked, query, path):
    client = locked.app.test_client()
    log_in(client)
    refused = client.get(f"{path}?{query}")
    assert refused.status_code == 400
    assert "never put a token in a URL" in refused.get_data(as_text=True)
    assert "Set-Cookie" not in refused.headers


def test_a_token_in_the_login_url_logs_nobody_in(locked):
    # The right token in the body too: only the one in the URL refuses it.
    refused = locked.app.test_client().post(f"/reports/login?token={REPORTS_TOKEN}", data={"token": REPORTS_TOKEN})
    assert refused.status_code == 400 and "Set-Cookie" not in refused.headers


def test_the_reports_token_may_not_be_the_api_token(make_app, production):
    same = {**production, "IVR_REPORTS_TOKEN": API_TOKEN, "IVR_API_TOKEN": API_TOKEN}
    assert REPORTS_TOKEN_IS_API_TOKEN in production_problems(same)
    with pytest.raises(ConfigError, match="IVR_REPORTS_TOKEN is the same as IVR_API_TOKEN"):
        make_app(same)
    with pytest.raises(ConfigError, match="IVR_REPORTS_TOKEN is the same as IVR_API_TOKEN"):
        make_app({"IVR_ENV": "development", "IVR_REPORTS_TOKEN": API_TOKEN, "IVR_API_TOKEN": API_TOKEN})


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_development_serves_this_machine(make_app, env, address):
    client = make_app({"IVR_ENV": env, "IVR_EVENTS": None}).test_client()
    page = client.get("/reports", environ_base={"REMOTE_ADDR": address})
    assert page.status_code == 200
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("environ", "headers"), [
    ({"REMOTE_ADDR": "203.0.113.7"}, {}),
    ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.7"}),
    ({"REMOTE_ADDR": "::1"}, {"Forwarded": "for=203.0.113.7"}),
])  # fmt: skip
@pytest.mark.parametrize("path", ["/reports", "/reports/desk/data.json", "/reports/calls/CA0123.json"])
def test_development_refuses_other_machines(make_app, environ, headers, path):
    client = make_app({"IVR_ENV": "development"}).test_client()
    refused = client.get(path, environ_base=environ, headers=headers)
    assert refused.status_code == 403
    assert "only requests from this machine" in refused.get_data(as_text=True)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5000", "127.0.0.1.evil.example"])
def test_development_refuses_a_host_that_is_not_this_machine(make_app, host):
    """A page elsewhere that rebinds its name to 127.0.0.1 still sends its own Host (DNS rebinding)."""
    client = make_app({"IVR_ENV": "development"}).test_client()
    assert client.get("/reports", base_url="http://localhost:5000").status_code == 200
    refused = client.get("/reports", base_url=f"http://{host}")
    assert refused.status_code == 403


def test_development_with_a_token_lets_others_log_in(make_app):
    client = make_app({"IVR_ENV": "development", "IVR_REPORTS_TOKEN": REPORTS_TOKEN}).test_client()
    elsewhere = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/reports", environ_base=elsewhere).status_code == 303
    client.post("/reports/login", data={"token": REPORTS_TOKEN}, environ_base=elsewhere)
    assert client.get("/reports", environ_base=elsewhere).status_code == 200


# -- the data -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "expected"), [
    ({"source": "phone"}, Window(source="phone")),
    ({"source": "all"}, Window(source=None)),
    ({}, Window()),
    ({"source": "phone", "since": iso(T0 + 90)}, Window(T0 + 90, source="phone")),
    ({"source": "phone", "since": iso(T0 - 3600), "until": iso(T0 + 30)}, Window(T0 - 3600, T0 + 30, "phone")),
])  # fmt: skip
def test_data_json_is_the_report_of_the_cli(desk, monkeypatch, window, expected):
    seven_calls(desk)
    db = desk.finish()
    data = desk.app.test_client().get("/reports/desk/data.json", query_string=window)
    assert data.status_code == 200, data.get_data(as_text=True)
    flags = [part for k, v in window.items() for part in (f"--{k}", v)]
    printed = cli_output(desk, monkeypatch, "report", "desk", "--flows", str(DESK), "--format", "json", *flags)
    assert data.get_data(as_text=True) == printed  # the very same text
    flow = services(desk.app).flows.engine("desk").flow
    assert data.json == build_report(db, flow, expected)
    assert list(data.json["states"]) == list(flow.states)  # in the flow's order, as the CLI prints them


def test_the_index_lists_the_flows_and_their_calls(desk):
    seven_calls(desk)
    desk.finish()
    page = desk.app.test_client().get("/reports?source=phone").get_data(as_text=True)
    assert '<a href="reports/desk?source=phone">desk</a>' in page
    assert '<td class="num" data-figure="calls">7</td>' in page


@pytest.mark.parametrize(("query", "message"), [
    ("since=yesterday", "'yesterday' is not a time"),
    ("since=2026-11-25&until=2026-11-24", "until must come after since"),
    ("source=twilio2", "source 'twilio2' is not one of twilio, phone, replay, import, all"),
])  # fmt: skip
def test_a_bad_window_is_refused_with_a_message(desk, query, message):
    refused = desk.app.test_client().get(f"/reports/desk/data.json?{query}")
    assert refused.status_code == 400
    assert refused.json["error"].startswith(message)


def test_a_state_drills_down_to_its_calls_and_a_call_to_its_steps(desk, monkeypatch):
    sids = seven_calls(desk)
    db = desk.finish()
    client = desk.app.test_client()
    reached = client.get("/reports/desk/states/person/calls.json?source=phone").json
    assert (reached["flow"], reached["state"]) == ("desk", "person")
    assert [c["call_sid"] for c in reached["calls"]] == [sids["busy"], sids["transferred"]]  # newest first
    assert reached["calls"][1]["outcome"] == "transferred"
    assert client.get("/reports/desk/states/person/calls.json").json["calls"] == []  # Twilio's: none
    assert len(client.get("/reports/desk/states/menu/calls.json?source=phone&limit=3").json["calls"]) == 3
    told = client.get(f"/reports/calls/{sids['voicemail']}.json").json
    assert told == cli_json(desk, monkeypatch, "calls", sids["voicemail"], "--json")
    summary, steps = call_steps(db, sids["voicemail"])
    assert told["call"]["outcome"] == summary.outcome == "voicemail"
    assert [(s["state"], s["kind"]) for s in told["steps"]] == [(s.state, s.kind) for s in steps]


@pytest.mark.parametrize(("path", "message"), [
    ("/reports/nowhere/data.json", "no flow 'nowhere' (flows: desk)"),
    ("/reports/nowhere", "no flow 'nowhere' (flows: desk)"),
    ("/reports/desk/states/attic/calls.json", "flow 'desk' has no state 'attic'"),
    ("/reports/calls/CA00000000000000000000000000000000.json", "no call CA00000000000000000000000000000000 in"),
    ("/reports/desk/states/menu/calls.json?source=phone&limit=0", "limit takes a whole number from 1 to 500"),
])  # fmt: skip
def test_unknown_flows_states_and_calls_answer_404(desk, path, message):
    answer = desk.app.test_client().get(path)
    assert answer.status_code == (400 if "limit" in path else 404)
    shown = answer.json["error"] if path.partition("?")[0].endswith(".json") else answer.get_data(as_text=True)
    assert shown.startswith(message)


def test_a_flow_no_longer_loaded_keeps_its_figures(desk):
    desk.dial().press("1")
    db = desk.finish()
    db.execute("UPDATE calls SET flow = 'old'")
    db.execute("UPDATE events SET flow = 'old'")
    data = desk.app.test_client().get("/reports/old/data.json?source=phone").json
    assert (data["flow"], data["calls"], data["contained"]) == ("old", 1, 1)
    missing = desk.app.test_client().get("/reports/old/graph.svg?source=phone")
    assert (missing.status_code, missing.get_data(as_text=True)) == (
        404, "flow 'old' is no longer loaded: its figures remain, its graph does not\n"
    )  # fmt: skip


def test_without_a_journal_the_page_says_so(make_app):
    client = make_app({"IVR_EVENTS": None}).test_client()
    answer = client.get("/reports/main/data.json")
    assert (answer.status_code, answer.json) == (503, {"error": "the call journal is off (IVR_EVENTS=off): there "
                                                                "is nothing to report"})  # fmt: skip
    assert "the call journal is off" in client.get("/reports").get_data(as_text=True)


# -- the graph --------------------------------------------------------------------------------------


def test_the_graph_is_the_heat_map_of_the_report(desk, monkeypatch):
    seen = []

    def heat_svg(flow, report):
        seen.append((flow.id, report))
        return b"<svg xmlns='http://www.w3.org/2000/svg'/>"

    monkeypatch.setattr(reports, "heat_svg", heat_svg)
    seven_calls(desk)
    db = desk.finish()
    answer = desk.app.test_client().get("/reports/desk/graph.svg?source=phone")
    assert (answer.status_code, answer.mimetype) == (200, "image/svg+xml")
    flow = services(desk.app).flows.engine("desk").flow
    assert seen == [("desk", build_report(db, flow, Window(source="phone")))]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_graphviz_draws_the_graph(desk):
    seven_calls(desk)
    desk.finish()
    answer = desk.app.test_client().get("/reports/desk/graph.svg?source=phone")
    assert (answer.status_code, answer.mimetype) == (200, "image/svg+xml")
    assert b"<svg" in answer.data and b"menu" in answer.data


def test_without_graphviz_the_graph_answers_a_message_not_a_500(desk, monkeypatch):
    monkeypatch.setattr(drawing.shutil, "which", lambda name: None)
    answer = desk.app.test_client().get("/reports/desk/graph.svg")
    assert answer.status_code == 503
    assert answer.get_data(as_text=True).startswith("svg needs Graphviz: its dot program is not on PATH")


# -- the page in a real browser -----------------------------------------------------------------


@pytest.fixture
def served_desk(make_app, hooks, tmp_path):
    """The desk's seven calls in a SQLite journal, the app served on a free loopback port."""
    from werkzeug.serving import make_server

    desk = make_desk(make_app, f"sqlite:///{tmp_path}/events.sqlite3", hooks)
    sids = seven_calls(desk)
    desk.finish()
    server = make_server("127.0.0.1", 0, desk.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="reports-server", daemon=True)
    thread.start()
    try:
        yield desk, sids, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        services(desk.app).events.close()


def leaves(node, path: str = "") -> set[str]:
    """Every figure's path in a report: `states.menu.no_input`, `calls_per_hour.0.calls`."""
    if isinstance(node, dict):
        return {leaf for key, value in node.items() for leaf in leaves(value, f"{path}{key}.")}
    if isinstance(node, list):
        return {leaf for i, value in enumerate(node) for leaf in leaves(value, f"{path}{i}.")}
    return {path[:-1]}


def at(report, path: str):
    """The value at a figure's path (a route's name may hold dots: the longest key that fits)."""
    node, parts = report, path.split(".")
    while parts:
        if isinstance(node, list):
            node = node[int(parts.pop(0))]
            continue
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in node:
                node, parts = node[key], parts[n:]
                break
        else:
            raise KeyError(path)
    return node


def shown_as(text: str, value: str | None, expected) -> bool:
    """Whether a figure's text (or data-value, where the text is formatted) is the report's value."""
    if value is not None:
        return json.loads(value) == expected
    if text == "-":
        return expected is None
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return text == str(expected)
    return float(text) == expected


def test_the_page_shows_every_figure_of_the_report(served_desk, chromium, monkeypatch, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    desk, sids, base = served_desk
    report = cli_json(
        desk, monkeypatch, "report", "desk", "--flows", str(DESK), "--format", "json", "--source", "phone"
    )
    driver, wait = chromium, WebDriverWait(chromium, 20)

    def loaded(count: int) -> None:
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == str(count))

    def figures() -> list[list]:
        return driver.execute_script(
            "return [...document.querySelectorAll('[data-figure]')]"
            ".map(e => [e.getAttribute('data-figure'), e.textContent, e.getAttribute('data-value')])"
        )

    driver.get(base + "/reports/desk?source=phone")
    loaded(1)
    shown = figures()
    wrong = [(path, text, value, at(report, path)) for path, text, value in shown
             if not shown_as(text, value, at(report, path))]  # fmt: skip
    assert wrong == []
    assert leaves(report) - {path for path, _, _ in shown} == set()  # every figure is on the page
    assert driver.find_element(By.CSS_SELECTOR, "[data-figure='states.menu.no_input']").text == "2"

    # A state's recent calls, then a call's steps.
    driver.find_element(By.CSS_SELECTOR, "button.state-link[data-state='person']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#state-calls-table tbody tr"))
    listed = [r.get_attribute("data-sid") for r in driver.find_elements(By.CSS_SELECTOR, "#state-calls-table tbody tr")]
    assert listed == [sids["busy"], sids["transferred"]]
    driver.find_element(By.CSS_SELECTOR, f"button.call-link[data-sid='{sids['transferred']}']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#steps tbody tr"))
    assert driver.find_element(By.ID, "call-title").text == f"Call {sids['transferred']}"
    rows = driver.find_elements(By.CSS_SELECTOR, "#steps tbody tr")
    _, steps = call_steps(services(desk.app).events.database, sids["transferred"])
    assert [(r.get_attribute("data-state") or None, r.get_attribute("data-kind")) for r in rows] == [
        (s.state, s.kind) for s in steps
    ]
    assert ("person", "dial") in [(s.state, s.kind) for s in steps]

    # The window picker fetches again: the calls that started from T0 + 90 on.
    since = driver.find_element(By.CSS_SELECTOR, "#window input[name='since']")
    since.send_keys(iso(T0 + 90))
    driver.find_element(By.CSS_SELECTOR, "#window button[type='submit']").click()
    loaded(2)
    later = cli_json(desk, monkeypatch, "report", "desk", "--format", "json", "--source", "phone",
                     "--since", iso(T0 + 90), "--flows", str(DESK))  # fmt: skip
    assert later["calls"] == 3
    assert all(shown_as(text, value, at(later, path)) for path, text, value in figures())
    assert "since=" in driver.current_url and "source=phone" in driver.current_url
    assert not driver.find_element(By.ID, "drill").is_displayed()

    # Everything came from the app itself; no errors in the console but a graph the build cannot draw.
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(base + "/reports/") for url in fetched), fetched
    drawn = shutil.which("dot") is not None
    errors = [
        e for e in driver.get_log("browser") if e["level"] == "SEVERE" and (drawn or "graph.svg" not in e["message"])
    ]
    assert errors == []
    if drawn:  # the heat map, drawn by Graphviz, is on the page
        assert driver.execute_script("return document.getElementById('graph').naturalWidth") > 0
    driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight") + 100)
    shot = tmp_path / "reports-page.png"
    assert driver.save_screenshot(str(shot))
    if os.environ.get("IVR_ARTIFACTS_DIR"):
        artifacts = Path(os.environ["IVR_ARTIFACTS_DIR"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy(shot, artifacts / shot.name))
    print(f"reports page screenshot: {shot}")
