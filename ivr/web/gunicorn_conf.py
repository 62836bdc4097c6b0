"""Production serving: `gunicorn -c ivr/web/gunicorn_conf.py app:app` (or `-c python:ivr.web.gunicorn_conf`).

Twilio waits 15 s for a webhook's TwiML, then plays its application error: a stuck worker is
killed well before that. Flows load once, in the master, before the workers fork. Every access
line carries the call's CallSid (DESIGN principle 7: log lines name the call), and the app's own
`ivr` log lines are kept at INFO.

Settings here are defaults: `GUNICORN_CMD_ARGS` and the command line override any of them, say
`GUNICORN_CMD_ARGS="--workers 4 --threads 8"`. `WEB_CONCURRENCY` sets the workers, as on most hosts.

/metrics counts across the workers through prometheus_client's multiprocess mode: this file gives the
master a fresh PROMETHEUS_MULTIPROC_DIR before the app (and prometheus_client) is imported.
"""

from __future__ import annotations

import gc
import glob
import io
import os
import re
import resource
import shutil
import tempfile
import time

from gunicorn.glogging import Logger, SafeAtoms

_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_MADE_BY = "IVR_METRICS_DIR_OF"  # the master that prepared the directory: a config reload (HUP) keeps its counts


def prepare_metrics_dir(environ=os.environ) -> str:
    """A fresh directory for the workers' metric files, set as PROMETHEUS_MULTIPROC_DIR: the one named, emptied of
    an earlier run's files, else a new temporary one. Must run before prometheus_client is imported."""
    directory = environ.get(_METRICS_DIR)
    if directory and environ.get(_MADE_BY) == str(os.getpid()):
        return directory
    if directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):  # a dead run's counts would be summed in
            os.remove(stale)
    else:
        directory = tempfile.mkdtemp(prefix="ivr-metrics-")
        environ["IVR_METRICS_DIR_MADE"] = directory  # ours to remove on exit
    environ[_METRICS_DIR], environ[_MADE_BY] = directory, str(os.getpid())
    return directory


prepare_metrics_dir()

# After the metrics directory: importing ivr imports prometheus_client, which picks its mode once.
from ivr.settings import log_format  # noqa: E402
from ivr.web.deadline import ANSWER_BY  # noqa: E402
from ivr.web.logs import JsonFormatter, json_line  # noqa: E402


def cpu_count() -> int:
    """The CPUs this process may run on (taskset and cgroup cpusets respected), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_bind(environ=os.environ) -> str:
    """$PORT on every interface where a platform sets it (Heroku, Render, Cloud Run), else loopback:8000."""
    port = environ.get("PORT")
    return f"0.0.0.0:{port}" if port else "127.0.0.1:8000"


# A CallSid as Twilio writes it (CA + 32 hex digits), a whole form field: no decoding needed.
_CALL_SID = re.compile(rb"(?:^|&)CallSid=([A-Za-z0-9]{1,64})(?=&|$)")
# Twilio's webhooks are a few hundred bytes; bigger bodies are passed on untouched.
MAX_NOTED_BODY = 64 * 1024


def call_sid(environ: dict) -> str:
    """The CallSid the access line names: noted from the body by `note_call_sid`, else the query's, else "-"."""
    sid = environ.get("ivr.call_sid")
    if sid:
        return sid
    match = _CALL_SID.search(environ.get("QUERY_STRING", "").encode("latin-1"))
    return match.group(1).decode("ascii") if match else "-"


def note_call_sid(app):
    """WSGI middleware: read a small form body once, note its CallSid in the environ, pass the same bytes on.

    gunicorn logs after the app has consumed the body (and Flask has dropped its parsed form), so the
    CallSid of a POSTed webhook is noted on the way in.
    """

    def middleware(environ, start_response):
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if 0 < length <= MAX_NOTED_BODY:
                body = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(body)
                match = _CALL_SID.search(body)
                if match:
                    environ["ivr.call_sid"] = match.group(1).decode("ascii")
        return app(environ, start_response)

    return middleware


