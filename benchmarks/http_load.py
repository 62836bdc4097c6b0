"""Over HTTP: gunicorn serving flows/main.yaml to N concurrent simulated calls, against the baseline.

Servers, each `gunicorn -c ivr/web/gunicorn_conf.py` (the production config: 3 sync workers on the
one core it is pinned to) on a loopback port:
- ivr (`app:app`, production mode, a token) with the SQLite store;
- ivr with the Redis store (127.0.0.1:6379, database 13, a key prefix of its own, deleted after),
  when Redis answers;
- the hand-written baseline (`benchmarks.baseline:app`), answering the same TwiML.
Servers run pinned to core 1 (taskset), this client to core 0.

A simulated call walks main.yaml end to end: in office hours the menu, 2, 1 (a Dial), the Dial's
result (4 webhooks); after hours the after-hours menu, 1 (a Record), the recording (3 webhooks).
Every webhook is a signed POST, with the parameters and headers Twilio sends, on a new
connection; all requests are built and signed before a run starts, so the client only sends
bytes and reads the answer (asyncio streams). A webhook counts as an error when it fails to
connect, takes over 15 s (Twilio's limit), answers other than 200, or answers TwiML without
the verb the walk expects; the call then ends there.

For each N (concurrent calls) there are several rounds; each round runs every server once, in a
rotating order, with the same number of calls. Calls per second is the median over rounds; p50
and p99 are over every webhook of every round; CPU times are per webhook, client (this process)
and server (master and workers, from /proc).

Run (about three minutes):

    python -m benchmarks.http_load
    python -m benchmarks.http_load --concurrency 10 100 --rounds 2 --calls 400   # shorter
    taskset -c 1 python -m benchmarks.http_load --profile   # no HTTP: the servers' work, in this process

`--profile` serves the same walks in this process as plain WSGI calls, with the access and app
logging the config sets up (written to /dev/null): time per webhook of each app, interleaved,
then cProfile of ivr's webhooks.

Targets against the baseline: zero errors; calls per second at least 0.8 of the baseline's; p99
latency within 1.5x the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
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
WEBHOOK_TIMEOUT = 15.0  # Twilio's
RUN_TIME_LIMIT = 120.0  # seconds a run may take before its remaining calls are abandoned
START_TIMEOUT = 30.0
REDIS_URL = "redis://127.0.0.1:6379/13"
THROUGHPUT_TARGET = 0.8
P99_TARGET = 1.5
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


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks of `pid` and its children (gunicorn's workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total


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

    def cpu_seconds(self) -> float:
        return cpu_ticks(self.process.pid) / os.sysconf("SC_CLK_TCK")

    def workers(self) -> int:
        return sum(1 for e in os.listdir("/proc") if e.isdigit() and _ppid(e) == self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _ppid(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return -1
    return int(text[text.rindex(")") + 2 :].split()[1])


# -- the calls ---------------------------------------------------------------------------------


def raw_request(signed: common.Signed, port: int) -> bytes:
    """The bytes of one webhook POST, as Twilio's proxy sends it, on a connection of its own."""
    head = [
        f"POST {signed.path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "User-Agent: TwilioProxy/1.1",
        f"Content-Type: {common.FORM}",
        f"Content-Length: {len(signed.body)}",
        *(f"{name}: {value}" for name, value in signed.headers.items()),
        "Connection: close",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + signed.body


def build_calls(server: Server, tag: str, count: int, open_now: bool) -> list[list[tuple[bytes, bytes]]]:
    """`count` calls, each its webhooks as (request bytes, a piece the answer must hold)."""
    calls = []
    for i in range(count):
        sid = f"CA{tag}{i:0{32 - len(tag)}d}"
        walk = common.signed_walk(server.base, sid, open_now)
        calls.append([(raw_request(signed, server.port), expect) for signed, expect in walk])
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
    """What one run of one server at one concurrency measured."""

    open_now: bool
    calls: int = 0
    completed: int = 0
    webhooks: int = 0
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await reader.read()  # to EOF: the server closes after its answer
    finally:
        writer.close()


async def _load(port: int, calls: list, concurrency: int, run: Run) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_TIME_LIMIT
    pending = iter(calls)

    async def caller() -> None:
        for call in pending:  # shared: each caller takes the next call
            if loop.time() > deadline:
                run.errors["abandoned at the time limit"] += 1
                continue
            for data, expect in call:
                start = time.perf_counter()
                try:
                    answer = await asyncio.wait_for(_exchange(port, data), WEBHOOK_TIMEOUT)
                except TimeoutError:
                    run.errors["no answer within 15 s"] += 1
                    break
                except OSError as exc:
                    run.errors[f"connection: {type(exc).__name__}"] += 1
                    break
                run.latencies.append(time.perf_counter() - start)
                run.webhooks += 1
                if not answer.startswith(b"HTTP/1.1 200"):
                    run.errors[f"HTTP {answer[9:12].decode(errors='replace')}"] += 1
                    break
                if expect not in answer:
                    run.errors["unexpected TwiML"] += 1
                    break
            else:
                run.completed += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))


def run_load(server: Server, calls: list, concurrency: int, open_now: bool) -> Run:
    run = Run(open_now=open_now, calls=len(calls))
    server_cpu = server.cpu_seconds()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    asyncio.run(_load(server.port, calls, concurrency, run))
    run.elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    run.client_cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    run.server_cpu = server.cpu_seconds() - server_cpu
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


