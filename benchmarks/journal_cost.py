"""What the call journal costs a webhook, in process: ivr with IVR_EVENTS off against the same app with it on.

The apps are the production app of benchmarks/per_request.py (its SQLite session store, signed
requests with Twilio's parameters and idempotency token), differing only in IVR_EVENTS:
- journal off;
- journal on, SQLite (a file beside the sessions);
- journal on, PostgreSQL (a database of this run's own on 127.0.0.1:5432, dropped after), when it answers.

Workloads, as per_request.py's: the menu step of the generated 10-state flow (2 webhooks), and
flows/main.yaml walked end to end in office hours (4 webhooks: menu, 2, 1, a Dial's result) and
after hours (3 webhooks: menu, 1, a recording). Batches are plain WSGI calls (the app's own work),
interleaved in a rotating order, each app's figure the median over batches.

The journal's writer runs as in production: each webhook hands its rows to the writer's buffer,
and the writer's own thread writes them every 0.5 s (or at 2,000 rows). So the benchmark counts
two costs:
- the request path: the request thread's CPU time per webhook (`time.thread_time`), and its wall
  time (which also holds whatever the writer's thread took from it at the same moment);
- the whole: the request thread's CPU plus the CPU of the writer's thread (its own CPU clock,
  `pthread_getcpuclockid`), and for PostgreSQL the server processes serving this run's database
  (from /proc), per webhook.
SQLite's checkpoint thread for the session store is shared and the same for every app: not counted.

Target (issue 15): the journal costs a webhook at most 5% of its time (request path, on / off <= 1.05).

Run (about two minutes; pinning to one core steadies the numbers):

    taskset -c 1 python -m benchmarks.journal_cost
    taskset -c 1 python -m benchmarks.journal_cost --workloads main --rounds 20   # shorter
    taskset -c 1 python -m benchmarks.journal_cost --profile   # and where the journal's time goes
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import common
from benchmarks.per_request import AFTER_HOURS, OFFICE_HOURS, FixedClock, Requests, main_call, menu_step

TARGET = 1.05
OFF = "journal off"
SQLITE = "journal on, SQLite"
POSTGRES = "journal on, PostgreSQL"


def build_apps(tmp: Path, flows: Path, clock: FixedClock, postgres: str | None) -> dict:
    from ivr import create_app

    sessions = f"sqlite:///{tmp}/sessions-%s.sqlite3"
    apps = {
        OFF: create_app(common.ivr_config(flows, sessions % "off"), clock=clock),
        SQLITE: create_app(
            common.ivr_config(flows, sessions % "sqlite", events=f"sqlite:///{tmp}/events.sqlite3"), clock=clock
        ),
    }
    if postgres:
        apps[POSTGRES] = create_app(common.ivr_config(flows, sessions % "pg", events=postgres), clock=clock)
    return apps


def writer_of(app):
    from ivr.web.services import services

    return services(app).events


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds `thread` has used so far (0 when it has not started)."""
    if thread is None or thread.ident is None or not thread.is_alive():
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


class Tally:
    """One app's figures over the batches of one workload."""

    def __init__(self) -> None:
        self.wall: list[float] = []  # seconds per webhook, per batch
        self.cpu: list[float] = []  # request thread's CPU seconds per webhook, per batch
        self.requests = 0
        self.writer_cpu = 0.0
        self.server_cpu = 0.0


def run_batch(app, environs: list[dict]) -> tuple[float, float]:
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    cpu, start = time.thread_time(), time.perf_counter()
    for environ in environs:
        for _ in app(environ, start_response):
            pass
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
    if any(not status.startswith("200") for status in statuses):
        raise AssertionError(f"non-200 answers: {set(statuses)}")
    return wall / len(environs), cpu / len(environs)


def measure(apps: dict, make, number: int, rounds: int, units: int, postgres: str | None) -> dict[str, Tally]:
    names = list(apps)
    sources = {name: Requests(10 * number + i, make) for i, name in enumerate(names)}
    for name in names:  # warm: imports, connections, the writer's thread and database
        run_batch(apps[name], [s.environ() for s in sources[name].batch(10)])
        writer = writer_of(apps[name])
        if writer is not None:
            writer.flush()
    tallies = {name: Tally() for name in names}
    for name in names:
        writer = writer_of(apps[name])
        if writer is not None:
            writer.written = 0
    writers_before = {name: thread_cpu(getattr(writer_of(apps[name]), "_thread", None)) for name in names}
    server_before = common.postgres_backend_ticks(postgres) if postgres and POSTGRES in apps else 0
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            environs = [s.environ() for s in sources[name].batch(units)]
            gc.collect()
            wall, cpu = run_batch(apps[name], environs)
            tally = tallies[name]
            tally.wall.append(wall)
            tally.cpu.append(cpu)
            tally.requests += len(environs)
    # The writers' threads go on writing what the last batches left; their CPU counts once they have.
    deadline = time.monotonic() + 10
    for name in names:
        writer = writer_of(apps[name])
        while writer is not None and writer.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.1)
    for name in names:
        writer = writer_of(apps[name])
        if writer is not None:
            tallies[name].writer_cpu = thread_cpu(writer._thread) - writers_before[name]
            if writer.pending() or writer.dropped:
                print(f"- {name}: {writer.pending()} rows still pending, {writer.dropped} dropped\n")
    if postgres and POSTGRES in apps:
        tallies[POSTGRES].server_cpu = (common.postgres_backend_ticks(postgres) - server_before) / os.sysconf(
            "SC_CLK_TCK"
        )
    return tallies