# IVR_LOG_FORMAT=json: every line, access lines included, is one JSON object (ivr/web/logs.py).
_JSON_LOGS = log_format(os.environ.get("IVR_LOG_FORMAT")) == "json"


class _Atoms(SafeAtoms):
    """gunicorn's atoms, quotes escaped for its text lines, except the JSON line's, which is already escaped."""

    def __init__(self, atoms: dict) -> None:
        super().__init__(atoms)
        if "json" in atoms:
            dict.__setitem__(self, "json", atoms["json"])


class CallSidLogger(Logger):
    """gunicorn's logger with more access-log atoms: `%(call_sid)s`, and `%(json)s` when the logs are JSON."""

    atoms_wrapper_class = _Atoms

    def atoms(self, resp, req, environ, request_time):
        """gunicorn's atoms plus the request's CallSid (and the whole line as JSON)."""
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["call_sid"] = call_sid(environ)
        if _JSON_LOGS:
            atoms["json"] = _access_json(atoms, request_time.total_seconds())
        return atoms


def _access_json(atoms: dict, seconds: float) -> str:
    # The path without its query, as the text line: a GET webhook's query is the caller's input.
    status = int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"]
    fields = {"method": atoms["m"], "path": atoms["U"], "status": status, "duration": seconds,
              "bytes": atoms["B"], "remote": atoms["h"], "CallSid": atoms["call_sid"], "pid": os.getpid()}  # fmt: skip
    return json_line(time.time(), "INFO", "gunicorn.access", f"{atoms['m']} {atoms['U']} {atoms['s']}", fields)


def threads_for(configured: int, sockets: int) -> int:
    """A worker's threads: the config's own (WEBHOOK_THREADS) gets one more per conversation it may hold; threads
    named on the command line or in GUNICORN_CMD_ARGS are kept as given."""
    if configured != WEBHOOK_THREADS or sockets <= 0:
        return configured
    return WEBHOOK_THREADS + sockets


def size_threads(server) -> None:
    """With an agent state loaded, each worker gets a thread per conversation (IVR_AGENT_SOCKETS) on top of its
    webhooks' threads: a conversation holds its thread for minutes, and webhooks queued behind it would miss
    Twilio's 15 s. Threads given explicitly are kept, with a warning when they leave webhooks none; and a warning
    when the open-files limit is below what a worker's conversations take."""
    app = getattr(getattr(server, "app", None), "callable", None)  # the app, loaded before the fork (preload_app)
    if app is None:
        return
    from ivr.web.relay import sockets_wanted

    sockets = sockets_wanted(app)
    if not sockets:
        return
    threads = threads_for(server.cfg.threads, sockets)
    if threads != server.cfg.threads:
        server.cfg.set("threads", threads)
        server.log.info("agent states: %d threads per worker (%d for webhooks + IVR_AGENT_SOCKETS=%d)", threads,
                        WEBHOOK_THREADS, sockets)  # fmt: skip
    elif threads <= sockets:
        server.log.warning("agent states: --threads %d with IVR_AGENT_SOCKETS=%d leaves webhooks no thread while a "
                           "worker holds its conversations; give --threads %d or more", threads, sockets,
                           sockets + WEBHOOK_THREADS)  # fmt: skip
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    wanted = FILES_PER_CONVERSATION * sockets + FILES_PER_WORKER
    if files != resource.RLIM_INFINITY and files < wanted:
        server.log.warning("agent states: a worker holding IVR_AGENT_SOCKETS=%d conversations needs about %d open "
                           "files, but the limit is %d (ulimit -n); raise it, or lower IVR_AGENT_SOCKETS",
                           sockets, wanted, files)  # fmt: skip


def when_ready(server) -> None:
    """Before the workers fork: threads sized for agent states, and the loaded flows leave the cyclic collector's
    sight for good.

    Flows live as long as the process; a collection that walked them (0.6 s for a 10,000-state
    flow) would stall a webhook, and would copy into every worker the pages it touched.
    """
    size_threads(server)
    gc.collect()
    gc.freeze()


