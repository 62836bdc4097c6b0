"""Over HTTP: gunicorn serving flows/main.yaml to N concurrent simulated calls, against the baseline.

Servers, each `gunicorn -c ivr/web/gunicorn_conf.py` (the production config) on a loopback port,
every one with the same worker settings (`--serve`; by default the config's own, which it derives
from the one core the servers are pinned to; the table's heading names the class and counts):
- ivr (`app:app`, production mode, a token) with the SQLite store;
- ivr with the Redis store (127.0.0.1:6379, database 13, a key prefix of its own, deleted after),
  when Redis answers;
- the hand-written baseline (`benchmarks.baseline:wsgi`, its app as a plain WSGI callable),
  answering the same TwiML (checked byte for byte first, each server's own address aside).
Servers run pinned to core 1 (taskset), this client to core 0.

A simulated call walks main.yaml end to end, on the real clock: in office hours the menu, 2, 1 (a
Dial), the Dial's result (4 webhooks); after hours the after-hours menu, 1 (a Record), the
recording (3 webhooks). Every webhook is a signed POST with the parameters and headers Twilio
sends (I-Twilio-Idempotency-Token included); all requests are built and signed before a run
starts, so the client only writes bytes and reads answers (asyncio streams).

Two ways to connect (`--connections`, default both):
- new: a connection per webhook, the request saying `Connection: close`;
- keepalive: each of the N client tasks (one simulated caller, walking call after call) keeps one
  HTTP/1.1 connection across its webhooks and calls, as Twilio's proxies may. Answers are read by
  their Content-Length (or chunks). When an answer says `Connection: close` (sync workers always
  do) the client opens a new connection for the next webhook; when the server has closed an idle
  connection (threaded workers do after `keepalive` seconds) it sends the webhook again on a new
  one. Both are counted: the table shows connections opened per webhook.

A webhook counts as an error when it fails to connect, takes over 15 s (Twilio's limit), answers
other than 200, or answers TwiML without the verb the walk expects; the call then ends there.

For each setting, N (concurrent calls) and connection mode there are several rounds; each round
runs every server once, in a rotating order, with the same number of calls. Calls per second is
the median over rounds; p50 and p99 are over every webhook of every round; CPU times are per
webhook: the server's (gunicorn's master and workers, from /proc), the client's (this process),
and for the Redis store redis-server's (shared with anything else using Redis: approximate). The
busiest worker's share of the workers' CPU shows how evenly the work spread, and the share of
each core (the client's, the servers') that other work took during the runs (from /proc/stat, time
stolen by the host included) shows how noisy they were.

Targets (issue 14), each a ratio to the baseline under the same settings and connection mode, at
every N, for both stores: zero errors; calls per second at least 0.95x; p99 latency at most
1.10x; server CPU per webhook at most 1.0x.

Run (the default takes about four minutes on a quiet 2-core machine, longer on a busy one):

    python -m benchmarks.http_load
    python -m benchmarks.http_load --serve gthread:2x4              # 2 gthread workers, 4 threads each
    python -m benchmarks.http_load --serve sync:3 gthread:2x4 gthread:3x8 --concurrency 10 100 \\
        --rounds 3 --calls 400                                      # settings side by side
    python -m benchmarks.http_load --connections keepalive --concurrency 100 --rounds 2 --stores sqlite
    taskset -c 1 python -m benchmarks.http_load --profile           # no HTTP: the servers' work, in this process

On a machine shared with other work, `nice -n -10 python -m benchmarks.http_load ...` (as root) gives
the client and the servers (which inherit it) their turns first; the "other work" column and the
line after the verdicts say how much noise was left.

`--profile` serves the same walks in this process as plain WSGI calls, with the access and app
logging the config sets up (written to /dev/null): time per webhook of each app, interleaved,
then cProfile of ivr's webhooks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import common

SERVER_CPU = 1
CLIENT_CPU = 0
CONCURRENCY = (10, 100, 500)
CONNECTIONS = ("new", "keepalive")
WEBHOOK_TIMEOUT = 15.0  # Twilio's
RUN_TIME_LIMIT = 120.0  # seconds a run may take before its remaining calls are abandoned
START_TIMEOUT = 30.0
REDIS_URL = "redis://127.0.0.1:6379/13"
THROUGHPUT_TARGET = 0.95  # at least, x the baseline's calls per second
P99_TARGET = 1.10  # at most, x the baseline's p99
CPU_TARGET = 1.0  # at most, x the baseline's server CPU per webhook
NOISE = 0.05  # other work's share of the servers' core above which a run is called noisy
# The functions worth naming in a profile of a webhook: ivr's own and its main calls into libraries.
PROFILE_FOCUS = (
    r"^ivr/|flask/app.py:\d+\((wsgi_app|full_dispatch_request|preprocess_request|dispatch_request)\)|"
    r"_load_form_data|request_validator.py:\d+\((validate|compute_signature)\)|sqlite3|json/__init__|"
    r"transitions/core.py:\d+\(trigger\)|logging/__init__.py:\d+\((_log|handle|emit)\)|to_xml|jinja2/environment.py:\d+\(render\)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_ticks(pid: int) -> dict[int, int]:
    """User + system clock ticks of `pid` and of each of its children (gunicorn's workers), by pid."""
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(entry)
        if fields is not None and (int(entry) == pid or int(fields[1]) == pid):
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
    return ticks


def core_ticks(core: int) -> tuple[int, int]:
    """(busy, all) clock ticks of one core since boot, from /proc/stat; busy counts time stolen by the host."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                ticks = [int(x) for x in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
                return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    return 0, 0


def redis_server_pid() -> int | None:
    """redis-server's pid, to read its CPU time (it serves whoever else uses Redis too)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() == "redis-server":
                    return int(entry)
    return None


@dataclass(frozen=True)
class Setting:
    """gunicorn's worker settings, the same for every server: `config` (the config file's own), `sync:3`,
    `gthread:2x4` (2 workers of 4 threads)."""

    spec: str
    worker_class: str | None = None
    workers: int | None = None
    threads: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Setting:
        if spec == "config":
            return cls(spec)
        match = re.fullmatch(r"(sync|gthread):(\d+)(?:x(\d+))?", spec)
        if not match or (match[1] == "sync" and match[3] not in (None, "1")):
            raise argparse.ArgumentTypeError(
                f"{spec!r}: expected config, sync:WORKERS or gthread:WORKERSxTHREADS, e.g. sync:3 or gthread:2x4"
            )
        return cls(spec, match[1], int(match[2]), int(match[3] or 1))

    def args(self) -> list[str]:
        if self.worker_class is None:
            return []
        # Threads always named: gunicorn turns sync workers with threads > 1 into gthread ones.
        return ["--worker-class", self.worker_class, "--workers", str(self.workers), "--threads", str(self.threads)]

    def describe(self, workers: int, worker_class: str) -> str:
        if worker_class == "gthread":
            threads = self.threads or "the config's"
            return f"{worker_class}, {workers} workers x {threads} threads ({self.spec})"
        return f"{worker_class}, {workers} workers ({self.spec})"


class Server:
    """One gunicorn, pinned to SERVER_CPU, serving `app` on a loopback port."""

    def __init__(self, name: str, app: str, env: dict, log: Path, extra_args: list[str]) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # Production signs against IVR_PUBLIC_URL: the address the walks are signed for.
        env = {**env, "IVR_PUBLIC_URL": self.base}
        self.log = log
        config = common.ROOT / "ivr" / "web" / "gunicorn_conf.py"
        command = ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "gunicorn", "-c", str(config)]
        # No control socket: three servers at once would share its one path (~/.gunicorn/gunicorn.ctl).
        command += ["--bind", f"127.0.0.1:{self.port}", "--no-control-socket", *extra_args, app]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, cwd=common.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /healthz within {START_TIMEOUT:.0f} s")

    def cpu_ticks(self) -> dict[int, int]:
        return cpu_ticks(self.process.pid)

    def workers(self) -> int:
        return sum(1 for pid in self.cpu_ticks() if pid != self.process.pid)

    def worker_class(self) -> str:
        """The class gunicorn says it uses (its log's "Using worker: ...")."""
        found = re.search(r"Using worker: (\S+)", self.log.read_text(errors="replace"))
        return found[1] if found else "unknown"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


