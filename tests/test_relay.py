"""/relay/<flow>/<state>: the handshake is signed like a webhook over its wss:// URL, sockets are capped per
worker, and the conversation runs over a real socket (werkzeug's server and gunicorn's gthread workers) and
in-process for the built-in phone."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time

import pytest
from agent_helpers import Talk, make_agent, socket_to, with_agent
from conftest import ROOT, TOKEN
from helpers import HOST, free_port
from twilio.request_validator import RequestValidator

from ivr.agent.conversation import Closed
from ivr.agent.model import ScriptedModel, Turn
from ivr.web.relay import MAX_MESSAGE, relay_url
from ivr.web.services import services

SID = "CA" + "2" * 32
PUBLIC = "https://ivr.example.com"
URL = "wss://ivr.example.com/relay/main/assistant"
UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()}  # fmt: skip


def sign(url: str, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, {})


@pytest.fixture
def agent_app(make_app):
    """An app whose main flow has an agent state `assistant`, a scripted model, and the call's session."""

    def make(turns=(), **config):
        app = make_app({"IVR_PUBLIC_URL": PUBLIC, **config})
        found = services(app)
        found.flows.flows["main"] = with_agent(found.flows.flows["main"], "assistant", make_agent())
        found.agent_model = lambda agent: ScriptedModel(list(turns))
        found.store.update(SID, lambda _: {"flow": "main", "state": "assistant", "vars": {"name": "Ann"}}, 3600)
        return app

    return make


@pytest.fixture
def serve_ws(serve):
    """The conftest's threaded server, as its ws:// base URL."""
    return lambda app: "ws" + serve(app).removeprefix("http")


def test_the_relay_url_is_the_public_url_with_a_websocket_scheme():
    assert relay_url("https://ivr.example.com/base/", "/relay/m/s") == "wss://ivr.example.com/base/relay/m/s"
    assert relay_url("http://localhost:5000", "/relay/m/s") == "ws://localhost:5000/relay/m/s"


@pytest.mark.parametrize(
    "signature",
    [None, sign(URL, "0" * 32), sign("https://ivr.example.com/relay/main/assistant"), sign(URL + "?x=1")],
    ids=["missing", "forged", "https not wss", "with a query"],
)
def test_a_handshake_not_signed_over_the_wss_url_is_refused(agent_app, caplog, signature):
    app = agent_app()
    headers = {**UPGRADE, **({"X-Twilio-Signature": signature} if signature else {})}
    response = app.test_client().get("/relay/main/assistant", headers=headers)
    assert response.status_code == 403
    assert f"refused WebSocket /relay/main/assistant: {'invalid' if signature else 'missing'}" in caplog.text
    assert URL in caplog.text


