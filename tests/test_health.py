"""GET /healthz (liveness) and GET /readyz (can this process serve calls now?), ivr.web.health."""

from __future__ import annotations

import signal
import time

from helpers import HOST, redis_server

from ivr.errors import FlowError
from ivr.web.health import STORE_BUDGET
from ivr.web.services import services


def readyz(app) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json(), time.monotonic() - started


def test_healthz_stays_cheap_liveness(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "flows": ["accounts", "hours", "main", "pin"]}


def test_an_app_with_its_flows_store_and_spool_is_ready(make_app, production):
    status, body, _ = readyz(make_app(production))  # SQLite, a spool of its own
    assert status == 200
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "flows": True,
        "store": True,
        "spool": True,
        "journal": True,
    }


def test_an_unwritable_spool_is_not_ready_and_says_so(make_app, tmp_path):
    app = make_app()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # root may write anywhere: a file where the directory should be refuses even root
    services(app).spool.directory = blocker / "spool"
    status, body, _ = readyz(app)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["spool"]["ok"] is False
    assert "not writable" in body["checks"]["spool"]["error"]
    assert body["checks"]["store"]["ok"] is True


def test_an_edit_that_failed_to_load_is_shown_but_its_last_good_version_keeps_the_server_ready(app):
    """Every server got the bad edit: taking them all out of the load balancer would drop every call."""
    services(app).flows.problems = [FlowError("flows/main.yaml", 3, 5, "states.menu", "unknown state 'biling'")]
    status, body, _ = readyz(app)
    assert status == 200 and body["checks"]["flows"]["ok"] is True
    assert body["flow_problems"] == ["flows/main.yaml:3:5: error: states.menu: unknown state 'biling'"]


def test_no_flow_loaded_is_not_ready(app):
    services(app).flows.engines = {}
    status, body, _ = readyz(app)
    assert status == 503
    assert body["checks"]["flows"]["error"].startswith("no flow is loaded from ")


def test_with_redis_stopped_readyz_fails_within_its_budget_and_recovers_when_it_is_back(make_app, tmp_path):
    with redis_server(tmp_path) as server:
        port = server.port
        app = make_app({"IVR_STORE": f"redis://{HOST}:{port}/0"})
        assert readyz(app)[0] == 200
        server.terminate()
        server.wait(10)
        status, body, took = readyz(app)
        assert status == 503
        assert took < STORE_BUDGET + 0.5
        assert body["checks"]["store"]["ok"] is False and "PING failed" in body["checks"]["store"]["error"]
        assert "Traceback" not in str(body)
        with redis_server(tmp_path, port):
            assert readyz(app)[0] == 200


def test_with_redis_stalled_readyz_fails_within_its_budget(make_app, tmp_path):
    with redis_server(tmp_path) as server:
        app = make_app({"IVR_STORE": f"redis://{HOST}:{server.port}/0"})
        assert readyz(app)[0] == 200
        server.send_signal(signal.SIGSTOP)  # redis_server resumes it afterwards
        status, body, took = readyz(app)
        server.send_signal(signal.SIGCONT)
        assert status == 503
        assert took < STORE_BUDGET + 0.5
        assert body["checks"]["store"]["ok"] is False