# -- the calls ---------------------------------------------------------------------------------


def raw_request(signed: common.Signed, port: int, keep_alive: bool) -> bytes:
    """The bytes of one webhook POST, as Twilio's proxy sends it; on a connection of its own unless `keep_alive`."""
    head = [
        f"POST {signed.path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "User-Agent: TwilioProxy/1.1",
        f"Content-Type: {common.FORM}",
        f"Content-Length: {len(signed.body)}",
        *(f"{name}: {value}" for name, value in signed.headers.items()),
        *([] if keep_alive else ["Connection: close"]),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + signed.body


def build_calls(server: Server, tag: str, count: int, open_now: bool, keep_alive: bool) -> list[list[tuple]]:
    """`count` calls, each its webhooks as (request bytes, a piece the answer must hold)."""
    calls = []
    for i in range(count):
        sid = f"CA{tag}{i:0{32 - len(tag)}d}"
        walk = common.signed_walk(server.base, sid, open_now)
        calls.append([(raw_request(signed, server.port, keep_alive), expect) for signed, expect in walk])
    return calls


def walk_once(server: Server, open_now: bool) -> list[bytes]:
    """The bodies of one call's webhooks (to compare servers byte for byte)."""
    bodies = []
    for signed, _ in common.signed_walk(server.base, "CA" + "c" * 32, open_now):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WEBHOOK_TIMEOUT)
        connection.request(
            "POST", signed.path, body=signed.body, headers={**signed.headers, "Content-Type": common.FORM}
        )
        response = connection.getresponse()
        bodies.append(response.status.to_bytes(2, "big") + response.read())
        connection.close()
    return bodies


