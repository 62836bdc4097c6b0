"""Per request, in process: ivr against a hand-written Flask IVR (benchmarks/baseline.py), on two workloads.

- A menu step, the best case: two webhooks of a new call on a generated 10-state flow of
  three-option menus. The call enters (`POST /voice/gen`), then its Gather reports a key
  (`POST /voice/gen/s0`, Digits=2).
- A realistic walk of flows/main.yaml, end to end, at a fixed time on both branches of its `when:`.
  In office hours (Wednesday 10:00 in New York) the entry decides by the hour, then the menu, 2
  (the support menu), 1 (a Dial to billing whose callerId is a template), and the Dial's result
  (4 webhooks). After hours (the same day, 20:00) the entry, the after-hours menu, 1 (a Record),
  and the recording (3 webhooks). Both apps see the same time: ivr through create_app's `clock`,
  the baseline through its module's `datetime`, replaced in this process.

Every request is signed, with the parameters Twilio sends and I-Twilio-Idempotency-Token, ahead
of time. Both apps check X-Twilio-Signature and answer the same TwiML (checked byte for byte
before timing, on each workload and branch). ivr runs in production mode with its SQLite store in
a temporary directory; the "ivr (memory store)" row is a diagnostic showing what SQLite costs.

Batches are interleaved (ivr, baseline, ivr with the memory store, in a rotating order) and each
app's time per request is the median over the batches. Two ways in:
- the Flask test client, as issue 14 asks (its own work, the same for both, is included);
- a plain WSGI call with the environ built ahead (the app's work alone).

Targets (issue 14), ivr (SQLite) against the baseline's time per request, both ways: the menu step
at most 0.85x; the main.yaml walk at most 0.90x, on each branch.

Run (about two minutes; pinning to one core steadies the numbers):

    taskset -c 1 python -m benchmarks.per_request
    taskset -c 1 python -m benchmarks.per_request --workloads main --rounds 20   # shorter
    taskset -c 1 python -m benchmarks.per_request --profile   # and where ivr's time goes

Prints Markdown tables and a verdict per workload, way and branch.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import common
from benchmarks.http_load import PROFILE_FOCUS

VARIANTS = ("ivr (SQLite)", "baseline", "ivr (memory store)")
MENU_TARGET = 0.85
MAIN_TARGET = 0.90
# A Wednesday: main.yaml's office hours are weekdays 9 to 5 in New York.
OFFICE_HOURS = datetime(2026, 11, 25, 10, 0, tzinfo=common.NEW_YORK)
AFTER_HOURS = datetime(2026, 11, 25, 20, 0, tzinfo=common.NEW_YORK)
WAYS = (("client", "through the Flask test client"), ("wsgi", "as plain WSGI calls"))


class FixedClock:
    """The time both apps see: ivr's `clock`, and the baseline's `datetime.now` (see `fix_baseline_clock`)."""

    def __init__(self) -> None:
        self.moment = OFFICE_HOURS.astimezone(UTC)

    def set(self, moment: datetime) -> None:
        self.moment = moment.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.moment


def fix_baseline_clock(clock: FixedClock) -> None:
    """The baseline reads `datetime.now(zone)` as Twilio's tutorial would: give its module one that reads `clock`."""
    from benchmarks import baseline

    class _Datetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock.moment.astimezone(tz)

    baseline.datetime = _Datetime


@dataclass
class Workload:
    """What one table measures: apps, a unit of work (a menu step, a call) as signed requests, and its target."""

    title: str
    apps: dict
    unit: str  # what a batch counts: "menu steps", "calls"
    make: Callable[[str], list[common.Signed]]  # a unit's requests, for a CallSid
    target: float
    moment: datetime | None = None  # the time both apps see, when the workload depends on it
    number: int = 0  # sets its CallSids apart from other workloads' on the same apps


def build_apps(tmp: Path, flows: Path, clock: FixedClock | None = None) -> dict:
    """The three apps on `flows`, each with its own store."""
    from benchmarks.baseline import app as baseline
    from ivr import create_app

    return {
        "ivr (SQLite)": create_app(common.ivr_config(flows, f"sqlite:///{tmp}/sessions.sqlite3"), clock=clock),
        "baseline": baseline,
        "ivr (memory store)": create_app(common.ivr_config(flows, "memory://", env="test"), clock=clock),
    }


