"""Flow size: the same menu step on generated flows of 10, 1,000 and 10,000 states, and their load times.

Each flow is a chain of three-option menus, about 200 bytes of YAML per state (benchmarks/common.py,
as tests/test_engine.py). The request is the one of benchmarks/per_request.py: a new call enters
the flow, then its first menu's Gather reports Digits=2; both signed, through the Flask test client,
ivr in production mode with the SQLite store. Batches are interleaved across the three sizes and
each size's time per request is the median over the batches.

Load time is measured in this process, libyaml's composer doing the YAML, stage by stage:
reading (YAML -> flow model), validating, building the engine (the transitions machine, the
prepared TwiML), and `create_app` as a whole (all of it, plus the store's copy of the flow),
each the median of a few runs.

Run (two to three minutes):

    taskset -c 1 python -m benchmarks.flow_size
    taskset -c 1 python -m benchmarks.flow_size --profile   # and where the 10,000-state load goes

Prints Markdown tables. Targets: the 10,000-state request within 1.1x of the 10-state one; load
time linear in size (here: time per state at 10,000 within 1.25x of that at 1,000) and under 5 s
for 10,000 states.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.per_request import Requests, time_client
from ivr.web.services import services

SIZES = (10, 1_000, 10_000)
REQUEST_TARGET = 1.1
LINEAR_TARGET = 1.25
LOAD_TARGET = 5.0


def load_stages(text: str, tmp: Path, size: int, runs: int) -> dict[str, float]:
    """Median seconds of each loading stage of one flow's text."""
    from ivr import create_app
    from ivr.core.engine import Engine
    from ivr.core.gc_pause import gc_paused
    from ivr.core.loader import read_flow
    from ivr.core.validate import validate_flows

    stages: dict[str, list[float]] = {"read": [], "validate": [], "engine": [], "create_app": []}
    for run in range(runs):
        gc.collect()
        start = time.perf_counter()
        with gc_paused():  # as the app loads
            flow, problems = read_flow(text, "gen.yaml", "gen")
        read = time.perf_counter()
        with gc_paused():
            problems += [e for e in validate_flows({flow.id: flow}) if e.severity == "error"]
        validated = time.perf_counter()
        Engine(flow)
        built = time.perf_counter()
        assert not problems, problems[:3]
        stages["read"].append(read - start)
        stages["validate"].append(validated - read)
        stages["engine"].append(built - validated)
        del flow
        gc.collect()
        flows = common.write_generated_flow(tmp / f"load{size}-{run}", size)
        start = time.perf_counter()
        app = create_app(common.ivr_config(flows, f"sqlite:///{tmp}/load{size}-{run}.sqlite3"))
        stages["create_app"].append(time.perf_counter() - start)
        services(app).store.close()
        del app
    return {name: common.median(values) for name, values in stages.items()}


def request_times(tmp: Path, rounds: int, steps: int) -> dict[int, list[float]]:
    """Seconds per request for each size, batches interleaved across the sizes."""
    from ivr import create_app

    apps = {}
    for size in SIZES:
        flows = common.write_generated_flow(tmp / f"serve{size}", size)
        apps[size] = create_app(common.ivr_config(flows, f"sqlite:///{tmp}/serve{size}.sqlite3"))
        client = apps[size].test_client()
        first = [client.post(s.path, data=s.body, headers=s.headers, content_type=common.FORM) for s in
                 common.menu_step("http://localhost", "CA" + "e" * 32)]  # fmt: skip
        assert [r.status_code for r in first] == [200, 200]
        assert b'/voice/gen/s2"' in first[1].data, first[1].data
    sources = {size: Requests(i) for i, size in enumerate(SIZES)}
    for size in SIZES:
        time_client(apps[size], sources[size].batch(20))  # warm-up
    times: dict[int, list[float]] = {size: [] for size in SIZES}
    for r in range(rounds):
        order = SIZES[r % 3 :] + SIZES[: r % 3]
        for size in order:
            batch = sources[size].batch(steps)
            gc.collect()
            times[size].append(time_client(apps[size], batch))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved batches per size (default 60)")
    parser.add_argument("--steps", type=int, default=50, help="menu steps per batch (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="load runs per size (default 3)")
    parser.add_argument("--profile", action="store_true", help="also profile loading the 10,000-state flow")
    args = parser.parse_args(argv)
    common.clean_environ()
    common.print_header("Flow size: one menu step and the load time, by the flow's number of states")
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        tmp = Path(tmp)
        times = request_times(tmp, args.rounds, args.steps)
        small = common.median(times[SIZES[0]])
        rows = []
        for size in SIZES:
            per = common.median(times[size])
            rows.append([f"{size:,}", common.us(per), f"{per / small:.2f}x"])
        print(f"### Time per request (median of {args.rounds} interleaved batches of {2 * args.steps} requests)\n")
        print(common.table(["states", "time per request", f"vs {SIZES[0]} states"], rows))
        print()

        loads = {}
        for size in SIZES:
            text = common.generated_flow(size)
            loads[size] = (len(text), load_stages(text, tmp, size, args.runs))
        rows = []
        for size, (length, stages) in loads.items():
            rows.append(
                [
                    f"{size:,}",
                    f"{length / 1024:,.0f} KiB",
                    *(common.ms(stages[k]) for k in stages),
                    f"{stages['create_app'] / size * 1e6:,.0f} µs",
                ]
            )
        print(f"### Load time (median of {args.runs} runs; libyaml)\n")
        headers = ["states", "YAML", "read", "validate", "engine", "create_app (all)", "create_app per state"]
        print(common.table(headers, rows))
        print()

        ratio = common.median(times[SIZES[-1]]) / small
        per_state = {size: stages["create_app"] / size for size, (_, stages) in loads.items()}
        linear = per_state[10_000] / per_state[1_000]
        biggest = loads[10_000][1]["create_app"]
        print(f"- Request on 10,000 states: {ratio:.2f}x the 10-state time; target <= {REQUEST_TARGET}x: "
              f"{'met' if ratio <= REQUEST_TARGET else f'MISSED by {ratio / REQUEST_TARGET - 1:.1%}'}.")  # fmt: skip
        print(f"- Load, time per state at 10,000 vs 1,000: {linear:.2f}x; linear (<= {LINEAR_TARGET}x): "
              f"{'met' if linear <= LINEAR_TARGET else 'MISSED'}.")  # fmt: skip
        print(f"- Load of 10,000 states: {biggest:.2f} s; target < {LOAD_TARGET:.0f} s: "
              f"{'met' if biggest < LOAD_TARGET else f'MISSED by {biggest - LOAD_TARGET:.2f} s'}.")  # fmt: skip
        print()
        if args.profile:
            from ivr import create_app

            flows = common.write_generated_flow(tmp / "profile", 10_000)
            config = common.ivr_config(flows, f"sqlite:///{tmp}/profile.sqlite3")
            print("### Profile: create_app on the 10,000-state flow, by own time\n")
            print(common.profile_table(lambda: create_app(config), top=20))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