# -- the client --------------------------------------------------------------------------------


@dataclass
class Run:
    """What one run of one server at one concurrency and connection mode measured."""

    open_now: bool
    calls: int = 0
    completed: int = 0
    webhooks: int = 0
    connections: int = 0  # opened
    server_closed: int = 0  # kept-alive connections the server closed after an answer (Connection: close)
    stale: int = 0  # webhooks sent again because the server had closed the idle connection first
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    redis_cpu: float | None = None
    busiest_worker: float = 0.0  # the share of the workers' CPU time its busiest worker took
    others: tuple[float, float] = (0.0, 0.0)  # the shares of the client's and the servers' cores other work took
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 answer: (status, body, whether the server closes the connection after it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, status = status_line.split(" ", 2)[:2]
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    tokens = {token.strip() for token in headers.get("connection", "").split(",")}
    closes = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    if "chunked" in headers.get("transfer-encoding", ""):
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return int(status), bytes(body), closes
    if "content-length" in headers:
        return int(status), await reader.readexactly(int(headers["content-length"])), closes
    return int(status), await reader.read(), True  # delimited by the end of the connection


class Connection:
    """A client task's connection to the server: opened when needed, kept while both ends allow."""

    def __init__(self, port: int, keep_alive: bool, run: Run) -> None:
        self.port, self.keep_alive, self.run = port, keep_alive, run
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, data: bytes) -> tuple[int, bytes]:
        """Send one request and read its answer, reconnecting when the server closed the connection."""
        while True:
            fresh = self.writer is None
            if fresh:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.run.connections += 1
            try:
                self.writer.write(data)
                status, body, closes = await read_response(self.reader)
            except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if fresh or partial:
                    raise ConnectionError(f"closed mid-answer ({type(exc).__name__})") from None
                self.run.stale += 1  # the idle connection was closed before the request arrived: send it again
                continue
            if closes or not self.keep_alive:
                if closes and self.keep_alive:
                    self.run.server_closed += 1
                self.close()
            return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def _load(port: int, calls: list, concurrency: int, keep_alive: bool, run: Run) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_TIME_LIMIT
    pending = iter(calls)

    async def caller() -> None:
        connection = Connection(port, keep_alive, run)
        try:
            for call in pending:  # shared: each caller takes the next call
                if loop.time() > deadline:
                    run.errors["abandoned at the time limit"] += 1
                    continue
                for data, expect in call:
                    start = time.perf_counter()
                    try:
                        status, body = await asyncio.wait_for(connection.exchange(data), WEBHOOK_TIMEOUT)
                    except TimeoutError:
                        connection.close()
                        run.errors["no answer within 15 s"] += 1
                        break
                    except OSError as exc:
                        connection.close()
                        run.errors[f"connection: {type(exc).__name__}"] += 1
                        break
                    run.latencies.append(time.perf_counter() - start)
                    run.webhooks += 1
                    if status != 200:
                        run.errors[f"HTTP {status}"] += 1
                        break
                    if expect not in body:
                        run.errors["unexpected TwiML"] += 1
                        break
                else:
                    run.completed += 1
        finally:
            connection.close()

    await asyncio.gather(*(caller() for _ in range(concurrency)))


