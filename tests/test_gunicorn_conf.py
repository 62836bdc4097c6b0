"""The production gunicorn config: loaded the way gunicorn loads it, it says what production needs.

No server is started: gunicorn reads the file into its Config, and its logger formats an access line.
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import json
import logging
import logging.config
import os
import types
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, request
from gunicorn.app.base import Application
from gunicorn.config import Config
from werkzeug.test import EnvironBuilder

from ivr.errors import ConfigError
from ivr.web.deadline import ANSWER_BY, TWILIO_WAITS

CONF = Path(__file__).resolve().parent.parent / "ivr" / "web" / "gunicorn_conf.py"
SID = "CA" + "5" * 32


class ConfigOnly(Application):
    """gunicorn's own application loader, reading only the config file (no argv, no app)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__()

    def load_config(self) -> None:
        self.load_config_from_file(str(self.path))

    def load(self):  # pragma: no cover - never served
        raise AssertionError("the config test must not load an app")


@pytest.fixture(autouse=True)
def metrics_dir(monkeypatch, tmp_path) -> Path:
    """Loading the file prepares a metrics directory: here one of the test's own, never the suite's environment."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    monkeypatch.setenv("IVR_METRICS_DIR_OF", str(os.getpid()))  # as if this process's master had prepared it
    monkeypatch.delenv("IVR_METRICS_DIR_MADE", raising=False)
    return directory


def load_module(monkeypatch, *, cpus: int = 2, env: dict | None = None) -> types.ModuleType:
    """Execute the config file as gunicorn does, with `cpus` CPUs available and `env` set."""
    for key in ("PORT", "WEB_CONCURRENCY", "IVR_LOG_FORMAT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cfg(monkeypatch) -> Config:
    for key in ("PORT", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "IVR_LOG_FORMAT"):
        monkeypatch.delenv(key, raising=False)
    return ConfigOnly(CONF).cfg


@pytest.fixture
def json_cfg(cfg, monkeypatch) -> Config:
    """The config as gunicorn reads it with IVR_LOG_FORMAT=json."""
    monkeypatch.setenv("IVR_LOG_FORMAT", "json")
    return ConfigOnly(CONF).cfg


def test_every_setting_in_the_file_is_one_gunicorn_knows(monkeypatch):
    """gunicorn silently ignores unknown names: a misspelt setting would never take effect."""
    module = load_module(monkeypatch)
    names = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not inspect.isclass(value)
        and not inspect.isfunction(value)
        and not name.isupper()  # the file's own constants
        and name != "annotations"
    }
    assert names - set(Config().settings) == set()
    assert {"bind", "workers", "timeout", "graceful_timeout", "preload_app", "access_log_format"} <= names


def test_gunicorn_reads_timeouts_under_twilios_15_seconds_and_preloads_the_flows(cfg):
    assert ANSWER_BY < cfg.timeout < TWILIO_WAITS  # the app answers first; a stuck worker dies before Twilio gives up
    assert 0 < cfg.graceful_timeout <= 10
    assert cfg.preload_app is True
    assert cfg.worker_class_str == "gthread" and cfg.threads == 4  # the one worker class the product runs on


def test_the_loaded_flows_are_frozen_out_of_the_collector_before_workers_fork(cfg):
    try:
        cfg.when_ready(types.SimpleNamespace())
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 2), (8, 8)])
def test_workers_follow_the_cpus_the_process_may_use(monkeypatch, cpus, workers):
    assert load_module(monkeypatch, cpus=cpus).workers == workers


def test_web_concurrency_sets_the_workers(monkeypatch):
    assert load_module(monkeypatch, cpus=8, env={"WEB_CONCURRENCY": "2"}).workers == 2


def test_bind_is_loopback_8000_unless_the_platform_sets_port(monkeypatch):
    assert load_module(monkeypatch).bind == "127.0.0.1:8000"
    assert load_module(monkeypatch, env={"PORT": "5050"}).bind == "0.0.0.0:5050"


def _access_line(cfg: Config, environ: dict) -> str:
    """The access line gunicorn's configured logger writes for a 200 answer to `environ`."""
    logger = cfg.logger_class.__new__(cfg.logger_class)  # no setup(): it would reconfigure logging
    response = types.SimpleNamespace(status="200 OK", headers=[], sent=321)
    atoms = logger.atoms(response, [], environ, timedelta(milliseconds=7))
    return cfg.access_log_format % logger.atoms_wrapper_class(atoms)


