"""What issue 16's constructs cost a webhook, in process: shipped flows that use them beside the same flows without.

- Subflow: flows/accounts.yaml's balance lookup, through the `pin` subflow, beside the same flow
  with pin.yaml's states inlined (generated here from pin.yaml: each state renamed `pin_<name>`,
  each `return:` turned into the caller's route for its outcome, the inputs into a `set:`). The
  walk: the call enters (the shipped hook `lookup_caller` greets Ada), 1 (balance), the account
  number 123456, 1 (confirm: the hook `account_balance`, then the PIN prompt), the PIN 1234 (the
  hook `check_pin`, the return, the balance and the menu): 5 webhooks. A second walk enters a wrong
  PIN first (the `set:` and `when:` of pin's `wrong` state): 6 webhooks. Both apps answer the same
  TwiML but for the PIN prompt's action (`/voice/pin/ask` against `/voice/accounts/pin_ask`),
  checked before timing.
- HTTP step: flows/orders.yaml against an order API started here on 127.0.0.1 (a process of its
  own, answering a small JSON document over kept-alive HTTP/1.1), beside the same flow with its
  `http:` replaced by a `run:` hook that sends the same GET with the same kind of httpx client
  (`ivr.outbound.http.http_client`), and by a hook returning the same result without I/O (what the
  engine costs, I/O aside). The walk: the call enters, the order number 12345# (the request, then
  the status and goodbye): 2 webhooks. The three apps answer the same bytes.
- Reference: flows/main.yaml's walk against the hand-written Flask baseline, as
  `benchmarks.per_request` measures it (IVR_EVENTS off), and with the call journal on (SQLite).

Every app runs in production mode with its SQLite session store, its own flows directory and the
shipped hooks (flows/hooks.py); every request is signed and carries I-Twilio-Idempotency-Token.
Batches are interleaved within a workload (each app once per round, the order rotating); each app's
time per request is the median over the batches, through the Flask test client and as plain WSGI
calls. A walk's webhooks are the same in number for every app of a workload, so the ratio per walk
equals the ratio per webhook.

Run (about two minutes; pinning to one core steadies the numbers, and pins the order API too):

    taskset -c 1 python -m benchmarks.constructs
    taskset -c 1 python -m benchmarks.constructs --workloads subflow --rounds 20   # shorter
    taskset -c 1 python -m benchmarks.constructs --profile   # and where the subflow walk's time goes
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks import common
from benchmarks.http_load import PROFILE_FOCUS
from benchmarks.per_request import (
    AFTER_HOURS,
    OFFICE_HOURS,
    FixedClock,
    Requests,
    fix_baseline_clock,
    main_call,
    time_client,
    time_wsgi,
)
from ivr.web.services import services

BASE = "http://localhost"
ORDER = {"order": {"status": "shipped", "delivery_date": "Friday"}}
WAYS = (("client", "through the Flask test client"), ("wsgi", "as plain WSGI calls"))


# -- the flows without the constructs --------------------------------------------------------


def _block(text: str, state: str) -> re.Match:
    """The lines of `state` in a flow's text (its name's line and the indented lines under it)."""
    found = re.search(rf"^  {state}:\n(?:    .*\n|\n(?=    ))+", text, re.MULTILINE)
    assert found, f"state {state!r} not found"
    return found


def inline_pin(accounts: str, pin: str, caller: str = "check_pin") -> str:
    """accounts.yaml's text with its `subflow: {flow: pin}` state replaced by pin.yaml's states, inlined.

    Each pin state becomes `pin_<name>`; a `return:` becomes the caller's route for its outcome (or its
    `next:`), with a `set:` for returned values that differ from the caller's; the caller's state sets
    the subflow's inputs and goes to the renamed start. The caller hears the same words."""
    calling = yaml.safe_load(_block(accounts, caller).group(0))[caller]
    sub = yaml.safe_load(pin)
    assert calling["subflow"]["flow"] == "pin", calling
    routes, after = calling.get("routes", {}), calling.get("next")
    rename = {name: f"pin_{name}" for name in sub["states"]}

    def to(name: str) -> str:
        return rename.get(name, name)  # repeat, back: the engine's own

    states = {}
    for name, state in sub["states"].items():
        state = dict(state)
        for key in ("next", "on_max", "on_error"):
            if key in state:
                state[key] = to(state[key])
        if "routes" in state:
            state["routes"] = {key: to(value) for key, value in state["routes"].items()}
        if "when" in state:
            state["when"] = [{**case, "next": to(case["next"])} for case in state["when"]]
        if "return" in state:
            returned = state.pop("return")
            outcome = returned if isinstance(returned, str) else returned["outcome"]
            values = {} if isinstance(returned, str) else returned.get("values", {})
            changed = {key: value for key, value in values.items() if value != f"{{{{ {key} }}}}"}
            if changed:
                state["set"] = changed
            state["next"] = routes.get(outcome, after)
        states[rename[name]] = state
    inputs = {name: spec["default"] for name, spec in sub.get("inputs", {}).items() if isinstance(spec, dict)}
    inputs |= {
        name: value for name, value in calling["subflow"].get("inputs", {}).items() if value != f"{{{{ {name} }}}}"
    }
    entry = {caller: {"set": inputs, "next": to(sub["start"])}} if inputs else {caller: {"next": to(sub["start"])}}
    generated = yaml.safe_dump({**entry, **states}, sort_keys=False, width=200, allow_unicode=True)
    indented = "".join(f"  {line}\n" if line else "\n" for line in generated.splitlines())
    found = _block(accounts, caller)
    return accounts[: found.start()] + indented + "\n" + accounts[found.end() :]


