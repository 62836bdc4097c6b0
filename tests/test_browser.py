"""The browser phone: its JSON API through Flask's test client, and the page in a real headless
Chromium (Debian's, with its chromedriver; the test skips when they are not installed)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import FLOWS, OPEN_HOURS

from ivr.core.flow import dial_outcomes
from ivr.web import browser
from ivr.web import registry as registry_module
from ivr.web.browser import init_app
from ivr.web.live_calls import LiveCalls

MENU = (
    "For sales, press 1 or say sales. For support, press 2 or say support. To leave a message, press 3. "
    "For our opening hours, press 4."
)
LEAVE_A_MESSAGE = "Please leave a message after the beep. Press the pound key when you are done."


@pytest.fixture
def phone_app(make_app):
    """The suite's app (main's flows, a token, Wednesday 10:00 in New York) with the browser phone on."""
    app = make_app({"IVR_PHONE": "1"})
    init_app(app)
    return app


@pytest.fixture
def api(phone_app):
    return phone_app.test_client()


def texts(answer) -> list[str]:
    return [h["text"] for h in answer.json["heard"]]


def place(api, flow="main", **body):
    response = api.post("/phone/calls", json={"flow": flow, **body})
    assert response.status_code == 201, response.json
    return response


def act(api, call_id, action, value=None, status=200):
    body = {"action": action} if value is None else {"action": action, "value": value}
    response = api.post(f"/phone/calls/{call_id}", json=body)
    assert response.status_code == status, response.json
    return response


# -- the JSON API -------------------------------------------------------------------------------


def test_a_call_to_main_presses_through_to_voicemail(api):
    answer = place(api)
    call_id = answer.json["id"]
    assert texts(answer) == ["Thanks for calling Acme.", MENU]
    assert (answer.json["flow"], answer.json["state"], answer.json["waiting_for"]) == ("main", "menu", "gather")
    assert answer.json["ended"] is False

    answer = act(api, call_id, "press", "3")
    assert texts(answer) == [LEAVE_A_MESSAGE]  # only the new lines
    assert (answer.json["state"], answer.json["waiting_for"]) == ("voicemail", "record")

    answer = act(api, call_id, "record", "5")
    assert texts(answer) == ["Thank you, we got your 5 second message.", "Thanks for calling Acme. Goodbye."]
    assert (answer.json["ended"], answer.json["end_reason"], answer.json["error"]) == (True, "hangup", None)
    assert (answer.json["flow"], answer.json["state"]) == ("main", "goodbye")  # where it ended, not where it recorded
    assert answer.json["waiting_for"] is None
    assert answer.json["effects"] == []  # main's voicemail runs no hook
    assert answer.json["warnings"] == []  # every document passed Twilio's schema (IVR_TWIML_XSD)

    everything = api.get(f"/phone/calls/{call_id}").json
    assert len(everything["heard"]) == 5
    assert everything["heard"][0] == {
        "kind": "say",
        "text": "Thanks for calling Acme.",
        "voice": "Polly.Joanna",
        "language": "en-US",
        "loop": 1,
        "flow": "main",
        "state": None,
    }


def test_the_effects_list_the_hooks_the_call_ran(api):
    answer = place(api, "accounts", **{"from": "+15551230000"})
    assert texts(answer)[0] == "Welcome back to Acme, Ada."
    [effect] = answer.json["effects"]
    assert (effect["kind"], effect["name"], effect["outcome"], effect["vars"]) == (
        "hook",
        "lookup_caller",
        "found",
        {"name": "Ada"},
    )


def test_speech_and_silence_are_heard_as_in_a_call(api):
    call_id = place(api).json["id"]
    answer = act(api, call_id, "wait")
    assert texts(answer)[0] == "Sorry, I didn't hear anything."
    answer = act(api, call_id, "say", "support")
    assert answer.json["state"] == "support_menu"
    assert texts(answer)[0].startswith("For billing, press 1")


def test_a_busy_dial_leaves_a_message_and_an_empty_one_says_goodbye(api):
    call_id = place(api).json["id"]
    assert act(api, call_id, "press", "1").json["waiting_for"] == "dial"
    answer = act(api, call_id, "dial", "busy")
    assert (answer.json["state"], answer.json["waiting_for"]) == ("voicemail", "record")
    answer = act(api, call_id, "record_nothing")
    assert texts(answer) == ["Thanks for calling Acme. Goodbye."]
    assert answer.json["ended"] is True


def test_a_screened_transfer_is_accepted_with_a_key(api):
    call_id = place(api, "accounts").json["id"]
    assert act(api, call_id, "press", "2").json["state"] == "agent"
    answer = act(api, call_id, "accept", "1")
    assert answer.json["whisper"] == ["Call from +15551230000 for Acme accounts. Press 1 to accept."]
    assert texts(answer) == ["Thank you for calling Acme. Goodbye."]
    assert answer.json["ended"] is True


def test_the_caller_can_hang_up(api):
    call_id = place(api).json["id"]
    answer = act(api, call_id, "hangup")
    assert (answer.json["ended"], answer.json["end_reason"]) == (True, "caller-hangup")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("post", "/phone/calls", {"flow": "nope"}, 404, "no flow 'nope' (flows: accounts, hours, main, pin)"),
        ("post", "/phone/calls", {}, 400, 'give the flow to call: {"flow": "main"}'),
        ("post", "/phone/calls", {"flow": "main", "state": "nowhere"}, 404, "flow 'main' has no state 'nowhere'"),
        ("post", "/phone/calls", {"flow": ["main"]}, 400, "'flow' must be text"),
        ("post", "/phone/calls/CAnope", {"action": "wait"}, 404, "no call 'CAnope'"),
        ("get", "/phone/calls/CAnope", None, 404, "no call 'CAnope'"),
        ("get", "/phone/flows/nope/graph", None, 404, "no flow 'nope'"),
    ],
)
def test_bad_requests_answer_json_with_a_message(api, method, path, body, status, message):
    response = getattr(api, method)(path, json=body) if body is not None else getattr(api, method)(path)
    assert response.status_code == status
    assert response.json["error"].startswith(message)


@pytest.mark.parametrize(
    ("action", "value", "status", "message"),
    [
        ("dance", None, 400, "unknown action 'dance'; one of press, say, wait"),
        ("record", "5", 409, "cannot record: the call is waiting for input to a <Gather>"),
        ("press", "12a", 409, "cannot press 'a': a keypad has only 0-9, * and #"),
        ("dial", "maybe", 400, "unknown dial outcome 'maybe'"),
        ("queue", "never", 400, "unknown queue result 'never'"),
        ("record", "ten", 400, "record takes whole seconds from 0 to 3600, not 'ten'"),
    ],
)
def test_an_action_the_call_cannot_take_is_refused_with_a_message(api, action, value, status, message):
    call_id = place(api).json["id"]
    response = act(api, call_id, action, value, status=status)
    assert response.json["error"].startswith(message)
    assert act(api, call_id, "press", "3").json["state"] == "voicemail"  # the call goes on


def test_a_body_that_is_not_json_is_refused(api):
    response = api.post("/phone/calls", data={"flow": "main"})  # a form, as a cross-site page could send
    assert response.status_code == 400
    assert response.json == {"error": "send a JSON object (Content-Type: application/json)"}


def test_a_failure_answers_json_without_a_traceback(api, monkeypatch, caplog):
    call_id = place(api).json["id"]

    def broken(self, keys):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(browser.PhoneCall, "press", broken)
    response = act(api, call_id, "press", "1", status=500)
    assert response.json == {"error": "the server failed (RuntimeError); its log has the details"}
    assert "secret detail" in caplog.text  # the log has it, the answer does not


def test_the_flows_are_listed_for_the_page(api):
    flows = api.get("/phone/flows").json
    assert [f["id"] for f in flows["flows"]] == ["accounts", "hours", "main", "pin"]
    assert flows["flows"][2]["title"] == "Acme main line"
    assert flows["problems"] == []


def test_the_page_gets_the_dial_outcomes_and_queue_results_from_the_server(api):
    flows = api.get("/phone/flows").json
    assert sorted(flows["queue_results"]) == ["bridged", "error", "leave", "queue-full", "redirected", "system-error"]
    assert place(api).json["dial_outcomes"] == []  # the menu waits for no dial
    assert place(api, state="sales").json["dial_outcomes"] == ["completed", "busy", "no-answer", "failed", "canceled"]


def test_every_state_the_call_passed_is_listed_the_input_less_ones_too(api):
    call_id = place(api).json["id"]
    act(api, call_id, "press", "3")
    answer = act(api, call_id, "record", "5")
    visited = [(v["flow"], v["state"]) for v in answer.json["visited"]]
    states = ["welcome", "office_hours", "menu", "voicemail", "thanks_for_message", "goodbye"]
    assert visited == [("main", state) for state in states]


@pytest.mark.parametrize("outcome", dial_outcomes(None))
def test_every_dial_outcome_offered_is_accepted(api, outcome):
    call_id = place(api, state="sales").json["id"]
    assert act(api, call_id, "dial", outcome).json["waiting_for"] != "dial"


def test_a_plain_dial_cannot_end_answered(api):
    """Twilio reports `answered` only for a dial to a conference."""
    call_id = place(api, state="sales").json["id"]
    refused = act(api, call_id, "dial", "answered", status=400)
    assert refused.json["error"].startswith("this dial cannot end 'answered'; it ends completed, busy")


def test_the_graph_of_a_flow_is_served_for_the_page(api):
    graph = api.get("/phone/flows/main/graph").json
    assert graph["start"] == "welcome"
    assert {"id": "voicemail", "label": "voicemail", "kind": "state"} in graph["nodes"]
    assert {"source": "menu", "target": "voicemail", "label": "3"} in graph["edges"]


def test_a_bad_edit_is_listed_as_a_problem(make_app, flows_dir, monkeypatch):
    monkeypatch.setattr(registry_module, "CHECK_EVERY", 0.0)
    good = "start: hello\nstates:\n  hello: {say: Hello., hangup: true}\n"
    (flows_dir / "line.yaml").write_text(good)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_PHONE": "1", "IVR_HOT_RELOAD": "1"})
    init_app(app)
    (flows_dir / "line.yaml").write_text(good.replace("hangup: true", "next: nowhere"))
    [problem] = app.test_client().get("/phone/flows").json["problems"]
    assert problem.startswith(f"{flows_dir.name}/line.yaml:3:") or ":3:" in problem
    assert ": error: states.hello.next: unknown state 'nowhere'" in problem


@pytest.mark.parametrize(
    ("config", "served"),
    [({"IVR_PHONE": "0"}, False), ({}, False), ({"IVR_PHONE": "1"}, True)],
)
def test_the_phone_is_served_only_when_ivr_phone_is_on(make_app, config, served):
    app = make_app(config)  # IVR_ENV=test: off unless asked for
    init_app(app)
    client = app.test_client()
    for path in ("/phone", "/phone/flows"):
        assert client.get(path).status_code == (200 if served else 404)
    assert client.post("/phone/calls", json={"flow": "main"}).status_code == (201 if served else 404)


def test_the_phone_is_on_by_default_in_development(make_app):
    app = make_app({"IVR_ENV": "development"})
    init_app(app)
    init_app(app)  # twice is harmless: create_app may already have done it
    page = app.test_client().get("/phone")
    assert page.status_code == 200
    assert '<select id="flow"' in page.get_data(as_text=True)


PHONE_REQUESTS = [
    ("get", "/phone", None),
    ("get", "/phone/flows", None),
    ("get", "/phone/flows/main/graph", None),
    ("get", "/phone/static/phone.js", None),
    ("post", "/phone/calls", {"flow": "main", "from": "+15551239999"}),
    ("get", "/phone/calls/CA0", None),
    ("post", "/phone/calls/CA0", {"action": "press", "value": "1"}),
]
NOT_LOCAL = [
    ({"REMOTE_ADDR": "203.0.113.7"}, {}),
    ({"REMOTE_ADDR": "10.0.0.2"}, {}),
    ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.7"}),
    ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-Host": "abc.ngrok.app"}),
    ({"REMOTE_ADDR": "::1"}, {"Forwarded": "for=203.0.113.7"}),
    ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-Proto": "https"}),
]


@pytest.mark.parametrize(("method", "path", "body"), PHONE_REQUESTS)
@pytest.mark.parametrize(("environ", "headers"), NOT_LOCAL)
def test_the_phone_refuses_other_machines_and_proxied_requests(make_app, method, path, body, environ, headers):
    """A tunnel to `python app.py` must not let anyone call flows as any caller and hear the hooks' results."""
    app = make_app({"IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None})
    client = app.test_client()
    response = getattr(client, method)(path, json=body, headers=headers, environ_base=environ)
    assert response.status_code == 403
    assert "only requests from this machine" in response.json["error"]


def test_no_call_is_placed_for_a_refused_request(make_app, caplog):
    app = make_app({"IVR_ENV": "development"})
    with app.app_context():
        calls = browser.live_calls()
    response = app.test_client().post("/phone/calls", json={"flow": "main"}, headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 403
    assert len(calls) == 0
    (line,) = [r.getMessage() for r in caplog.records if r.name == "ivr.browser"]
    assert line.startswith("refused POST /phone/calls from 127.0.0.1: the browser phone serves only this machine")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_the_phone_serves_this_machine_without_proxy_headers(make_app, address):
    app = make_app({"IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None})
    client = app.test_client()
    assert client.get("/phone", environ_base={"REMOTE_ADDR": address}).status_code == 200
    response = client.post("/phone/calls", json={"flow": "main"}, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 201


def test_live_calls_are_bounded_and_expire():
    now = [0.0]
    calls = LiveCalls(None, size=2, idle=60, clock=lambda: now[0])

    class Call:
        def __init__(self, sid):
            self.sid = sid

    for sid in ("CA1", "CA2", "CA3"):
        calls.add(Call(sid))
    assert calls.get("CA1") is None  # the oldest went
    now[0] = 50
    assert calls.get("CA2") is not None  # using a call renews it
    now[0] = 100
    assert calls.get("CA3") is None  # idle for 100 s
    assert calls.get("CA2") is not None
    assert len(calls) == 1


# -- the page in a real browser -----------------------------------------------------------------


@pytest.fixture
def served_app():
    """The app with the phone on, served by a real HTTP server on a free loopback port."""
    from werkzeug.serving import make_server

    from ivr import create_app

    app = create_app(
        {"IVR_ENV": "test", "IVR_STORE": "memory://", "IVR_PHONE": "1", "IVR_FLOWS_DIR": str(FLOWS)},
        clock=lambda: OPEN_HOURS,  # a Wednesday, 15:00 UTC: main's office is open
    )
    init_app(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-phone-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_the_page_calls_main_and_leaves_a_voicemail(served_app, chromium, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium
    wait = WebDriverWait(driver, 20)
    started = time.perf_counter()

    def transcript() -> list[str]:
        return [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#transcript li")]

    def current_state() -> list[str]:
        return [n.get_attribute("data-id") for n in driver.find_elements(By.CSS_SELECTOR, "#graph .node.current")]

    driver.get(served_app + "/phone")
    wait.until(lambda d: d.find_element(By.ID, "flow").get_attribute("value") == "main")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#graph .node[data-id='voicemail']"))
    assert current_state() == []  # no call yet

    driver.find_element(By.ID, "call").click()
    wait.until(lambda d: MENU in transcript())
    assert "Thanks for calling Acme." in transcript()
    assert "main \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} menu" in driver.find_element(By.ID, "status-text").text
    wait.until(lambda d: current_state() == ["menu"])

    driver.find_element(By.CSS_SELECTOR, "#keypad button[data-key='3']").click()
    wait.until(lambda d: LEAVE_A_MESSAGE in transcript())
    assert "You press 3" in transcript()
    wait.until(lambda d: current_state() == ["voicemail"])
    assert driver.find_element(By.ID, "record").is_displayed()

    seconds = driver.find_element(By.ID, "seconds")
    seconds.clear()
    seconds.send_keys("5")
    driver.find_element(By.ID, "record").click()
    wait.until(lambda d: "Call ended: the flow hung up" in transcript())
    lines = transcript()
    assert lines.index("Thank you, we got your 5 second message.") < lines.index("Thanks for calling Acme. Goodbye.")
    assert "ended" in driver.find_element(By.ID, "status").get_attribute("class")
    assert current_state() == ["goodbye"]  # where the flow hung up, two states after the recording
    status = driver.find_element(By.ID, "status-text").text
    assert "main \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} goodbye" in status
    visited = {n.get_attribute("data-id") for n in driver.find_elements(By.CSS_SELECTOR, "#graph .node.visited")}
    assert visited == {"welcome", "office_hours", "menu", "voicemail", "thanks_for_message", "goodbye"}
    assert not driver.find_element(By.ID, "hangup").is_enabled()
    assert driver.find_element(By.ID, "call").is_enabled()
    assert driver.find_element(By.ID, "effects").text == "None yet."
    assert not driver.find_element(By.ID, "problems").is_displayed()

    # Everything the page loaded came from the app itself; the console has no errors.
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(served_app + "/phone") for url in fetched), fetched
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    shot = tmp_path / "browser-phone.png"
    assert driver.save_screenshot(str(shot))
    if os.environ.get("IVR_ARTIFACTS_DIR"):
        artifacts = Path(os.environ["IVR_ARTIFACTS_DIR"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy(shot, artifacts / shot.name))
    print(f"browser phone screenshot: {shot} (the call took {time.perf_counter() - started:.1f} s)")


def test_the_page_offers_the_outcomes_the_server_lists(served_app, chromium, monkeypatch):
    """The page keeps no list of its own: an outcome only the server knows gets a button."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setattr(browser, "dial_outcomes", lambda dial: ("busy", "completed", "invented-outcome"))
    monkeypatch.setattr(browser, "QUEUE_RESULTS", ("leave", "bridged"))

    def offered(kind: str) -> list[str]:
        buttons = chromium.find_elements(By.CSS_SELECTOR, f"#{kind}-choices button")
        return [b.get_attribute(f"data-{kind}") for b in buttons]

    chromium.get(served_app + "/phone")
    wait = WebDriverWait(chromium, 20)
    wait.until(lambda d: offered("queue") == ["leave", "bridged"])
    wait.until(lambda d: d.find_element(By.ID, "flow").get_attribute("value") == "main")
    chromium.find_element(By.ID, "call").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#keypad button[data-key='1']:enabled"))
    chromium.find_element(By.CSS_SELECTOR, "#keypad button[data-key='1']").click()  # sales: a dial
    wait.until(lambda d: offered("dial") == ["busy", "completed", "invented-outcome"])


def test_typed_text_at_an_agent_state_talks_to_the_agent_and_its_reply_is_shown(make_app, tmp_path):
    from ivr.testing import Turn, use_scripted_model

    for name in ("assistant.yaml", "hooks.py"):
        shutil.copy(FLOWS / name, tmp_path / name)
    app = make_app({"IVR_PHONE": "1", "IVR_FLOWS_DIR": str(tmp_path)})
    init_app(app)
    use_scripted_model(app, [Turn("It shipped on Monday."), Turn("Bye!", (("end_resolved", {}),))])
    api = app.test_client()
    call = place(api, "assistant").json
    assert (texts_of(call), call["waiting_for"]) == (["Hi, this is Acme's assistant. How can I help?"], "agent")
    answer = act(api, call["id"], "say", "where is order 12345?").json
    assert (texts_of(answer), answer["waiting_for"]) == (["It shipped on Monday."], "agent")
    answer = act(api, call["id"], "say", "thanks").json
    assert texts_of(answer) == ["Bye!", "Thank you for calling Acme. Goodbye."]
    assert answer["ended"] and answer["state"] == "goodbye"


def texts_of(view: dict) -> list[str]:
    return [h["text"] for h in view["heard"]]