def post_worker_init(worker) -> None:
    """Each worker starts its background thread (after the fork), then serves the app behind `note_call_sid`."""
    from ivr.web.drain import start_background  # here: the config file is read before any app exists

    start_background(worker.wsgi)  # drains what an earlier process left, then each callback's entry
    worker.wsgi = note_call_sid(worker.wsgi)


def child_exit(server, worker) -> None:
    """A worker is gone: its calls-in-progress stop counting (its counters stay, summed in)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """The master stops: a metrics directory this file made for it goes too."""
    made = os.environ.get("IVR_METRICS_DIR_MADE")
    if made and made == os.environ.get(_METRICS_DIR):
        shutil.rmtree(made, ignore_errors=True)


# -- processes ----------------------------------------------------------------------------------

bind = default_bind()
# Threaded workers (gthread), the one worker class the product runs on: a worker holds a kept-alive
# connection without tying up a process, hooks waiting on slow systems overlap, the agent step's
# WebSockets will each hold a thread, and SQLite works (gevent would stall a whole worker in sqlite3).
# One worker per CPU the process may use (at least 2, so one can restart while the other serves), 4
# threads each: under the GIL more workers than cores only add switching (benchmarks/http_load.py
# compared sync:3, gthread:2x2, 3x2, 2x4 and 2x8 on 2 cores; docs/performance.md). When a flow has an
# agent state, `when_ready` adds a thread per conversation a worker may hold (IVR_AGENT_SOCKETS).
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, cpu_count()))
worker_class = "gthread"
WEBHOOK_THREADS = 4
threads = WEBHOOK_THREADS
# Measured by benchmarks/agents.py (docs/performance.md): a conversation holds about 3.3 file descriptors in its
# worker (the socket, its reader's selector, the model's connection); a worker about 60 of its own.
FILES_PER_CONVERSATION, FILES_PER_WORKER = 4, 100
# Flows are read, validated and built into machines once, before the fork; workers share them.
preload_app = True

# -- time ---------------------------------------------------------------------------------------

# Twilio gives up on a webhook after 15 s; the app answers every webhook by ANSWER_BY (12 s) on its
# own (ivr/web/deadline.py): under threads, gunicorn's `timeout` bounds no request, only a worker's
# main loop. A worker whose loop is stuck a second past that is killed and replaced, and Twilio,
# seeing the connection drop, plays the number's Fallback URL before its own 15 s are up.
timeout = int(ANSWER_BY) + 1
# On a restart (deploy, HUP), requests in flight get this long to answer before workers are killed.
graceful_timeout = 10
# Seconds an idle kept-alive connection stays open: Twilio may send a call's next webhook on it
# (whether it does is not documented); a proxy in front keeps its own.
keepalive = 5

# -- logs ---------------------------------------------------------------------------------------

logger_class = CallSidLogger
accesslog = "-"
errorlog = "-"
# No query string (%(q)s, %(r)s): a GET webhook's query holds the caller's input and numbers.
access_log_format = (
    "%(json)s"
    if _JSON_LOGS
    else "access remote=%(h)s method=%(m)s path=%(U)s status=%(s)s bytes=%(B)s ms=%(M)s CallSid=%(call_sid)s"
)
# The app's lines (`CallSid=... flow=... menu -> sales`) at INFO on stderr, beside gunicorn's own;
# access lines on stdout. Each line names its worker's pid. With IVR_LOG_FORMAT=json, gunicorn's own
# lines and the app's are JsonFormatter's objects, and an access line is its JSON atom alone.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        "ivr": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    },
    "formatters": {
        "app": {"()": JsonFormatter}
        if _JSON_LOGS
        else {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"},
        "access": {"format": "%(message)s" if _JSON_LOGS else "%(asctime)s [%(process)d] %(message)s"},
    },
}