def workloads(tmp: Path, names: list[str], clock: FixedClock) -> list[Workload]:
    os.environ["TWILIO_AUTH_TOKEN"] = common.TOKEN  # the baseline reads it per request, as Twilio's recipe does
    os.environ["IVR_PUBLIC_URL"] = "http://localhost"  # absolute URLs in both apps, as production has them
    out = []
    if "menu" in names:
        flows = common.write_generated_flow(tmp / "menu" / "flows", 10)
        apps = build_apps(tmp / "menu", flows)
        out.append(Workload("A menu step (generated flow)", apps, "menu steps", menu_step, MENU_TARGET))
    if "main" in names:
        fix_baseline_clock(clock)
        flows = common.copy_example_flows(tmp / "main" / "flows")
        apps = build_apps(tmp / "main", flows, clock)
        for moment, branch in ((OFFICE_HOURS, "office hours"), (AFTER_HOURS, "after hours")):
            make = main_call(common.office_open(moment))
            title = f"main.yaml walked end to end, {branch} ({moment:%a %H:%M} in New York)"
            out.append(Workload(title, apps, "calls", make, MAIN_TARGET, moment))
    for number, workload in enumerate(out):
        workload.number = number
    return out


def menu_step(sid: str) -> list[common.Signed]:
    return common.menu_step("http://localhost", sid)


def main_call(open_now: bool) -> Callable[[str], list[common.Signed]]:
    def make(sid: str) -> list[common.Signed]:
        return [signed for signed, _ in common.signed_walk("http://localhost", sid, open_now)]

    return make


class Requests:
    """Signed units of work, each of a new CallSid, handed out in batches."""

    def __init__(self, prefix: int, make: Callable[[str], list[common.Signed]] = menu_step) -> None:
        self.prefix, self.make = prefix, make
        self.count = 0

    def batch(self, units: int) -> list[common.Signed]:
        out = []
        for _ in range(units):
            self.count += 1
            out += self.make(f"CA{self.prefix:02d}{self.count:030d}")
        return out


def check_same_twiml(workload: Workload) -> None:
    """Every app answers the workload's unit with the same bytes."""
    bodies = {}
    for name, app in workload.apps.items():
        client = app.test_client()
        answers = [
            client.post(s.path, data=s.body, headers=s.headers, content_type=common.FORM)
            for s in workload.make(f"CA{workload.number:02d}" + "f" * 30)
        ]
        assert all(r.status_code == 200 for r in answers), (name, [r.status_code for r in answers])
        bodies[name] = [r.data for r in answers]
    first = bodies[VARIANTS[0]]
    for name, body in bodies.items():
        assert body == first, f"{workload.title}: {name} answers differently:\n{body}\n{first}"


def time_client(app, requests: list[common.Signed]) -> float:
    """Seconds per request through the Flask test client."""
    client = app.test_client()
    start = time.perf_counter()
    for s in requests:
        response = client.post(s.path, data=s.body, headers=s.headers, content_type=common.FORM)
        if response.status_code != 200:
            raise AssertionError(f"{s.path}: {response.status_code}")
    return (time.perf_counter() - start) / len(requests)


def time_wsgi(app, environs: list[dict]) -> float:
    """Seconds per request as a plain WSGI call (environs built ahead)."""
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    start = time.perf_counter()
    for environ in environs:
        for _ in app(environ, start_response):
            pass
    elapsed = time.perf_counter() - start
    if any(not status.startswith("200") for status in statuses):
        raise AssertionError(f"non-200 answers: {set(statuses)}")
    return elapsed / len(environs)