def start_servers(tmp: Path, extra_args: list[str]) -> tuple[list[Server], str, str | None]:
    flows = common.copy_example_flows(tmp / "flows")
    prefix = f"ivr-bench-{os.getpid()}:"
    base = {"IVR_ENV": "production", "IVR_FLOWS_DIR": str(flows), "IVR_HOT_RELOAD": "0",
            "IVR_SPOOL_DIR": str(tmp / "spool")}  # fmt: skip
    servers = [
        Server(
            "ivr (SQLite)",
            "app:app",
            server_env(**base, IVR_STORE=f"sqlite:///{tmp}/sessions.sqlite3"),
            tmp / "ivr-sqlite.log",
            extra_args,
        )
    ]
    why_not = redis_answers()
    if why_not is None:
        servers.append(
            Server(
                "ivr (Redis)",
                "app:app",
                server_env(**base, IVR_STORE=REDIS_URL, IVR_REDIS_PREFIX=prefix),
                tmp / "ivr-redis.log",
                extra_args,
            )
        )
    servers.append(Server("baseline", "benchmarks.baseline:app", server_env(), tmp / "baseline.log", extra_args))
    return servers, prefix, why_not


def check_same_twiml(servers: list[Server]) -> None:
    open_now = common.office_open()
    answers = {server.name: walk_once(server, open_now) for server in servers}
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
    return {
        "calls/s": common.median([run.completed / run.elapsed for run in runs]),
        "rounds": [run.completed / run.elapsed for run in runs],
        "p50": common.percentile(latencies, 0.50),
        "p99": common.percentile(latencies, 0.99),
        "errors": errors,
        "client": sum(run.client_cpu for run in runs) / webhooks,
        "server": sum(run.server_cpu for run in runs) / webhooks,
        "walks": {run.open_now for run in runs},
        "webhooks": webhooks,
        "completed": sum(run.completed for run in runs),
        "calls": sum(run.calls for run in runs),
    }


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY), help="values of N")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per N (default 5)")
    parser.add_argument("--calls", type=int, default=600, help="calls per run, at least 2N (default 600)")
    parser.add_argument("--gunicorn-args", default="", help='more gunicorn options, e.g. "--worker-class gthread"')
    parser.add_argument("--profile", action="store_true", help="no HTTP: time and profile the apps in this process")
    args = parser.parse_args(argv)
    common.clean_environ()
    if args.profile:
        common.print_header("The servers' work on main.yaml's walk, in one process")
        profile_in_process()
        return 0
    os.sched_setaffinity(0, {CLIENT_CPU})
    common.print_header("Over HTTP: gunicorn serving main.yaml to N concurrent calls")
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        servers, prefix, why_not = start_servers(Path(tmp), args.gunicorn_args.split())
        try:
            check_same_twiml(servers)
            for n in args.concurrency:
                count = max(args.calls, 2 * n)
                runs: dict[str, list[Run]] = {server.name: [] for server in servers}
                for r in range(args.rounds):
                    order = servers[r % len(servers) :] + servers[: r % len(servers)]
                    for server in order:
                        open_now = common.office_open()
                        calls = build_calls(server, f"{servers.index(server)}{n:03d}{r:02d}", count, open_now)
                        runs[server.name].append(run_load(server, calls, n, open_now))
                        time.sleep(0.5)  # let the server's backlog drain
                for name, server_runs in runs.items():
                    results[name, n] = summarize(server_runs)
            workers = {server.name: server.workers() for server in servers}
        finally:
            for server in servers:
                server.stop()
            if why_not is None:
                deleted = delete_redis_keys(prefix)
    names = [server.name for server in servers]
    print(f"Servers: gunicorn, {workers[names[0]]} workers each, pinned to core {SERVER_CPU}; client on core "
          f"{CLIENT_CPU}. {args.rounds} rounds per N, {args.calls:,} calls per run (at least 2N).")  # fmt: skip
    if why_not is not None:
        print(f"Redis store: skipped, Redis does not answer at {REDIS_URL} ({why_not}).")
    else:
        print(f"Redis store: database 13, prefix {prefix!r}; {deleted} keys deleted after the runs.")
    print()
    rows = []
    verdicts = []
    for n in args.concurrency:
        base = results["baseline", n]
        for name in names:
            res = results[name, n]
            walk = "/".join(sorted({"office hours" if w else "after hours" for w in res["walks"]}))
            errors = sum(res["errors"].values())
            error_text = (
                str(errors) if not errors else f"{errors} ({', '.join(f'{k}: {v}' for k, v in res['errors'].items())})"
            )
            rows.append(
                [
                    n,
                    name,
                    f"{res['calls/s']:,.0f} ({', '.join(f'{x:,.0f}' for x in res['rounds'])})",
                    f"{res['calls/s'] / base['calls/s']:.2f}x",
                    common.ms(res["p50"]),
                    common.ms(res["p99"]),
                    f"{res['p99'] / base['p99']:.2f}x",
                    error_text,
                    f"{res['completed']:,}/{res['calls']:,}",
                    common.us(res["server"]),
                    common.us(res["client"]),
                    walk,
                ]
            )
            if name != "baseline":
                verdicts.append((n, name, res, base, errors))
    headers = ["N", "server", "calls/s (each round)", "vs baseline", "p50", "p99", "p99 vs baseline", "errors",
               "calls done", "server CPU / webhook", "client CPU / webhook", "walk"]  # fmt: skip
    print(common.table(headers, rows))
    print()
    for n, name, res, base, errors in verdicts:
        throughput = res["calls/s"] / base["calls/s"]
        p99 = res["p99"] / base["p99"]
        checks = [
            f"errors {errors} ({'met' if errors == 0 else 'MISSED'})",
            f"throughput {throughput:.2f}x ({'met' if throughput >= THROUGHPUT_TARGET else 'MISSED'})",
            f"p99 {p99:.2f}x ({'met' if p99 <= P99_TARGET else f'MISSED by {p99 / P99_TARGET - 1:.1%}'})",
        ]
        print(f"- N={n}, {name}: " + "; ".join(checks) + ".")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
