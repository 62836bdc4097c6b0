"""`python -m ivr phone` against running servers (--url with --at and --public-url), flows given as
files, and what a screened transfer's answering party hears."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from conftest import FLOWS, TOKEN

from ivr.cli import cli
from ivr.phone import Phone, WsgiTransport

AFTER_HOURS = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # Tuesday 22:00 in New York: main's office is closed
OPEN_HOURS = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
PUBLIC = "https://ivr.example.com"
WHISPER = "  (answering party hears) Call from +15551230000 for Acme accounts. Press 1 to accept."


@pytest.fixture(autouse=True)
def shipped_flows(monkeypatch):
    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    for name in ("TWILIO_AUTH_TOKEN", "IVR_PUBLIC_URL", "IVR_RECORD_DIR"):
        monkeypatch.delenv(name, raising=False)


def phone(*args: str):
    """Run `python -m ivr phone ARGS` in-process; the click result (exit code, output)."""
    return CliRunner().invoke(cli, ["phone", *args])


def test_at_with_url_calls_a_development_server_at_that_time(make_app, serve):
    url = serve(make_app({"IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None}, now=AFTER_HOURS))
    result = phone("main", "--url", url, "--at", "2026-11-25T10:00-05:00", "--keys", "1 busy record:12")
    assert result.exit_code == 0, result.output
    assert "  Connecting you to sales." in result.output
    assert "  Thank you, we got your 12 second message." in result.output


def test_public_url_signs_for_the_address_twilio_calls(make_app, serve):
    url = serve(make_app({"IVR_PUBLIC_URL": PUBLIC}, now=OPEN_HOURS))
    result = phone("main", "--url", url, "--token", TOKEN, "--public-url", PUBLIC, "--keys", "3 record:12")
    assert result.exit_code == 0, result.output
    assert "  Thank you, we got your 12 second message." in result.output


def test_public_url_defaults_to_ivr_public_url(make_app, serve, monkeypatch):
    url = serve(make_app({"IVR_PUBLIC_URL": PUBLIC}, now=OPEN_HOURS))
    monkeypatch.setenv("IVR_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    result = phone("main", "--url", url, "--keys", "3 record:12")
    assert result.exit_code == 0, result.output
    assert "Error" not in result.output


def test_the_phone_sends_to_its_base_url_what_it_signs_for_the_public_one(make_app):
    app = make_app({"IVR_PUBLIC_URL": PUBLIC}, now=OPEN_HOURS)
    call = Phone(WsgiTransport(app), "http://127.0.0.1:5000", auth_token=TOKEN, public_url=PUBLIC).dial("main")
    assert call.error is None and call.waiting_for == "gather"
    # The app's TwiML names its public URLs; the phone followed them to the server it was given.
    assert [e.url for e in call.exchanges] == ["http://127.0.0.1:5000/voice/main"]


@pytest.mark.parametrize("path", [str(FLOWS / "main.yaml"), "flows/main.yaml"])
def test_flow_may_be_a_path_to_a_flow_file(path, monkeypatch):
    monkeypatch.chdir(FLOWS.parent)
    result = phone(path, "--at", "2026-11-25T10:00-05:00", "--keys", "hangup")
    assert result.exit_code == 0, result.output
    assert "Calling main from" in result.output
    assert "  For sales, press 1 or say sales." in result.output


def test_a_flow_file_outside_the_flows_directory_runs_with_its_neighbours(tmp_path):
    (tmp_path / "tiny.yaml").write_text("start: hi\nstates:\n  hi:\n    say: Hello from a file.\n    hangup: true\n")
    result = phone(str(tmp_path / "tiny.yaml"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == ["  Hello from a file.", "Call ended: hangup"]


def test_a_missing_flow_file_is_named(tmp_path):
    result = phone(str(tmp_path / "nosuch.yaml"), "--keys", "hangup")
    assert result.exit_code == 2
    assert "no flow file" in result.output


def test_a_screened_transfer_shows_what_the_answering_party_hears(capsys):
    result = phone("accounts", "--at", "2026-11-25T10:00-05:00", "--keys", "2 accept")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # The whisper comes after the caller's `accept` and before what the caller hears once put through.
    assert lines[lines.index("> accept") + 1] == WHISPER


@pytest.mark.parametrize("token", ["acept", "accpet:2"])
def test_an_unknown_action_suggests_accept(token):
    result = phone("accounts", "--at", "2026-11-25T10:00-05:00", "--keys", f"2 {token}")
    assert result.exit_code == 2
    assert "did you mean 'accept" in result.output


def test_a_script_that_cannot_go_on_hangs_up_before_it_stops():
    result = phone("main", "--at", "2026-11-25T10:00-05:00", "--keys", "1 bogus")
    assert result.exit_code == 2
    assert "'bogus' is not something a caller can do" in result.output
    assert "(the script cannot go on; hanging up)" in result.output  # the app sees the call end


def test_say_at_an_agent_state_talks_to_the_model_in_process(monkeypatch):
    """The terminal phone's say:TEXT reaches the agent as a prompt; the model (a fake OpenAI-compatible API on
    127.0.0.1) answers, and its line is printed as heard; 0 goes to its route as dtmf."""
    from ivr.agent.fake_api import FakeChatAPI, Reply

    with FakeChatAPI() as api:
        api.reply(Reply(tokens=["Your order ", "shipped yesterday."]))
        monkeypatch.setenv("IVR_AGENT_BASE_URL", api.base_url)
        monkeypatch.setenv("IVR_AGENT_MODEL", "fake-model")
        result = phone("assistant", "--keys", "'say:where is order 12345?' 0 hangup")
        said = [m["content"] for m in api.requests[0].body["messages"] if m["role"] == "user"]
    assert result.exit_code == 0, result.output
    assert "  Hi, this is Acme's assistant. How can I help?" in result.output
    assert "[assistant/assistant waits for agent]" in result.output
    assert "  Your order shipped yesterday." in result.output
    assert "  Connecting you to a person." in result.output  # 0: the agent's key to the operator route
    assert said == ["where is order 12345?"]


def test_the_url_phone_talks_to_an_agent_over_a_real_socket(make_app, tmp_path):
    """--url: the conversation runs over a real WebSocket to the server, signed as Twilio signs it."""
    import shutil
    import threading

    from werkzeug.serving import make_server

    from ivr.testing import Turn, use_scripted_model

    for name in ("assistant.yaml", "hooks.py"):
        shutil.copy(FLOWS / name, tmp_path / name)
    app = make_app({"IVR_FLOWS_DIR": str(tmp_path), "IVR_PUBLIC_URL": PUBLIC})
    use_scripted_model(app, [Turn("Shipped.", (("order_status", {"order": "12345"}),)), Turn("It left on Monday."),
                             Turn("Bye!", (("end_resolved", {}),))])  # fmt: skip
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        keys = "'say:is 12345 on its way?' 'say:thanks, bye'"
        result = phone("assistant", "--url", url, "--token", TOKEN, "--public-url", PUBLIC, "--keys", keys)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines.index("  Shipped.") < lines.index("  It left on Monday.") < lines.index("  Bye!")
    assert "  Thank you for calling Acme. Goodbye." in lines
    assert "Error" not in result.output