def test_without_a_token_a_forwarded_handshake_is_refused_in_development(agent_app, caplog):
    app = agent_app(TWILIO_AUTH_TOKEN=None, IVR_ENV="development", IVR_STORE="memory://")
    response = app.test_client().get("/relay/main/assistant", headers={**UPGRADE, "X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403
    assert "no TWILIO_AUTH_TOKEN is set" in caplog.text


def test_a_state_that_is_not_an_agent_is_not_found(agent_app):
    app = agent_app()
    url = "wss://ivr.example.com/relay/main/main_menu"
    response = app.test_client().get("/relay/main/main_menu", headers={**UPGRADE, "X-Twilio-Signature": sign(url)})
    assert response.status_code == 404
    with pytest.raises(LookupError):
        app.extensions["ivr.relay"].open("main", "nowhere")


def test_a_signed_conversation_over_a_real_socket_ends_with_handoff_data(agent_app, serve_ws):
    app = agent_app([Turn("Your order shipped."), Turn("Bye!", (("end_resolved", {}),))])
    talk = Talk(socket_to(serve_ws(app) + "/relay/main/assistant", sign(URL)))
    talk.setup(SID)
    assert talk.say("where is my order") == "Your order shipped."
    assert talk.say("thanks") == "Bye!"
    assert talk.handoff() == {"route": "resolved", "values": {}}
    summary = services(app).store.get(SID)["agent"]
    assert (summary["outcome"], summary["turns"]) == ("resolved", 2)
    with pytest.raises(Closed):  # the server closes the socket after `end`
        talk.connection.receive(2)
    deadline = time.monotonic() + 3
    while app.extensions["ivr.relay"].slots.used and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.extensions["ivr.relay"].slots.used == 0, "the socket's slot was given back"


def test_a_dropped_socket_ends_as_a_hangup_and_frees_its_slot(agent_app, serve_ws):
    app = agent_app([Turn("Hello.")])
    talk = Talk(socket_to(serve_ws(app) + "/relay/main/assistant", sign(URL)))
    talk.setup(SID)
    assert talk.say("hi") == "Hello."
    talk.connection.close()
    deadline = time.monotonic() + 3
    while app.extensions["ivr.relay"].slots.used and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.extensions["ivr.relay"].slots.used == 0
    assert services(app).store.get(SID)["agent"]["outcome"] == "hangup"


def test_sockets_beyond_the_workers_cap_are_refused(agent_app, caplog):
    app = agent_app(IVR_AGENT_SOCKETS="1")
    held = app.extensions["ivr.relay"].open("main", "assistant")  # no setup yet: it waits, holding the slot
    response = app.test_client().get("/relay/main/assistant", headers={**UPGRADE, "X-Twilio-Signature": sign(URL)})
    assert response.status_code == 503
    assert "holds 1 conversations already (IVR_AGENT_SOCKETS)" in caplog.text
    with pytest.raises(RuntimeError, match="IVR_AGENT_SOCKETS"):
        app.extensions["ivr.relay"].open("main", "assistant")
    held.close()


def test_the_in_process_entry_speaks_the_same_protocol(agent_app):
    app = agent_app([Turn("Hi Ann.", (("end_operator", {"reason": "wants a person"}),))])
    talk = Talk(app.extensions["ivr.relay"].open("main", "assistant", {"CallSid": SID, "From": "+1555", "To": "+1666"}))
    assert talk.say("a person please") == "Hi Ann."
    assert talk.handoff() == {"route": "operator", "values": {"reason": "wants a person"}}
    assert services(app).store.get(SID)["agent"]["transcript"][0] == {"caller": "a person please"}


def test_the_production_command_serves_the_socket_on_gthread_workers(tmp_path):
    """gunicorn with the project's config (gthread workers) holds a conversation over a real socket."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_", "PROMETHEUS_"))}
    env.update(IVR_ENV="test", IVR_STORE="memory://", IVR_PUBLIC_URL=PUBLIC, TWILIO_AUTH_TOKEN=TOKEN,
               IVR_FLOWS_DIR=str(ROOT / "flows"), IVR_SPOOL_DIR=str(tmp_path / "spool"), IVR_EVENTS="off",
               IVR_ANALYTICS_KEY="k" * 64, WEB_CONCURRENCY="1", PORT="")  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "fixtures" / "agent")])
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "ivr" / "web" / "gunicorn_conf.py"), "--bind",
               f"{HOST}:{port}", "--no-control-socket", "relay_app:app"]  # fmt: skip
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        talk = Talk(socket_to(f"ws://{HOST}:{port}/relay/main/assistant", sign(URL)))
        talk.setup("CA" + "7" * 32)
        assert talk.say("hello") == "Hello from gunicorn."
        assert talk.handoff() == {"route": "resolved", "values": {}}
        talk.connection.close()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode()


def test_the_agent_benchmarks_scenario_holds_at_small_scale():
    """benchmarks/agents.py at 3 conversations: production gunicorn, signed webhooks and handshakes, the fake model
    in its own process, a tool call, an end on resolved and the action webhook's goodbye, with no error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_", "PROMETHEUS_"))}
    command = [sys.executable, "-m", "benchmarks.agents", "--concurrency", "3", "--sockets", "4", "--ttft", "0.05",
               "--rate", "200", "--think", "0.1"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 3 | 3 |"))
    conversations, turns, tools, errors = (int(cell) for cell in row.split("|")[2:6])
    assert (conversations, errors) == (3, 0) and turns >= 9 and tools == 2, row
    assert "threads per worker (4 for webhooks + IVR_AGENT_SOCKETS=4)" in done.stdout
    assert "Server log: 0 tracebacks or refused handshakes." in done.stdout


def test_a_message_too_big_to_be_a_prompt_closes_the_socket_unread(agent_app, serve_ws):
    model = ScriptedModel([Turn("You should never hear this.")])
    app = agent_app([])
    services(app).agent_model = lambda agent: model
    talk = Talk(socket_to(serve_ws(app) + "/relay/main/assistant", sign(URL)))
    talk.setup(SID)
    talk.connection.send({"type": "prompt", "voicePrompt": "x" * (MAX_MESSAGE + 1), "lang": "en-US", "last": True})
    with pytest.raises(Closed):
        talk.connection.receive(3)
    assert model.asked == []


def test_the_conversation_runs_the_flow_version_its_document_came_from(make_app, tmp_path, monkeypatch):
    from ivr.web import registry as registry_module

    monkeypatch.setattr(registry_module, "CHECK_EVERY", 0.0)
    flows = tmp_path / "flows"
    flows.mkdir()
    text = (
        "start: assistant\nstates:\n  assistant:\n    agent:\n      instructions: VERSION ONE.\n"
        "      ends: {resolved: {description: Done.}}\n    routes: {resolved: bye, limit: bye, error: bye}\n"
        "  bye:\n    say: Bye.\n    hangup: true\n"
    )
    (flows / "x.yaml").write_text(text)
    app = make_app({"IVR_FLOWS_DIR": str(flows), "IVR_HOT_RELOAD": "1"})
    found = services(app)
    old = found.flows.flows["x"].content_hash
    (flows / "x.yaml").write_text(text.replace("VERSION ONE.", "VERSION TWO."))
    os.utime(flows / "x.yaml", ns=(1, 2_000_000_000_000_000_000))
    found.flows.refresh()
    assert found.flows.flows["x"].content_hash != old
    model = ScriptedModel([Turn("Done.", (("end_resolved", {}),))])
    found.agent_model = lambda agent: model
    found.store.update(SID, lambda _: {"flow": "x", "state": "assistant", "vars": {}}, 3600)
    talk = Talk(
        app.extensions["ivr.relay"].open("x", "assistant", {"CallSid": SID, "customParameters": {"version": old}})
    )
    talk.say("hello")
    assert model.asked[0][0][0]["content"] == "VERSION ONE."