def run_load(server: Server, calls: list, concurrency: int, open_now: bool, keep_alive: bool) -> Run:
    run = Run(open_now=open_now, calls=len(calls))
    redis_pid = redis_server_pid() if "Redis" in server.name else None
    redis_before = sum(cpu_ticks(redis_pid).values()) if redis_pid else 0
    before = server.cpu_ticks()
    cores_before = [core_ticks(CLIENT_CPU), core_ticks(SERVER_CPU)]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    asyncio.run(_load(server.port, calls, concurrency, keep_alive, run))
    run.elapsed = time.perf_counter() - start
    after_usage = resource.getrusage(resource.RUSAGE_SELF)
    after = server.cpu_ticks()
    cores_after = [core_ticks(CLIENT_CPU), core_ticks(SERVER_CPU)]
    tick = os.sysconf("SC_CLK_TCK")
    run.client_cpu = (after_usage.ru_utime - usage.ru_utime) + (after_usage.ru_stime - usage.ru_stime)
    spent = {pid: ticks - before.get(pid, 0) for pid, ticks in after.items()}
    run.server_cpu = sum(spent.values()) / tick
    workers = [ticks for pid, ticks in spent.items() if pid != server.process.pid]
    run.busiest_worker = max(workers) / sum(workers) if sum(workers) else 0.0
    if redis_pid:
        run.redis_cpu = (sum(cpu_ticks(redis_pid).values()) - redis_before) / tick
    # Busy ticks of each core not spent by this run (client, server, redis-server on the core it last ran on): noise.
    ours = [run.client_cpu * tick, sum(spent.values())]
    if redis_pid and (fields := _stat(redis_pid)) and int(fields[36]) in (CLIENT_CPU, SERVER_CPU):
        ours[(CLIENT_CPU, SERVER_CPU).index(int(fields[36]))] += run.redis_cpu * tick
    shares = []
    for (busy, total), (busy_before, total_before), own in zip(cores_after, cores_before, ours, strict=True):
        shares.append(max(0.0, (busy - busy_before - own) / (total - total_before)) if total > total_before else 0.0)
    run.others = (shares[0], shares[1])
    return run


# -- the benchmark -----------------------------------------------------------------------------


