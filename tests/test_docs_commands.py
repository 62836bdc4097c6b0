"""The `python -m ivr phone ...` and `curl ...` lines of README.md and docs/*.md run as shown, at
any hour: on a weekday in and out of office hours and on a weekend (the example flows route by
the time of day). Phone commands run in-process; `http://127.0.0.1:5000` is a development app as
`python app.py` serves it; curl lines go to that app through Flask's test client."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from conftest import FLOWS, ROOT

import ivr.web.services
from ivr import create_app
from ivr.cli import cli

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINE = re.compile(r"^\s*((?:python -m ivr phone|curl) .*)$", re.MULTILINE)
LOCAL = "http://127.0.0.1:5000"  # where the docs say `python app.py` serves
MOMENTS = {
    "weekday-office-hours": datetime(2026, 11, 25, 15, 0, tzinfo=UTC),
    "weekday-evening": datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
    "saturday": datetime(2026, 11, 28, 17, 0, tzinfo=UTC),
}


def documented(prefix: str) -> list[tuple[str, list[list[str]]]]:
    """Per doc file, its lines that start with `prefix`, split as a shell would (comments dropped)."""
    found = []
    for path in DOCS:
        # A line continued with `\` is read up to the backslash: what follows is not run here.
        text = path.read_text(encoding="utf-8")
        lines = [shlex.split(m.removesuffix("\\"), comments=True) for m in LINE.findall(text)]
        lines = [words for words in lines if " ".join(words).startswith(prefix)]
        if lines:
            found.append((str(path.relative_to(ROOT)), lines))
    return found


@pytest.fixture(params=MOMENTS.values(), ids=MOMENTS.keys())
def development_app(request, monkeypatch, tmp_path):
    """`python app.py`'s app on the shipped flows, with the real clock set to one moment of the week."""
    monkeypatch.setattr(ivr.web.services, "_utc_now", lambda: request.param)  # in-process phones too
    for name in ("TWILIO_AUTH_TOKEN", "IVR_PUBLIC_URL", "IVR_RECORD_DIR", "IVR_HOOKS", "IVR_SCHEDULES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    settings = {"IVR_ENV": "development", "IVR_STORE": "memory://", "IVR_SPOOL_DIR": str(tmp_path / "spool")}
    return create_app({**settings, "TWILIO_AUTH_TOKEN": None})


def test_the_docs_show_phone_and_curl_commands():
    assert len([c for _, lines in documented("python -m ivr phone") for c in lines]) >= 4
    assert "README.md" in dict(documented("curl"))


def test_the_documented_phone_commands_run_at_any_hour(development_app, serve):
    url = serve(development_app)
    for path, lines in documented("python -m ivr phone"):
        for words in lines:
            args = [url if word == LOCAL else word for word in words[3:]]
            result = CliRunner().invoke(cli, args, input="")
            assert result.exit_code == 0, f"{path}: {shlex.join(words)}\n{result.output}"
            assert "Error" not in result.output, f"{path}: {shlex.join(words)}\n{result.output}"


def test_the_documented_curl_requests_follow_the_call_at_any_hour(development_app):
    client = development_app.test_client()
    for path, lines in documented("curl"):
        waiting_at = None  # the path the previous answer's waiting verb posts to
        for words in lines:
            method, url, data, headers = _curl(words)
            if not url.startswith(LOCAL):
                continue  # a production server's address: not runnable here
            target = urlsplit(url)
            shown = f"{path}: {shlex.join(words)}"
            assert waiting_at in (None, target.path), f"{shown}: the call waits at {waiting_at}"
            response = client.open(target.path, method=method, data=data, headers=headers)
            assert response.status_code == 200, shown
            root = ElementTree.fromstring(response.get_data())
            assert "went wrong" not in response.get_data(as_text=True), shown
            waiting = next((v for v in root if v.tag in ("Gather", "Record")), None)
            waiting_at = urlsplit(waiting.get("action")).path if waiting is not None else None


def _curl(words: list[str]) -> tuple[str, str, dict, dict]:
    """The method, URL, form data and headers of a curl command line (the options the docs use)."""
    method, url, data, headers = "GET", "", {}, {}
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-d":
            key, _, value = next(rest).partition("=")
            data[key], method = value, "POST" if method == "GET" else method
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif not word.startswith("-"):
            url = word
    return method, url, data, headers


def test_curl_lines_are_read_as_curl_reads_them():
    words = shlex.split('curl -X POST -H "X-Ivr-Clock: 2026-11-25T10:00-05:00" -d CallSid=CA1 http://h/voice/main')
    assert _curl(words) == (
        "POST",
        "http://h/voice/main",
        {"CallSid": "CA1"},
        {"X-Ivr-Clock": "2026-11-25T10:00-05:00"},
    )