def _serve(cfg: Config, path: str, data: dict | None = None) -> tuple[dict, dict]:
    """One request through a worker's app as the config sets it up: the environ, and the form the app read."""
    app = Flask("conf-test")
    seen = {}

    @app.route("/voice/<flow>", methods=["GET", "POST"])
    def voice(flow):
        seen.update(request.form.to_dict() or request.args.to_dict())
        return "<Response/>"

    worker = types.SimpleNamespace(wsgi=app.wsgi_app)
    cfg.post_worker_init(worker)
    environ = EnvironBuilder(path=path, method="POST" if data else "GET", data=data).get_environ()
    environ["RAW_URI"] = path
    body = b"".join(worker.wsgi(environ, lambda status, headers, exc_info=None: None))
    assert body == b"<Response/>"
    return environ, seen


def test_an_access_line_names_the_callsid_of_a_posted_webhook(cfg):
    environ, seen = _serve(cfg, "/voice/main", {"CallSid": SID, "Digits": "1", "From": "+15551230000"})
    assert seen == {"CallSid": SID, "Digits": "1", "From": "+15551230000"}  # the app still gets every field
    line = _access_line(cfg, environ)
    assert f"CallSid={SID}" in line
    assert "status=200" in line and "path=/voice/main" in line and "ms=7" in line


def test_an_access_line_names_the_callsid_of_a_get_webhook(cfg):
    environ, _ = _serve(cfg, f"/voice/main?From=%2B1555&CallSid={SID}")
    assert f"CallSid={SID}" in _access_line(cfg, environ)


def test_an_access_line_never_writes_the_query_of_a_get_webhook(cfg):
    """A GET webhook's query is the caller's input and numbers: the path and the CallSid are enough."""
    query = f"CallSid={SID}&From=%2B15551230000&Digits=4929&SpeechResult=my+pin+is+4929"
    environ, _ = _serve(cfg, f"/voice/main?{query}")
    line = _access_line(cfg, environ)
    assert "path=/voice/main " in line and line.endswith(f"CallSid={SID}")
    for secret in ("4929", "15551230000", "Digits", "SpeechResult", "pin"):
        assert secret not in line


@pytest.mark.parametrize("data", [None, {"Digits": "1"}, {"NotCallSid": SID}])
def test_an_access_line_without_a_callsid_says_so_with_a_dash(cfg, data):
    environ, _ = _serve(cfg, "/voice/main", data)
    assert _access_line(cfg, environ).endswith("CallSid=-")


@pytest.fixture
def restored_logging():
    """Put back what applying the config's logging changes."""
    names = ("", "gunicorn.error", "gunicorn.access", "ivr")
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in map(logging.getLogger, names)]
    yield
    for lg, handlers, level, propagate, disabled in saved:
        lg.handlers[:] = handlers
        lg.level, lg.propagate, lg.disabled = level, propagate, disabled


def test_the_apps_own_lines_are_logged_at_info_with_their_pid(cfg, restored_logging, capsys):
    logging.config.dictConfig(cfg.logconfig_dict)
    logging.getLogger("ivr.web").info("CallSid=%s flow=main menu -> sales", SID)
    logging.getLogger("ivr.web").debug("not in production")
    err = capsys.readouterr().err
    assert f"INFO ivr.web: CallSid={SID} flow=main menu -> sales" in err
    assert "not in production" not in err


# -- IVR_LOG_FORMAT=json ------------------------------------------------------------------------


def test_a_json_access_line_is_one_object_without_the_query(json_cfg):
    query = f"CallSid={SID}&From=%2B15551230000&Digits=4929&SpeechResult=my+pin+is+4929"
    environ, _ = _serve(json_cfg, f"/voice/main?{query}")
    line = _access_line(json_cfg, environ)
    fields = json.loads(line)
    assert {k: fields[k] for k in ("logger", "level", "method", "path", "status", "duration", "bytes", "CallSid")} == {
        "logger": "gunicorn.access", "level": "INFO", "method": "GET", "path": "/voice/main", "status": 200,
        "duration": 0.007, "bytes": 321, "CallSid": SID,
    }  # fmt: skip
    assert fields["time"].endswith("Z")
    for secret in ("4929", "15551230000", "Digits", "SpeechResult", "pin"):
        assert secret not in line


def test_a_json_access_line_names_a_posted_callsid_and_leaves_out_an_unknown_one(json_cfg):
    environ, _ = _serve(json_cfg, "/voice/main", {"CallSid": SID, "Digits": "1"})
    assert json.loads(_access_line(json_cfg, environ))["CallSid"] == SID
    environ, _ = _serve(json_cfg, "/voice/main", {"Digits": "1"})
    assert "CallSid" not in json.loads(_access_line(json_cfg, environ))