def server_env(**settings: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    for key in ("PORT", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"):
        env.pop(key, None)
    env.update(TWILIO_AUTH_TOKEN=common.TOKEN, TWILIO_ACCOUNT_SID=common.ACCOUNT, **settings)
    return env


def redis_answers() -> str | None:
    """None when Redis answers on 127.0.0.1:6379, else why not."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def delete_redis_keys(prefix: str) -> int:
    """Delete this benchmark's keys (its own prefix) and nothing else."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    names = list(client.scan_iter(match=prefix + "*", count=1000))
    for i in range(0, len(names), 1000):
        client.delete(*names[i : i + 1000])
    return len(names)


JOURNALED = "ivr (SQLite, journal)"


def start_servers(
    tmp: Path, extra_args: list[str], stores: list[str], prefix: str, journal: str = "off"
) -> list[Server]:
    """ivr with each store asked for (with the call journal off, on, or both side by side: `journal`), then the
    baseline; Redis's prefix is `prefix`."""
    flows = common.copy_example_flows(tmp / "flows")
    base = {"IVR_ENV": "production", "IVR_FLOWS_DIR": str(flows), "IVR_HOT_RELOAD": "0",
            "IVR_SPOOL_DIR": str(tmp / "spool"), "IVR_EVENTS": "off"}  # fmt: skip
    servers = []
    try:
        if "sqlite" in stores and journal in ("off", "both"):
            env = server_env(**base, IVR_STORE=f"sqlite:///{tmp}/sessions.sqlite3")
            servers.append(Server("ivr (SQLite)", "app:app", env, tmp / "ivr-sqlite.log", extra_args))
        if "sqlite" in stores and journal in ("on", "both"):
            env = server_env(
                **{**base, "IVR_EVENTS": f"sqlite:///{journal_path(tmp)}"},
                IVR_ANALYTICS_KEY=common.ANALYTICS_KEY,
                IVR_STORE=f"sqlite:///{tmp}/sessions-j.sqlite3",
            )
            servers.append(Server(JOURNALED, "app:app", env, tmp / "ivr-journal.log", extra_args))  # fmt: skip
        if "redis" in stores:
            env = server_env(**base, IVR_STORE=REDIS_URL, IVR_REDIS_PREFIX=prefix)
            servers.append(Server("ivr (Redis)", "app:app", env, tmp / "ivr-redis.log", extra_args))
        servers.append(Server("baseline", "benchmarks.baseline:wsgi", server_env(), tmp / "baseline.log", extra_args))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def journal_path(tmp: Path) -> Path:
    return tmp / "events.sqlite3"


def journal_rows(tmp: Path) -> int:
    """Event rows the journaled server's writers have written so far."""
    import sqlite3

    path = journal_path(tmp)
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:  # not made yet
            return 0


def check_same_twiml(servers: list[Server]) -> None:
    open_now = common.office_open()
    # Each server writes its own address (IVR_PUBLIC_URL) into its URLs: the rest must be the same bytes.
    answers = {
        server.name: [body.replace(server.base.encode(), b"{base}") for body in walk_once(server, open_now)]
        for server in servers
    }
    expected = answers["baseline"]
    for name, bodies in answers.items():
        if bodies != expected:
            raise AssertionError(f"{name} answers differently from the baseline:\n{bodies}\n{expected}")


def summarize(runs: list[Run]) -> dict:
    latencies = [x for run in runs for x in run.latencies]
    webhooks = sum(run.webhooks for run in runs) or 1
    errors = Counter()
    for run in runs:
        errors.update(run.errors)
    redis = [run.redis_cpu for run in runs if run.redis_cpu is not None]
    return {
        "calls/s": common.median([run.completed / run.elapsed for run in runs]),
        "rounds": [run.completed / run.elapsed for run in runs],
        "p50": common.percentile(latencies, 0.50),
        "p99": common.percentile(latencies, 0.99),
        "errors": errors,
        "client": sum(run.client_cpu for run in runs) / webhooks,
        "server": sum(run.server_cpu for run in runs) / webhooks,
        "redis": sum(redis) / webhooks if redis else None,
        "busiest": common.median([run.busiest_worker for run in runs]),
        "others": tuple(max(run.others[i] for run in runs) for i in (0, 1)),
        "connections": sum(run.connections for run in runs) / webhooks,
        "server_closed": sum(run.server_closed for run in runs),
        "stale": sum(run.stale for run in runs),
        "walks": {run.open_now for run in runs},
        "webhooks": webhooks,
        "completed": sum(run.completed for run in runs),
        "calls": sum(run.calls for run in runs),
    }


def measure_setting(setting: Setting, args, tmp: Path, prefix: str) -> tuple[dict, list[str], str]:
    """Start the servers with `setting`, run every N and connection mode; (results, server names, description)."""
    extra = setting.args() + args.gunicorn_args.split()
    servers = start_servers(tmp, extra, args.stores, prefix, args.journal)
    results: dict[tuple[int, str, str], dict] = {}
    lags: list[str] = []  # the journal's: rows written after each run's load stopped
    try:
        check_same_twiml(servers)
        workers, worker_class = servers[0].workers(), servers[0].worker_class()
        for n in args.concurrency:
            count = max(args.calls, 2 * n)
            for mode in args.connections:
                runs: dict[str, list[Run]] = {server.name: [] for server in servers}
                for r in range(args.rounds):
                    order = servers[r % len(servers) :] + servers[: r % len(servers)]
                    for server in order:
                        open_now = common.office_open()
                        tag = f"{servers.index(server)}{mode[0]}{n:03d}{r:02d}"
                        calls = build_calls(server, tag, count, open_now, mode == "keepalive")
                        runs[server.name].append(run_load(server, calls, n, open_now, mode == "keepalive"))
                        written = journal_rows(tmp) if server.name == JOURNALED else 0
                        time.sleep(0.5)  # let the server's backlog drain
                        if server.name == JOURNALED:
                            run = runs[server.name][-1]
                            time.sleep(0.6)  # the writers' interval is 0.5 s: what they held is written by now
                            later = journal_rows(tmp)
                            lags.append(
                                f"N={n} {mode} round {r + 1}: {run.webhooks:,} webhooks in {run.elapsed:.1f} s, "
                                f"{later - written:,} rows written after the load stopped, {later:,} in all"
                            )
                for name, server_runs in runs.items():
                    results[n, mode, name] = summarize(server_runs)
        described = setting.describe(workers, worker_class)
        for server in servers:  # every server the same, as asked
            if (server.workers(), server.worker_class()) != (workers, worker_class):
                described += f"; {server.name}: {server.workers()} {server.worker_class()} workers"
    finally:
        before_stop = journal_rows(tmp)
        for server in servers:
            server.stop()
    if lags:
        print("The journal under load (SQLite, its writer's thread in each worker):\n")
        for line in lags:
            print(f"- {line}")
        log = (tmp / "ivr-journal.log").read_text(errors="replace")
        dropped = sum(int(m) for m in re.findall(r"call journal: (\d+) rows dropped", log))
        failed = log.count("call journal:") - log.count("rows dropped")
        print(
            f"- at the end: {before_stop:,} rows before the servers stopped, {journal_rows(tmp):,} after (their "
            f"exit writes what was left); {dropped} rows dropped, {failed} other journal errors logged\n"
        )
    return results, [server.name for server in servers], described


def shares(values) -> str:
    return " / ".join(f"{value:.0%}" for value in values)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def report(results: dict, names: list[str], args) -> list[tuple]:
    """The table of one setting; returns its verdicts (N, mode, name, checks, all met)."""
    rows = []
    verdicts = []
    for n in args.concurrency:
        for mode in args.connections:
            base = results[n, mode, "baseline"]
            for name in names:
                res = results[n, mode, name]
                walk = "/".join(sorted({"office hours" if w else "after hours" for w in res["walks"]}))
                errors = sum(res["errors"].values())
                error_text = str(errors)
                if errors:
                    error_text += f" ({', '.join(f'{k}: {v}' for k, v in res['errors'].items())})"
                vs = name != "baseline"
                cpu = common.us(res["server"]) + (f" ({ratio(res['server'], base['server'])})" if vs else "")
                if res["redis"] is not None:
                    cpu += f" + redis-server {common.us(res['redis'])}"
                reconnects = f"{res['connections']:.3f}"
                if mode == "keepalive" and (res["server_closed"] or res["stale"]):
                    reconnects += f" (server closed {res['server_closed']:,}, resent {res['stale']:,})"
                rows.append([
                    n, mode, name,
                    f"{res['calls/s']:,.0f}" + (f" ({ratio(res['calls/s'], base['calls/s'])})" if vs else ""),
                    ", ".join(f"{x:,.0f}" for x in res["rounds"]),
                    common.ms(res["p50"]) + (f" ({ratio(res['p50'], base['p50'])})" if vs else ""),
                    common.ms(res["p99"]) + (f" ({ratio(res['p99'], base['p99'])})" if vs else ""),
                    cpu, error_text, f"{res['completed']:,}/{res['calls']:,}", reconnects,
                    f"{res['busiest']:.0%}", shares(res["others"]), common.us(res["client"]), walk,
                ])  # fmt: skip
                if vs:
                    verdicts.append((n, mode, name, *checks(res, base, errors)))
    headers = ["N", "connections", "server", "calls/s (vs baseline)", "each round", "p50", "p99",
               "server CPU / webhook", "errors", "calls done", "connections / webhook", "busiest worker's CPU",
               f"other work on core {CLIENT_CPU} / {SERVER_CPU}", "client CPU / webhook", "walk"]  # fmt: skip
    print(common.table(headers, rows))
    print()
    for n, mode, name, text, _ in verdicts:
        print(f"- N={n}, {mode} connections, {name}: {text}.")
    print()
    noise = max(max(res["others"]) for res in results.values())
    if noise > NOISE:
        print(f"Other work took up to {noise:.0%} of a core during a run: the numbers above are noisy; repeat them on "
              "a quiet machine.\n")  # fmt: skip
    return verdicts


def checks(res: dict, base: dict, errors: int) -> tuple[str, bool]:
    """The targets' verdict line for one ivr server against the baseline, and whether all were met."""
    throughput, p99, cpu = (res[key] / base[key] if base[key] else float("nan") for key in ("calls/s", "p99", "server"))
    met = {
        f"errors {errors}": errors == 0,
        f"throughput {throughput:.2f}x (>= {THROUGHPUT_TARGET}x)": throughput >= THROUGHPUT_TARGET,
        f"p99 {p99:.2f}x (<= {P99_TARGET}x)": p99 <= P99_TARGET,
        f"server CPU {cpu:.2f}x (<= {CPU_TARGET}x)": cpu <= CPU_TARGET,
    }
    text = "; ".join(f"{check} {'met' if ok else 'MISSED'}" for check, ok in met.items())
    return text, all(met.values())


def compare_settings(all_results: list[tuple[str, dict, list[str]]], args) -> None:
    """One row per setting, connection mode and N: each server's calls/s and p99, ivr's as ratios too."""
    names = all_results[0][2]
    headers = ["setting", "connections", "N"]
    for name in names:
        headers += [f"{name} calls/s", f"{name} p99", f"{name} CPU / webhook"]
    headers.append(f"other work on core {CLIENT_CPU} / {SERVER_CPU}")
    rows = []
    for mode in args.connections:
        for n in args.concurrency:
            for described, results, _ in all_results:
                base = results[n, mode, "baseline"]
                row = [described, mode, n]
                for name in names:
                    res = results[n, mode, name]
                    vs = name != "baseline"
                    row += [
                        f"{res['calls/s']:,.0f}" + (f" ({ratio(res['calls/s'], base['calls/s'])})" if vs else ""),
                        common.ms(res["p99"]) + (f" ({ratio(res['p99'], base['p99'])})" if vs else ""),
                        common.us(res["server"]) + (f" ({ratio(res['server'], base['server'])})" if vs else ""),
                    ]
                row.append(shares([max(results[n, mode, name]["others"][i] for name in names) for i in (0, 1)]))
                rows.append(row)
    print("### The settings side by side\n")
    print(common.table(headers, rows))
    print()


def profile_in_process(rounds: int = 30, calls: int = 25) -> None:
    """The servers' work without HTTP: each app serving the walk as WSGI calls, then ivr's profile."""
    import gc
    import importlib.util
    import logging.config

    from benchmarks.per_request import time_wsgi

    os.environ["TWILIO_AUTH_TOKEN"] = common.TOKEN
    from benchmarks.baseline import app as baseline
    from ivr import create_app

    spec = importlib.util.spec_from_file_location("gunicorn_conf", common.ROOT / "ivr" / "web" / "gunicorn_conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        logging_config = conf.logconfig_dict
        for handler in logging_config["handlers"].values():
            handler["stream"] = devnull
        logging.config.dictConfig(logging_config)
        flows = common.copy_example_flows(Path(tmp) / "flows")
        apps = {
            "ivr (SQLite)": create_app(common.ivr_config(flows, f"sqlite:///{tmp}/sessions.sqlite3")),
            "ivr (memory store)": create_app(common.ivr_config(flows, "memory://", env="test")),
            "baseline": baseline,
        }
        open_now = common.office_open()
        made = 0

        def environs(count: int) -> list[dict]:
            nonlocal made
            out = []
            for _ in range(count):
                made += 1
                walk = common.signed_walk("http://localhost", f"CA{made:032d}", open_now)
                out += [signed.environ() for signed, _ in walk]
            return out

        for app in apps.values():
            time_wsgi(app, environs(10))
        times: dict[str, list[float]] = {name: [] for name in apps}
        names = list(apps)
        for r in range(rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                batch = environs(calls)
                gc.collect()
                times[name].append(time_wsgi(apps[name], batch))
        base = common.median(times["baseline"])
        walk = "office hours" if open_now else "after hours"
        print(f"### In this process: time per webhook of the {walk} walk (median of {rounds} batches)\n")
        rows = [[name, common.us(common.median(t)), f"{common.median(t) / base:.2f}x"] for name, t in times.items()]
        print(common.table(["app", "time per webhook", "vs baseline"], rows))
        print()
        batch = environs(200)
        print("### Profile: ivr (SQLite), 200 calls of the walk as WSGI calls, by own time\n")
        print(common.profile_table(lambda: time_wsgi(apps["ivr (SQLite)"], batch), top=20))
        print()
        batch = environs(200)
        print("### The same, by cumulative time: ivr's functions and its main calls into libraries\n")
        print(common.profile_table(lambda: time_wsgi(apps["ivr (SQLite)"], batch), top=45, sort="cumulative",
                                   only=PROFILE_FOCUS))  # fmt: skip
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"Targets, against the baseline under the same settings: zero errors, calls/s >= {THROUGHPUT_TARGET}x, "
        f"p99 <= {P99_TARGET}x, server CPU per webhook <= {CPU_TARGET}x. The default run takes about four minutes on a "
        "quiet 2-core machine.",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY), help="values of N")
    parser.add_argument(
        "--connections",
        choices=[*CONNECTIONS, "both"],
        default="both",
        help="new: a connection per webhook; keepalive: each client task keeps one HTTP/1.1 connection across its "
        "webhooks and calls, reconnecting (counted) when the server closes it; both (default)",
    )
    parser.add_argument(
        "--serve",
        type=Setting.parse,
        nargs="+",
        default=[Setting("config")],
        metavar="SETTING",
        help="gunicorn worker settings, the same for every server: config (ivr/web/gunicorn_conf.py's own; the "
        "default), sync:WORKERS, or gthread:WORKERSxTHREADS; several run one after another and are compared, "
        "e.g. --serve sync:3 gthread:2x4 gthread:3x8",
    )
    parser.add_argument(
        "--stores", nargs="+", choices=["sqlite", "redis"], default=["sqlite", "redis"], help="ivr's stores to serve"
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds per N and connection mode (default 4)")
    parser.add_argument("--calls", type=int, default=500, help="calls per run, at least 2N (default 500)")
    parser.add_argument("--gunicorn-args", default="", help='more gunicorn options for every server: "--keep-alive 2"')
    parser.add_argument(
        "--journal",
        choices=["off", "on", "both"],
        default="off",
        help="ivr (SQLite)'s call journal (IVR_EVENTS, SQLite): off (default, as issue 14 measured), on, or both side "
        "by side; with it on, how far its writer fell behind",
    )
    parser.add_argument("--profile", action="store_true", help="no HTTP: time and profile the apps in this process")
    args = parser.parse_args(argv)
    args.connections = list(CONNECTIONS) if args.connections == "both" else [args.connections]
    common.clean_environ()
    if args.profile:
        common.print_header("The servers' work on main.yaml's walk, in one process")
        profile_in_process()
        return 0
    os.sched_setaffinity(0, {CLIENT_CPU})
    common.print_header("Over HTTP: gunicorn serving main.yaml to N concurrent calls")
    why_not = redis_answers() if "redis" in args.stores else None
    if why_not is not None:
        args.stores.remove("redis")
        print(f"Redis store: skipped, Redis does not answer at {REDIS_URL} ({why_not}).\n")
    prefix = f"ivr-bench-{os.getpid()}:"
    all_results = []
    met_everywhere = True
    try:
        for setting in args.serve:
            with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
                results, names, described = measure_setting(setting, args, Path(tmp), prefix)
            all_results.append((described, results, names))
            print(f"### {described}\n")
            print(f"Every server: gunicorn {described}, pinned to core {SERVER_CPU}; client on core {CLIENT_CPU}. "
                  f"{args.rounds} rounds per N and connection mode, {args.calls:,} calls per run (at least 2N). "
                  "ivr's cells give their ratio to the baseline's in brackets.\n")  # fmt: skip
            verdicts = report(results, names, args)
            met_everywhere &= all(verdict[-1] for verdict in verdicts)
    finally:
        if "redis" in args.stores:
            deleted = delete_redis_keys(prefix)
            print(f"Redis store: database 13, prefix {prefix!r}; {deleted} keys deleted after the runs.\n")
    if len(all_results) > 1:
        compare_settings(all_results, args)
    print(f"Every target met under every setting: {'yes' if met_everywhere else 'no'}.\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
