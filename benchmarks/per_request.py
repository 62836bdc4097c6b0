"""Per request: ivr answering a whole menu step against a hand-written Flask view (benchmarks/baseline.py).

A menu step is two webhooks of a new call on a generated 10-state flow of three-option menus:
the call enters (`POST /voice/gen`), then its Gather reports a key (`POST /voice/gen/s0`,
Digits=2). Both apps check X-Twilio-Signature on every request and answer the same TwiML
(checked byte for byte before timing); ivr runs in production mode with its default SQLite
store in a temporary directory. Requests are signed ahead of time.

Batches of steps are interleaved (ivr, baseline, ivr with the memory store, in a rotating order)
and each variant's time per request is the median over many batches. Two ways in:
- the Flask test client, as the issue asks (its own work, the same for both, is included);
- a plain WSGI call with the environ built ahead (the app's work alone).
The "ivr, memory store" row is a diagnostic: it shows what the SQLite store costs.

Run (under a minute; pinning to one core steadies the numbers):

    taskset -c 1 python -m benchmarks.per_request
    taskset -c 1 python -m benchmarks.per_request --profile   # and where ivr's time goes

Prints Markdown tables. Target: ivr at most 1.25x the baseline's time per request; the aim, faster.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.http_load import PROFILE_FOCUS

VARIANTS = ("ivr (SQLite)", "baseline", "ivr (memory store)")
TARGET = 1.25


def build_apps(tmp: Path) -> dict:
    """The three apps, each with its own flows directory and store."""
    import os

    os.environ["TWILIO_AUTH_TOKEN"] = common.TOKEN  # the baseline reads it per request, as Twilio's recipe does
    os.environ["IVR_PUBLIC_URL"] = "http://localhost"  # absolute URLs in both apps, as production has them
    from benchmarks.baseline import app as baseline
    from ivr import create_app

    flows = common.write_generated_flow(tmp / "flows", 10)
    return {
        "ivr (SQLite)": create_app(common.ivr_config(flows, f"sqlite:///{tmp}/sessions.sqlite3")),
        "baseline": baseline,
        "ivr (memory store)": create_app(common.ivr_config(flows, "memory://", env="test")),
    }


class Requests:
    """Signed menu steps, each of a new CallSid, handed out in batches."""

    def __init__(self, prefix: int) -> None:
        self.prefix = prefix
        self.count = 0

    def batch(self, steps: int) -> list[common.Signed]:
        out = []
        for _ in range(steps):
            self.count += 1
            out += common.menu_step("http://localhost", f"CA{self.prefix:02d}{self.count:030d}")
        return out


def check_same_twiml(apps: dict) -> None:
    """Both apps answer the benchmark's step with the same bytes."""
    answers = {}
    for name, app in apps.items():
        client = app.test_client()
        step = common.menu_step("http://localhost", "CA" + "f" * 32)
        answers[name] = [client.post(s.path, data=s.body, headers=s.headers, content_type=common.FORM) for s in step]
        assert all(r.status_code == 200 for r in answers[name]), (name, [r.status_code for r in answers[name]])
    bodies = {name: [r.data for r in responses] for name, responses in answers.items()}
    first = bodies[VARIANTS[0]]
    for name, body in bodies.items():
        assert body == first, f"{name} answers differently:\n{body}\n{first}"


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


def measure(apps: dict, *, rounds: int, steps: int, way: str) -> dict[str, list[float]]:
    """Interleaved batches: each round runs every variant once, the order rotating."""
    sources = {name: Requests(i) for i, name in enumerate(apps)}
    times: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    # Warm each app (imports, caches, the store's connection) before anything counts.
    for name in names:
        time_client(apps[name], sources[name].batch(20))
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            batch = sources[name].batch(steps)
            gc.collect()
            if way == "client":
                times[name].append(time_client(apps[name], batch))
            else:
                environs = [s.environ() for s in batch]
                times[name].append(time_wsgi(apps[name], environs))
    return times


def report(title: str, times: dict[str, list[float]], rounds: int, steps: int) -> float:
    base = common.median(times["baseline"])
    rows = []
    for name in VARIANTS:
        per = common.median(times[name])
        spread = f"{common.us(common.percentile(times[name], 0.1))} to {common.us(common.percentile(times[name], 0.9))}"
        rows.append([name, common.us(per), spread, f"{per / base:.2f}x"])
    print(f"### {title}\n")
    print(f"Median of {rounds} interleaved batches of {steps} menu steps ({2 * steps} requests) each.\n")
    print(common.table(["app", "time per request", "10th to 90th percentile of batches", "vs baseline"], rows))
    print()
    return common.median(times[VARIANTS[0]]) / base


def profile(apps: dict, steps: int) -> None:
    """Where ivr's time goes: cProfile over WSGI calls of `steps` menu steps."""
    app = apps[VARIANTS[0]]
    source = Requests(90)
    time_client(app, source.batch(20))
    environs = [s.environ() for s in source.batch(steps)]
    print(f"### Profile: ivr (SQLite), {2 * steps} requests as WSGI calls, by own time\n")
    print(common.profile_table(lambda: time_wsgi(app, environs), top=20))
    print()
    environs = [s.environ() for s in source.batch(steps)]
    print("### The same, by cumulative time: ivr's functions and its main calls into libraries\n")
    print(common.profile_table(lambda: time_wsgi(app, environs), top=45, sort="cumulative", only=PROFILE_FOCUS))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved batches per variant (default 60)")
    parser.add_argument("--steps", type=int, default=50, help="menu steps per batch (default 50)")
    parser.add_argument("--profile", action="store_true", help="also profile ivr's requests with cProfile")
    args = parser.parse_args(argv)
    common.clean_environ()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        apps = build_apps(Path(tmp))
        check_same_twiml(apps)
        common.print_header("Per request: a menu step, ivr against a hand-written Flask view")
        verdicts = []
        for way, title in (("client", "Through the Flask test client"), ("wsgi", "As plain WSGI calls")):
            times = measure(apps, rounds=args.rounds, steps=args.steps, way=way)
            ratio = report(title, times, args.rounds, args.steps)
            verdicts.append((title, ratio))
        for title, ratio in verdicts:
            met = "met" if ratio <= TARGET else f"MISSED by {ratio / TARGET - 1:.1%}"
            faster = "faster than" if ratio < 1 else "slower than"
            print(f"- {title}: ivr (SQLite) is {ratio:.2f}x the baseline ({faster} it); target <= {TARGET}x: {met}.")
        print()
        if args.profile:
            profile(apps, args.steps * 4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