def report(title: str, tallies: dict[str, Tally], rounds: int, units: str) -> list[tuple[str, float, float]]:
    off = tallies[OFF]
    wall0, cpu0 = common.median(off.wall), common.median(off.cpu)
    rows, ratios = [], []
    for name, tally in tallies.items():
        wall, cpu = common.median(tally.wall), common.median(tally.cpu)
        writer = tally.writer_cpu / tally.requests
        server = tally.server_cpu / tally.requests
        total = cpu + writer + server
        rows.append([
            name, common.us(wall), f"{wall / wall0:.3f}x", common.us(cpu), f"{cpu / cpu0:.3f}x",
            common.us(writer) if name != OFF else "-", common.us(server) if name == POSTGRES else "-",
            common.us(total), f"{total / cpu0:.3f}x",
        ])  # fmt: skip
        if name != OFF:
            ratios.append((name, cpu / cpu0, total / cpu0, wall / wall0))
    print(f"### {title}\n")
    print(f"Median of {rounds} interleaved batches of {units} each, as plain WSGI calls; per webhook.\n")
    headers = ["app", "wall time", "vs off", "request thread CPU", "vs off (request path)", "writer thread CPU",
               "PostgreSQL server CPU", "total CPU", "vs off (total)"]  # fmt: skip
    print(common.table(headers, rows))
    print()
    return [(f"{title}, {name}", path, total, wall) for name, path, total, wall in ratios]


def profile(apps: dict, make, units: int) -> None:
    """cProfile of the journal's part of the SQLite app's webhooks, and of its writer's flush."""
    from benchmarks.http_load import PROFILE_FOCUS

    app = apps[SQLITE]
    writer = writer_of(app)
    source = Requests(95, make)
    run_batch(app, [s.environ() for s in source.batch(10)])
    environs = [s.environ() for s in source.batch(units)]
    writer.background = False  # the rows stay buffered: the flush is profiled on its own below
    try:
        print(f"### Profile: {SQLITE}, {len(environs)} webhooks as WSGI calls, by cumulative time\n")
        focus = PROFILE_FOCUS + r"|journal_answer|writer.py|analytics/rows.py|request_source|keyed_hash"
        print(common.profile_table(lambda: run_batch(app, environs), top=40, sort="cumulative", only=focus))
        print()
        print(f"### Profile: the writer's flush of those {writer.pending()} rows, by own time\n")
        print(common.profile_table(writer.flush, top=12))
        print()
    finally:
        writer.background = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"Target (issue 15): the request path with the journal at most {TARGET}x its time without.",
    )
    parser.add_argument("--workloads", nargs="+", choices=["menu", "main"], default=["menu", "main"])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved batches per app (default 40)")
    parser.add_argument("--steps", type=int, default=50, help="menu steps per batch (default 50: 100 webhooks)")
    parser.add_argument("--calls", type=int, default=25, help="main.yaml calls per batch (default 25: 75-100 webhooks)")
    parser.add_argument("--postgres", default=common.POSTGRES, help="a PostgreSQL server's URL, or off")
    parser.add_argument("--profile", action="store_true", help="also profile the journal's share with cProfile")
    args = parser.parse_args(argv)
    common.clean_environ()
    os.environ["TWILIO_AUTH_TOKEN"] = common.TOKEN
    clock = FixedClock()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-bench-")))
        postgres = None if args.postgres == "off" else stack.enter_context(common.postgres_database(args.postgres))
        loads = []
        if "menu" in args.workloads:
            flows = common.write_generated_flow(tmp / "menu" / "flows", 10)
            loads.append(("A menu step (generated flow)", flows, menu_step, None, f"{args.steps} menu steps"))
        if "main" in args.workloads:
            flows = common.copy_example_flows(tmp / "main" / "flows")
            for moment, branch in ((OFFICE_HOURS, "office hours"), (AFTER_HOURS, "after hours")):
                title = f"main.yaml walked end to end, {branch}"
                loads.append((title, flows, main_call(common.office_open(moment)), moment, f"{args.calls} calls"))
        common.print_header("The call journal's cost to a webhook, in process")
        verdicts = []
        built: dict[Path, dict] = {}
        try:
            for number, (title, flows, make, moment, units) in enumerate(loads):
                if flows not in built:
                    (flows.parent / "journal").mkdir(exist_ok=True)
                    built[flows] = build_apps(flows.parent / "journal", flows, clock, postgres)
                apps = built[flows]
                if moment is not None:
                    clock.set(moment)
                count = args.steps if make is menu_step else args.calls
                tallies = measure(apps, make, number, args.rounds, count, postgres)
                verdicts += report(title, tallies, args.rounds, units)
                if args.profile:
                    profile(apps, make, count * 4)
            for title, path, total, wall in verdicts:
                met = "met" if path <= TARGET else f"MISSED by {path / TARGET - 1:.1%}"
                print(f"- {title}: request path {path:.3f}x (wall {wall:.3f}x), total CPU {total:.3f}x; "
                      f"target request path <= {TARGET}x: {met}.")  # fmt: skip
            print()
        finally:
            for apps in built.values():
                for app in apps.values():
                    writer = writer_of(app)
                    if writer is not None:
                        writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