def measure(workload: Workload, *, rounds: int, units: int, way: str) -> dict[str, list[float]]:
    """Interleaved batches: each round runs every app once, the order rotating."""
    apps = workload.apps
    first = 20 * workload.number + 10 * (way == "wsgi")  # a CallSid is never reused
    sources = {name: Requests(first + i, workload.make) for i, name in enumerate(apps)}
    times: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    # Warm each app (imports, caches, the store's connection) before anything counts.
    for name in names:
        time_client(apps[name], sources[name].batch(10))
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            batch = sources[name].batch(units)
            gc.collect()
            if way == "client":
                times[name].append(time_client(apps[name], batch))
            else:
                environs = [s.environ() for s in batch]
                times[name].append(time_wsgi(apps[name], environs))
    return times


def report(title: str, times: dict[str, list[float]], rounds: int, units: str) -> float:
    base = common.median(times["baseline"])
    rows = []
    for name in VARIANTS:
        per = common.median(times[name])
        spread = f"{common.us(common.percentile(times[name], 0.1))} to {common.us(common.percentile(times[name], 0.9))}"
        rows.append([name, common.us(per), spread, f"{per / base:.2f}x"])
    print(f"### {title}\n")
    print(f"Median of {rounds} interleaved batches of {units} each.\n")
    print(common.table(["app", "time per request", "10th to 90th percentile of batches", "vs baseline"], rows))
    print()
    return common.median(times[VARIANTS[0]]) / base


def profile(workload: Workload, units: int) -> None:
    """Where ivr's time goes: cProfile over WSGI calls of `units` units of the workload."""
    app = workload.apps[VARIANTS[0]]
    source = Requests(90 + workload.number, workload.make)
    time_client(app, source.batch(10))
    environs = [s.environ() for s in source.batch(units)]
    print(f"### Profile: ivr (SQLite), {workload.title}: {len(environs)} requests as WSGI calls, by own time\n")
    print(common.profile_table(lambda: time_wsgi(app, environs), top=20))
    print()
    environs = [s.environ() for s in source.batch(units)]
    print("### The same, by cumulative time: ivr's functions and its main calls into libraries\n")
    print(common.profile_table(lambda: time_wsgi(app, environs), top=45, sort="cumulative", only=PROFILE_FOCUS))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"Targets: ivr (SQLite) at most {MENU_TARGET}x the baseline's time per request on the menu step, "
        f"at most {MAIN_TARGET}x on main.yaml's walk (each branch), both through the test client and as plain WSGI.",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=["menu", "main"],
        default=["menu", "main"],
        help="menu: the generated flow's menu step; main: main.yaml walked in and out of office hours (default both)",
    )
    parser.add_argument("--rounds", type=int, default=60, help="interleaved batches per app (default 60)")
    parser.add_argument("--steps", type=int, default=50, help="menu steps per batch (default 50: 100 requests)")
    parser.add_argument("--calls", type=int, default=25, help="main.yaml calls per batch (default 25: 75-100 requests)")
    parser.add_argument("--profile", action="store_true", help="also profile ivr's requests with cProfile")
    args = parser.parse_args(argv)
    common.clean_environ()
    clock = FixedClock()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        loads = workloads(Path(tmp), args.workloads, clock)
        for workload in loads:
            if workload.moment is not None:
                clock.set(workload.moment)
            check_same_twiml(workload)
        common.print_header("Per request: ivr against a hand-written Flask IVR, in process")
        verdicts = []
        for workload in loads:
            if workload.moment is not None:
                clock.set(workload.moment)
            units = args.steps if workload.unit == "menu steps" else args.calls
            for way, how in WAYS:
                times = measure(workload, rounds=args.rounds, units=units, way=way)
                ratio = report(f"{workload.title}, {how}", times, args.rounds, f"{units} {workload.unit}")
                verdicts.append((f"{workload.title}, {how}", ratio, workload.target))
        for title, ratio, target in verdicts:
            met = "met" if ratio <= target else f"MISSED by {ratio / target - 1:.1%}"
            faster = "faster than" if ratio < 1 else "slower than"
            print(f"- {title}: ivr (SQLite) is {ratio:.2f}x the baseline ({faster} it); target <= {target}x: {met}.")
        print()
        if args.profile:
            for workload in loads:
                if workload.moment is not None:
                    clock.set(workload.moment)
                profile(workload, (args.steps if workload.unit == "menu steps" else args.calls) * 4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
