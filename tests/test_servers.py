"""Two app servers, separate processes, share one Redis: a call served by both in turn goes on as
if one server had answered it all. And with Redis gone, a webhook still answers the flow's error
state, at once.

Each server is a child process serving create_app({...}) over HTTP on a free port, with
IVR_PUBLIC_URL as the one public address that Twilio would sign; the phone's transport plays the
load balancer, sending each request to the next server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, TOKEN
from helpers import DB, HOST, free_port

from ivr.phone import HttpTransport, Phone
from ivr.store.redis import RedisStore

PUBLIC = "http://ivr.test"  # the address callers' webhooks are signed for, in front of both servers
APOLOGY = "We're sorry, something went wrong on our side. Please call again later."

# One app server. The clock is a Wednesday at 10:00 in New York, so that main's menu is open.
SERVER = """
import json, sys
from datetime import UTC, datetime
from werkzeug.serving import make_server
import ivr.web

config = json.loads(sys.argv[1])  # IVR_REDIS_PREFIX among them: each test's keys are its own
app = ivr.web.create_app(config, clock=lambda: datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.port, flush=True)
server.serve_forever()
"""


class Servers:
    """App servers started as child processes; each prints its port, then serves until stopped."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self, **settings: str) -> str:
        """Start one server with these settings over the defaults; return its base URL."""
        config = {
            "IVR_ENV": "test",
            "IVR_FLOWS_DIR": str(ROOT / "flows"),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "IVR_PHONE": "0",
            "IVR_PUBLIC_URL": PUBLIC,
            "IVR_REDIS_PREFIX": "ivr:",
            **settings,
        }
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        log = self.folder / f"server{len(self.processes)}.log"
        with log.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-c", SERVER, json.dumps(config)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env={**os.environ, "PYTHONPATH": pythonpath},
                cwd=self.folder,
            )
        self.processes.append((process, log))
        line = process.stdout.readline()
        assert line.strip().isdigit(), f"the app server did not start:\n{log.read_text()}"
        return f"http://{HOST}:{int(line)}"

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for _, log in self.processes)

    def stop(self) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, _ in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


@pytest.fixture
def servers(tmp_path):
    started = Servers(tmp_path)
    yield started
    started.stop()


class RoundRobin:
    """The load balancer: each request to the public address goes to the next server in turn."""

    def __init__(self, *bases: str) -> None:
        self.bases = bases
        self.http = HttpTransport(timeout=5)
        self.served: list[str] = []  # which server answered each request

    def request(self, method: str, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        assert url.startswith(PUBLIC + "/"), url
        base = self.bases[len(self.served) % len(self.bases)]
        self.served.append(base)
        return self.http.request(method, base + url.removeprefix(PUBLIC), params, headers)


@pytest.fixture
def two_servers(servers, redis_url, redis_prefix):
    """Two app servers on one Redis, behind a round-robin balancer."""
    settings = {"IVR_STORE": redis_url, "IVR_REDIS_PREFIX": redis_prefix}
    return RoundRobin(servers.start(**settings), servers.start(**settings))


def test_a_call_alternating_between_two_servers_keeps_its_retries_and_variables(
    two_servers, redis_url, redis_prefix, servers
):
    phone = Phone(two_servers, PUBLIC, auth_token=TOKEN)
    call = phone.dial("main")
    assert call.heard[0] == "Thanks for calling Acme.", servers.logs()
    assert call.waiting_for == "gather"
    call.wait()  # the second request: the other server
    assert call.heard[0] == "Sorry, I didn't hear anything."
    call.wait()
    assert call.heard[0] == "Sorry, I didn't hear anything."
    call.press("3")
    assert call.heard == ["Please leave a message after the beep. Press the pound key when you are done."]
    call.record(7)
    assert call.heard == ["Thank you, we got your 7 second message.", "Thanks for calling Acme. Goodbye."]
    assert call.end_reason == "hangup"
    assert call.error is None and call.warnings == []
    assert [e.status for e in call.exchanges + call.callbacks] == [200] * len(two_servers.served)
    assert set(two_servers.served) == set(two_servers.bases)  # each server answered some requests

    with RedisStore(redis_url, prefix=redis_prefix) as store:
        session = store.get(call.sid)
        # The message was stored by the server that got the recording callback, with the variables
        # that the other one set.
        [(_, message)] = store.scan("message:")
    assert session["counts"] == {"main/menu": {"no_input": 2}}
    assert session["vars"] == {"message_seconds": 7}
    assert session["status"] == "completed"
    assert message["call_sid"] == call.sid
    assert message["vars"] == {"message_seconds": 7}


def test_the_third_silence_counts_across_servers_and_ends_the_call(two_servers, servers):
    """main's menu allows three silences: counted on A, B and A, the third one says goodbye."""
    phone = Phone(two_servers, PUBLIC, auth_token=TOKEN)
    call = phone.dial("main")
    call.wait()
    call.wait()
    assert call.heard[0] == "Sorry, I didn't hear anything.", servers.logs()
    call.wait()
    assert call.heard == ["Thanks for calling Acme. Goodbye."]
    assert call.end_reason == "hangup"
    assert two_servers.served[1:4] == [two_servers.bases[1], two_servers.bases[0], two_servers.bases[1]]


def test_with_redis_down_a_webhook_answers_the_error_state_within_a_second(servers):
    """The app starts while Redis is away (no Redis needed here); its webhooks answer main's apology."""
    base = servers.start(IVR_STORE=f"redis://{HOST}:{free_port()}/{DB}")
    phone = Phone(RoundRobin(base), PUBLIC, auth_token=TOKEN, status_callback=None)
    started = time.perf_counter()
    call = phone.dial("main")
    took = time.perf_counter() - started
    assert call.heard == [APOLOGY], servers.logs()
    assert call.end_reason == "hangup"
    assert call.error is None and call.warnings == []  # valid TwiML, by Twilio's schema when present
    assert took < 1.0, f"answered after {took:.2f} s"
    assert "Error 111 connecting to 127.0.0.1" in servers.logs()  # logged with what failed
