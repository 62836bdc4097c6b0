"""app.py under gunicorn: a setting that stops the app says so in one message, and gunicorn stops with it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT
from gunicorn.arbiter import Arbiter
from helpers import HOST, free_port

CONF = str(ROOT / "ivr" / "web" / "gunicorn_conf.py")


def gunicorn_stderr(tmp_path, *options: str) -> tuple[int, str]:
    """Start `gunicorn [options] app:app` in production with no token; its exit status and what it wrote."""
    ours = ("IVR_", "TWILIO_", "PROMETHEUS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours) and k not in ("PORT", "GUNICORN_CMD_ARGS")}
    env.update(IVR_ENV="production", IVR_PUBLIC_URL="https://ivr.example.com", WEB_CONCURRENCY="1",
               IVR_STORE=f"sqlite:///{tmp_path / 'ivr.sqlite3'}", IVR_SPOOL_DIR=str(tmp_path / "spool"),
               IVR_EVENTS=f"sqlite:///{tmp_path / 'events.sqlite3'}")  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", *options, "--bind", f"{HOST}:{free_port()}", "--no-control-socket",
               "app:app"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


@pytest.mark.parametrize("options", [("-c", CONF), ()], ids=["production config (preload)", "plain gunicorn"])
def test_gunicorn_without_a_token_stops_with_the_message_once_and_no_traceback(tmp_path, options):
    """The master stops with gunicorn's "app failed to load" status, not a worker restarted forever."""
    status, stderr = gunicorn_stderr(tmp_path, *options)
    assert status == Arbiter.APP_LOAD_ERROR, stderr
    assert stderr.count("TWILIO_AUTH_TOKEN is not set") == 1, stderr
    assert "ivr: cannot start:" in stderr
    assert "Traceback" not in stderr, stderr


def test_python_app_py_says_where_the_journal_is_and_that_inbound_calls_need_status_callbacks():
    from ivr.web.analytics import journal_lines

    lines = journal_lines({"IVR_EVENTS": "sqlite:///instance/ivr-events.sqlite3"}, "http://127.0.0.1:5000")
    assert lines[0] == (
        "  call journal: sqlite:///instance/ivr-events.sqlite3; reports: python -m ivr report FLOW, "
        "http://127.0.0.1:5000/reports"
    )
    assert "status callback URL is set" in lines[1] and "http://127.0.0.1:5000/twilio/status" in lines[2]
    shown = journal_lines({"IVR_EVENTS": "postgresql://ivr:secret@db.example.com/ivr"}, "https://x")[0]
    assert "secret" not in shown and "ivr@db.example.com/ivr" in shown
    assert journal_lines({"IVR_EVENTS": None}, "http://x") == ["  call journal: off (IVR_EVENTS=off): no reports"]