def orders_with_hook(orders: str, hook_name: str) -> str:
    """orders.yaml's text with its `lookup` state's `http:` replaced by `run: hook_name`, routed the same way."""
    found = _block(orders, "lookup")
    routes = yaml.safe_load(found.group(0))["lookup"]["routes"]
    failed = routes.pop("error")  # a hook's failures (its timeout too) take on_error, its other outcomes next
    routes.pop("timeout", None)
    lookup = {"run": hook_name, "routes": routes, "on_error": failed, "next": failed}
    state = yaml.safe_dump({"lookup": lookup}, sort_keys=False, width=200)
    indented = "".join(f"  {line}\n" for line in state.splitlines())
    return orders[: found.start()] + indented + "\n" + orders[found.end() :]


# -- the order API and the hooks that stand in for the HTTP step ----------------------------

API_SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
PAYLOAD = sys.argv[1].encode()
class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept alive, as an API behind a pool is
    disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart (delayed ACKs)
    def log_message(self, *args):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)
server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
server.daemon_threads = True
print(server.server_port, flush=True)
server.serve_forever()
"""


class OrderApi:
    """The order API in a process of its own on 127.0.0.1 (it inherits this process's CPU affinity)."""

    def __enter__(self) -> str:
        self.process = subprocess.Popen(
            [sys.executable, "-c", API_SERVER, json.dumps(ORDER)], stdout=subprocess.PIPE, text=True
        )
        port = int(self.process.stdout.readline())
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(5)


def register_order_hooks(base: str) -> None:
    """Two hooks for orders.yaml's lookup: the HTTP step's request made by hand, and its result without I/O."""
    from ivr import hook
    from ivr.outbound.http import http_client

    client = http_client()  # the HTTP step's kind of client: pooled, no redirects, nothing from the environment

    @hook
    def bench_order_httpx(ctx):
        """GET the order as the HTTP step does, and save the same two values."""
        response = client.get(
            f"{base}/orders/{ctx.vars['order']}", params={"caller": ctx.call.get("From", "")}, timeout=2
        )
        if response.status_code != 200:
            return {"outcome": str(response.status_code)}
        order = response.json()["order"]
        return {"outcome": "ok", "vars": {"order_status": order["status"], "delivery": order["delivery_date"]}}

    @hook
    def bench_order_canned(ctx):
        """The same result, without a request."""
        order = ORDER["order"]
        return {"outcome": "ok", "vars": {"order_status": order["status"], "delivery": order["delivery_date"]}}


# -- walks -----------------------------------------------------------------------------------


def walk(steps: list[tuple[str, dict]]) -> Callable[[str], list[common.Signed]]:
    """A call's signed webhooks, from (path, what Twilio adds) pairs; the first is the call's entry."""

    def make(sid: str) -> list[common.Signed]:
        return [
            common.Signed(BASE, path, {**common.caller_params(sid, "ringing" if i == 0 else "in-progress"), **extra})
            for i, (path, extra) in enumerate(steps)
        ]

    return make


def accounts_walk(pin_prefix: str, wrong_first: bool) -> Callable[[str], list[common.Signed]]:
    """accounts.yaml's balance lookup; `pin_prefix` is where the PIN prompt's Gather reports its keys."""
    steps = [
        ("/voice/accounts", {}),
        ("/voice/accounts/menu", common.press("1")),
        ("/voice/accounts/account_number", common.press("123456")),
        ("/voice/accounts/confirm_account", common.press("1")),
    ]
    if wrong_first:
        steps.append((f"{pin_prefix}ask", common.press("0000")))
    steps.append((f"{pin_prefix}ask", common.press("1234")))
    return walk(steps)


ORDERS_WALK = walk(
    [("/voice/orders", {}), ("/voice/orders/order_number", {**common.press("12345"), "FinishedOnKey": "#"})]
)


@dataclass
class Workload:
    """Apps walked the same way (each its own requests), the rows each is compared against, and the TwiML check."""

    title: str
    apps: dict  # name: app; the first is the subject
    makes: dict  # name: a walk's signed requests for a CallSid
    refs: list[str]  # the apps every row is compared against, a column each
    expect: bytes  # a piece the last answer must hold (the walk went where it should)
    same: Callable[[bytes], bytes] = lambda body: body  # what the check compares
    moment: object = None  # the time the apps see
    first_sid: int = 0  # sets its CallSids apart from other workloads'


def _app(tmp: Path, name: str, flows: Path, clock: FixedClock, **config):
    from ivr import create_app

    return create_app(common.ivr_config(flows, f"sqlite:///{tmp}/{name}.sqlite3", **config), clock=clock)


def _flows(tmp: Path, name: str, replace: dict[str, str] | None = None) -> Path:
    """A copy of the shipped flows, with some files' text replaced."""
    flows = common.copy_example_flows(tmp / name / "flows")
    for file, text in (replace or {}).items():
        (flows / file).write_text(text)
    return flows


def workloads(tmp: Path, names: list[str], clock: FixedClock, api: str | None) -> list[Workload]:
    os.environ["TWILIO_AUTH_TOKEN"] = common.TOKEN  # the baseline reads it per request
    os.environ["IVR_PUBLIC_URL"] = BASE
    out = []
    if "subflow" in names:
        accounts, pin = (common.FLOWS / "accounts.yaml").read_text(), (common.FLOWS / "pin.yaml").read_text()
        inlined = inline_pin(accounts, pin)
        apps = {
            "accounts.yaml with the pin subflow": _app(tmp, "sub", _flows(tmp, "sub"), clock),
            "the same, pin's states inlined": _app(tmp, "inl", _flows(tmp, "inl", {"accounts.yaml": inlined}), clock),
        }
        for wrong, title in ((False, "the right PIN"), (True, "a wrong PIN, then the right one")):
            subflow, inline = list(apps)
            makes = {subflow: accounts_walk("/voice/pin/", wrong), inline: accounts_walk("/voice/accounts/pin_", wrong)}
            out.append(
                Workload(
                    f"accounts.yaml's balance lookup, {title} ({len(makes[next(iter(apps))]('CA'))} webhooks)",
                    apps,
                    makes,
                    [list(apps)[1]],
                    b"is 42.50 dollars.</Say>",
                    same=lambda body: body.replace(b"/voice/pin/", b"/voice/accounts/pin_"),
                    moment=OFFICE_HOURS,
                )
            )
    if "filler" in names:
        accounts = (common.FLOWS / "accounts.yaml").read_text()
        plain = re.sub(r"(?m)^(    # [^\n]*\n)*    filler: [^\n]*\n", "", accounts, count=1)
        assert plain != accounts, "accounts.yaml's balance lookup has no filler to take away"
        apps = {
            "accounts.yaml (its balance lookup with a filler, answered in time)": _app(
                tmp, "fil", _flows(tmp, "fil"), clock
            ),
            "the same without the filler": _app(tmp, "nofil", _flows(tmp, "nofil", {"accounts.yaml": plain}), clock),
        }
        out.append(
            Workload(
                f"accounts.yaml's balance lookup, the right PIN, filler or none "
                f"({len(accounts_walk('/voice/pin/', False)('CA'))} webhooks)",
                apps,
                dict.fromkeys(apps, accounts_walk("/voice/pin/", False)),
                [list(apps)[1]],
                b"is 42.50 dollars.</Say>",
                moment=OFFICE_HOURS,
            )
        )
    if "http" in names:
        register_order_hooks(api)
        orders = (common.FLOWS / "orders.yaml").read_text()
        assert "http://127.0.0.1:8025" in orders
        apps = {
            "orders.yaml (http:)": _app(
                tmp, "http", _flows(tmp, "http", {"orders.yaml": orders.replace("http://127.0.0.1:8025", api)}), clock
            ),
            "the same, a run: hook sending the request with httpx": _app(
                tmp, "hook", _flows(tmp, "hook", {"orders.yaml": orders_with_hook(orders, "bench_order_httpx")}), clock
            ),
            "the same, a run: hook answering without I/O": _app(
                tmp, "can", _flows(tmp, "can", {"orders.yaml": orders_with_hook(orders, "bench_order_canned")}), clock
            ),
        }
        out.append(
            Workload(
                "orders.yaml's order status (2 webhooks)",
                apps,
                dict.fromkeys(apps, ORDERS_WALK),
                list(apps)[1:],
                b"is shipped. Expected delivery: Friday.</Say>",
                moment=OFFICE_HOURS,
            )
        )
    if "main" in names:
        from benchmarks.baseline import app as baseline

        fix_baseline_clock(clock)
        flows = _flows(tmp, "main")
        apps = {
            "ivr (SQLite), journal off": _app(tmp, "main", flows, clock),
            "ivr (SQLite), journal on (SQLite)": _app(
                tmp, "journal", _flows(tmp, "journal"), clock, events=f"sqlite:///{tmp}/events.sqlite3"
            ),
            "baseline": baseline,
        }
        for moment, branch, expect in (
            (OFFICE_HOURS, "office hours", b"<Hangup />"),
            (AFTER_HOURS, "after hours", b"second message.</Say>"),
        ):
            make = main_call(common.office_open(moment))
            out.append(
                Workload(
                    f"main.yaml walked end to end, {branch} ({len(make('CA'))} webhooks): the reference",
                    apps,
                    dict.fromkeys(apps, make),
                    ["baseline", "ivr (SQLite), journal off"],
                    expect,
                    moment=moment,
                )
            )
    for number, workload in enumerate(out):
        workload.first_sid = 10 * number
    return out


# -- measuring -------------------------------------------------------------------------------


def check_same_twiml(workload: Workload) -> None:
    """Every app answers the walk with the same TwiML (as `workload.same` sees it), ending where it should."""
    bodies = {}
    for name, app in workload.apps.items():
        client = app.test_client()
        answers = [
            client.post(s.path, data=s.body, headers=s.headers, content_type=common.FORM)
            for s in workload.makes[name](f"CA{workload.first_sid + 9:02d}" + "f" * 30)
        ]
        assert all(r.status_code == 200 for r in answers), (name, [r.status_code for r in answers])
        bodies[name] = [workload.same(r.data) for r in answers]
        assert workload.expect in answers[-1].data, f"{workload.title}: {name} ends elsewhere:\n{answers[-1].data}"
    first = next(iter(bodies.values()))
    for name, body in bodies.items():
        assert body == first, f"{workload.title}: {name} answers differently:\n{body}\n{first}"


def measure(workload: Workload, *, rounds: int, calls: int, way: str) -> dict[str, list[float]]:
    """Interleaved batches of `calls` walks: each round runs every app once, the order rotating."""
    names = list(workload.apps)
    first = workload.first_sid + 4 * (way == "wsgi")  # a CallSid is never reused
    sources = {name: Requests(first + i, workload.makes[name]) for i, name in enumerate(names)}
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm each app (imports, caches, the store's connection, the HTTP pool)
        time_client(workload.apps[name], sources[name].batch(10))
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            batch = sources[name].batch(calls)
            gc.collect()
            app = workload.apps[name]
            if way == "client":
                times[name].append(time_client(app, batch))
            else:
                times[name].append(time_wsgi(app, [s.environ() for s in batch]))
    return times


def report(workload: Workload, times: dict[str, list[float]], how: str, rounds: int, calls: int) -> list[tuple]:
    """Print the table; return (subject, reference, ratio) for each reference."""
    per_walk = {name: len(workload.makes[name]("CA")) for name in workload.apps}
    medians = {name: common.median(values) for name, values in times.items()}
    rows = []
    for name in workload.apps:
        spread = f"{common.us(common.percentile(times[name], 0.1))} to {common.us(common.percentile(times[name], 0.9))}"
        ratios = [f"{medians[name] / medians[ref]:.3f}x" for ref in workload.refs]
        rows.append([name, common.us(medians[name]), spread, common.us(medians[name] * per_walk[name]), *ratios])
    print(f"### {workload.title}, {how}\n")
    print(f"Median of {rounds} interleaved batches of {calls} walks each.\n")
    headers = ["app", "time per webhook", "10th to 90th percentile of batches", "time per walk"]
    print(common.table([*headers, *(f"vs {ref}" for ref in workload.refs)], rows))
    print()
    subject = next(iter(workload.apps))
    pairs = [(subject, ref) for ref in workload.refs if ref != subject]
    pairs += [(name, subject) for name in workload.apps if subject in workload.refs and name not in workload.refs]
    return [(f"{workload.title}, {how}", name, ref, medians[name] / medians[ref]) for name, ref in pairs]


def profile(workload: Workload, calls: int) -> None:
    """Where each app's time goes on the walk: cProfile over WSGI calls, by cumulative time, ivr's functions."""
    for number, (name, app) in enumerate(workload.apps.items()):
        source = Requests(80 + 5 * workload.first_sid // 10 + number, workload.makes[name])
        time_client(app, source.batch(10))
        environs = [s.environ() for s in source.batch(calls)]
        print(f"### Profile: {name}, {workload.title}: {len(environs)} webhooks as WSGI calls, by cumulative time\n")
        walks = functools.partial(time_wsgi, app, environs)
        print(common.profile_table(walks, top=40, sort="cumulative", only=PROFILE_FOCUS))
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=["subflow", "filler", "http", "main"],
        default=["subflow", "filler", "http", "main"],
        help="subflow: accounts.yaml's PIN check; filler: its balance lookup with and without a filler; http: "
        "orders.yaml's HTTP step; main: main.yaml against the baseline",
    )
    parser.add_argument("--rounds", type=int, default=30, help="interleaved batches per app (default 30)")
    parser.add_argument("--calls", type=int, default=15, help="walks per batch (default 15)")
    parser.add_argument("--profile", action="store_true", help="also profile the subflow walk's apps with cProfile")
    args = parser.parse_args(argv)
    common.clean_environ()
    clock = FixedClock()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp, OrderApi() as api:
        loads = workloads(Path(tmp), args.workloads, clock, api)
        try:
            run(loads, clock, args, api)
        finally:
            for app in {id(app): app for load in loads for app in load.apps.values()}.values():
                writer = services(app).events if app is not baseline_app() else None
                if writer is not None:
                    writer.close()  # the journal's rows written before the directory goes
    return 0


def baseline_app():
    from benchmarks.baseline import app

    return app


def run(loads: list[Workload], clock: FixedClock, args: argparse.Namespace, api: str) -> None:
    """Check every workload's answers, then measure and report each, both ways; profile the subflow walks if asked."""
    for workload in loads:
        clock.set(workload.moment)
        check_same_twiml(workload)
    common.print_header("Issue 16's constructs: shipped flows with and without them, in process")
    print(f"The order API: {api} (a process of its own).\n")
    verdicts = []
    started = time.perf_counter()
    for workload in loads:
        clock.set(workload.moment)
        for way, how in WAYS:
            times = measure(workload, rounds=args.rounds, calls=args.calls, way=way)
            verdicts += report(workload, times, how, args.rounds, args.calls)
    for title, subject, ref, ratio in verdicts:
        print(f"- {title}: {subject} is {ratio:.3f}x {ref}.")
    print(f"\nMeasured in {time.perf_counter() - started:.0f} s.\n")
    if args.profile:
        for workload in loads:
            if workload.title.startswith("accounts"):
                clock.set(workload.moment)
                profile(workload, args.calls * 10)


if __name__ == "__main__":
    raise SystemExit(main())