def test_with_json_logs_gunicorns_and_the_apps_lines_are_json_objects(json_cfg, restored_logging, capsys):
    logging.config.dictConfig(json_cfg.logconfig_dict)
    logging.getLogger("ivr.web").info("CallSid=%s flow=main menu -> sales", SID, extra={"next_state": "sales"})
    logging.getLogger("gunicorn.error").info("Booting worker")
    first, second = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (first["logger"], first["level"], first["next_state"]) == ("ivr.web", "INFO", "sales")
    assert (second["logger"], second["message"]) == ("gunicorn.error", "Booting worker")


def test_an_unknown_log_format_stops_gunicorn_naming_the_setting(monkeypatch):
    with pytest.raises(ConfigError, match="IVR_LOG_FORMAT='logfmt'"):
        load_module(monkeypatch, env={"IVR_LOG_FORMAT": "logfmt"})


def test_a_new_master_gets_a_metrics_directory_emptied_of_an_earlier_runs_files(monkeypatch, metrics_dir):
    """A dead run's counters would be summed into the new one's /metrics."""
    module = load_module(monkeypatch)
    (metrics_dir / "counter_123.db").write_bytes(b"old")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    assert module.prepare_metrics_dir(environ) == str(metrics_dir)
    assert list(metrics_dir.iterdir()) == []
    assert environ["IVR_METRICS_DIR_OF"] == str(os.getpid())


def test_a_reloaded_config_keeps_its_masters_metrics(monkeypatch, metrics_dir):
    """A HUP reads the file again in the same master: the workers' counts so far stay."""
    module = load_module(monkeypatch)
    (metrics_dir / "counter_123.db").write_bytes(b"kept")
    module.prepare_metrics_dir()
    assert (metrics_dir / "counter_123.db").read_bytes() == b"kept"


def test_without_a_metrics_directory_the_master_makes_one_and_removes_it_on_exit(monkeypatch, tmp_path):
    module = load_module(monkeypatch)
    environ: dict = {}
    made = Path(module.prepare_metrics_dir(environ))
    assert made.is_dir() and environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(made))
    monkeypatch.setenv("IVR_METRICS_DIR_MADE", environ["IVR_METRICS_DIR_MADE"])
    module.on_exit(None)
    assert not made.exists()


def test_the_config_serves_another_flask_app_too():
    """post_worker_init starts ivr's background work only for an ivr app (the benchmarks' baseline is plain Flask)."""
    from flask import Flask

    from ivr.web.drain import start_background

    start_background(Flask("not_ivr"))  # no KeyError: nothing to start


def served(app, cfg) -> types.SimpleNamespace:
    """What `when_ready` is given: gunicorn's arbiter with the preloaded app, its config and its log."""
    return types.SimpleNamespace(
        app=types.SimpleNamespace(callable=app), cfg=cfg, log=logging.getLogger("test.arbiter")
    )


@pytest.fixture
def agent_flow_app(make_app):
    """An app whose main flow has an agent state, as flows/assistant.yaml; 100 conversations per worker."""
    from agent_helpers import make_agent, with_agent

    from ivr.web.services import services

    app = make_app({"IVR_PUBLIC_URL": "https://ivr.example.com", "IVR_AGENT_SOCKETS": "100"})
    found = services(app)
    found.flows.flows["main"] = with_agent(found.flows.flows["main"], "assistant", make_agent())
    return app


def test_a_flow_with_an_agent_state_gives_each_worker_a_thread_per_conversation(cfg, monkeypatch, agent_flow_app):
    """Webhooks keep their 4 threads while a worker holds all its IVR_AGENT_SOCKETS conversations."""
    module = load_module(monkeypatch)
    try:
        module.when_ready(served(agent_flow_app, cfg))
    finally:
        gc.unfreeze()
    assert cfg.threads == 4 + 100


def test_webhook_only_flows_keep_the_configs_threads(cfg, monkeypatch, make_app):
    module = load_module(monkeypatch)
    module.size_threads(served(make_app({"IVR_AGENT_SOCKETS": "100"}), cfg))
    assert cfg.threads == 4


def test_threads_given_explicitly_are_kept_with_a_warning_when_conversations_could_take_them_all(
    cfg, monkeypatch, agent_flow_app, caplog
):
    module = load_module(monkeypatch)
    cfg.set("threads", 50)
    module.size_threads(served(agent_flow_app, cfg))
    assert cfg.threads == 50
    assert "--threads 50 with IVR_AGENT_SOCKETS=100 leaves webhooks no thread" in caplog.text
    assert "give --threads 104 or more" in caplog.text


def test_an_open_files_limit_too_low_for_the_conversations_is_warned_of(cfg, monkeypatch, agent_flow_app, caplog):
    module = load_module(monkeypatch)
    monkeypatch.setattr("resource.getrlimit", lambda which: (256, 4096))
    module.size_threads(served(agent_flow_app, cfg))
    assert "needs about 500 open files, but the limit is 256 (ulimit -n)" in caplog.text
