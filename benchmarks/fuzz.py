"""Fuzz every webhook route in-process: N hostile requests (100,000 by default), counted.

The requests come from the property tests' strategies (tests/fuzzing.py): Hypothesis draws pools of
paths and parameter sets per route, then a seeded generator recombines them (a path, a parameter
set with pairs spliced in from another, a method the route takes, a signature good or bad), so
that 100,000 requests take minutes, not the hour Hypothesis would take to draw each one. Every
answer is judged by the tests' own `problems()`: 200 with TwiML valid against Twilio's schema
(texts: one Message; "valid TwiML" counts those too), 403 exactly for a bad signature, no
traceback or repr, no template run.

Run by hand (never as a test; about 10 minutes on two busy cores):

    IVR_TWIML_XSD=../shared/twiml-xsd/twiml.xsd python -m benchmarks.fuzz --requests 100000 --seed 11

Prints a Markdown table by route; exit status 1 when any answer broke a promise.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import EXAMPLES, FLOWS, OPEN_HOURS, suite_settings
from fuzzing import METHODS, PATHS, ROUTES, Webhook, parameters, problems, send
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from benchmarks.common import clean_environ
from ivr import create_app
from ivr.testing import TwimlSchema

PATHS_PER_ROUTE = 300
PARAMETER_SETS = 3_000
SIGNATURE_WEIGHTS = {"good": 12, "bad": 1, "missing": 1, "other-url": 1}  # as the tests' SIGNATURES
RECYCLE = 10_000  # a fresh app (and memory store) this often, so that sessions do not fill the memory


def draw_pool(strategy, size: int, seed: int) -> list:
    """`size` examples of a Hypothesis strategy, drawn with a fixed seed."""
    pool: list = []

    @hypothesis_seed(seed)
    @settings(database=None, max_examples=size, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def collect(example):
        pool.append(example)

    collect()
    return pool


def requests(count: int, seed: int):
    """`count` webhooks recombined from Hypothesis' pools."""
    rng = random.Random(seed)
    paths = {route: draw_pool(PATHS[route], PATHS_PER_ROUTE, seed + i) for i, route in enumerate(ROUTES)}
    sets = draw_pool(parameters(), PARAMETER_SETS, seed)
    kinds, weights = list(SIGNATURE_WEIGHTS), list(SIGNATURE_WEIGHTS.values())
    for _ in range(count):
        route = rng.choice(ROUTES)
        params = rng.choice(sets)
        if rng.random() < 0.3:  # pairs of another set spliced in: more duplicates, more combinations
            other = rng.choice(sets)
            params = params + tuple(rng.sample(other, min(len(other), rng.randint(1, 4))))
        yield Webhook(
            route,
            rng.choice(METHODS[route]),
            rng.choice(paths[route]),
            params,
            rng.choices(kinds, weights)[0],
        )


def new_app(directory: Path):
    return create_app(suite_settings(directory), clock=lambda: OPEN_HOURS).test_client()


def run(count: int, seed: int) -> tuple[dict, list]:
    """Send the requests; counts by route, and the first examples of each broken promise."""
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)  # the app's log lines are not the point
    with tempfile.TemporaryDirectory(prefix="ivr-fuzz-") as folder:
        return _run(Path(folder), count, seed)


def _run(directory: Path, count: int, seed: int) -> tuple[dict, list]:
    for name in EXAMPLES:
        (directory / name).write_bytes((FLOWS / name).read_bytes())
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    times: dict[str, list[float]] = collections.defaultdict(list)
    failures: list[tuple[Webhook, list[str]]] = []
    client = None
    for i, webhook in enumerate(requests(count, seed)):
        if i % RECYCLE == 0:
            client = new_app(directory)
        started = time.perf_counter()
        response = send(client, webhook)
        times[webhook.route].append(time.perf_counter() - started)
        found = problems(webhook, response.status_code, response.get_data())
        tally = counts[webhook.route]
        tally["requests"] += 1
        tally[response.status_code] += 1
        tally["refused right" if webhook.must_refuse and response.status_code == 403 else "answered"] += 1
        tally["valid" if response.status_code == 200 and not _any(found, "does not validate") else "-"] += 1
        for kind in ("does not validate", "traceback", "template", "wanted"):
            tally[kind] += _any(found, kind)
        if found and len(failures) < 20:
            failures.append((webhook, found))
    return {"counts": counts, "times": times}, failures


def _any(found: list[str], text: str) -> bool:
    return any(text in problem for problem in found)


def table(result: dict) -> str:
    """The counts as a Markdown table, one row per route and a total."""
    counts, times = result["counts"], result["times"]
    head = (
        "| route | requests | 200 | 403 | other status | valid TwiML (200) | invalid TwiML | wrong status "
        "| tracebacks | templates run | ms/request (median) | ms/request (p99) |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    total: collections.Counter = collections.Counter()
    for route in ROUTES:
        c = counts[route]
        total.update(c)
        rows.append(_row(route, c, times[route]))
    rows.append(_row("**all**", total, [t for ts in times.values() for t in ts]))
    return "\n".join(rows)


def _row(name: str, c: collections.Counter, took: list[float]) -> str:
    other = c["requests"] - c[200] - c[403]
    p99 = statistics.quantiles(took, n=100)[98] if len(took) > 1 else (took[0] if took else 0)
    median = f"{statistics.median(took) * 1000:.2f}" if took else "-"
    cells = [name, c["requests"], c[200], c[403], other, c["valid"], c["does not validate"], c["wanted"],
             c["traceback"], c["template"], median, f"{p99 * 1000:.2f}"]  # fmt: skip
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="how many requests (default 100,000)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the pools and of the recombination")
    args = parser.parse_args(argv)
    xsd = TwimlSchema.shared()
    clean_environ()  # every setting from suite_settings alone; the schema's path stays
    if xsd.path is not None:
        os.environ["IVR_TWIML_XSD"] = str(xsd.path)
    started = time.perf_counter()
    result, failures = run(args.requests, args.seed)
    took = time.perf_counter() - started
    print(f"{args.requests:,} requests, seed {args.seed}, {took:.0f} s in all; schema: {xsd.path or 'NOT CHECKED'}\n")
    print(table(result))
    for webhook, found in failures:
        print(f"\n- {webhook.method} {webhook.url[:200]} ({webhook.signature} signature): {'; '.join(found)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
