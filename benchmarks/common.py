"""What the benchmarks share: Twilio's side of a call (parameters, signatures), the generated
flows, the apps under test, timing, and Markdown tables. Not a benchmark itself."""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import platform
import pstats
import shutil
import statistics
import sys
import time
import urllib.parse
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from twilio.request_validator import RequestValidator

from ivr.testing import generated_flow  # the generated flows the tests use too

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"
TOKEN = "12345678901234567890123456789012"
ACCOUNT = "AC" + "0" * 32
FORM = "application/x-www-form-urlencoded"
NEW_YORK = ZoneInfo("America/New_York")


def clean_environ() -> None:
    """Drop IVR_* and TWILIO_* from this process's environment: every app is set up by the benchmark alone."""
    for key in list(os.environ):
        if key.startswith(("IVR_", "TWILIO_")):
            del os.environ[key]


# -- flows -----------------------------------------------------------------------------------


def write_generated_flow(directory: Path, states: int) -> Path:
    """A flows directory holding only `gen.yaml` of `states` menus."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "gen.yaml").write_text(generated_flow(states))
    return directory


def menu_tree_flow(states: int) -> str:
    """A flow of `states` states shaped like a company's line: a main menu and submenus of four options
    (retries ending in goodbye), leaves that dial, look up the caller (a hook; its failure goes to the
    error state), inform and go back to the main menu, or take a message, and the flow's ways out
    ("0" operator, "*" repeat, "9" main menu). Shallow, unlike generated_survey. Its hook is not
    registered: for drawing and loading, not for calls."""
    fixed = ["operator", "voicemail", "thanks", "goodbye", "apology"]
    budget = max(states - 2 - len(fixed), 1)  # welcome and main_menu are the other two
    children: dict[str, list[str]] = {}
    queue, made = ["main_menu"], 0
    while queue and made < budget:  # breadth first: each menu gets up to four options
        menu = queue.pop(0)
        children[menu] = []
        for k in range(1, 5):
            if made == budget:
                break
            name = f"m{k}" if menu == "main_menu" else f"{menu}_{k}"
            children[menu].append(name)
            queue.append(name)
            made += 1
    leaves = [
        [
            "    say: Connecting you.",
            '    dial: {number: "+15005550006", timeout: 20}',
            "    routes: {completed: goodbye}",
            "    next: voicemail",
        ],
        ["    run: lookup_account", "    routes: {found: main_menu}", "    next: operator"],
        ["    say: Here is what you asked for.", "    next: main_menu"],
        ["    say: Please leave a message.", "    next: voicemail"],
    ]
    lines = [
        "title: menu tree",
        "start: welcome",
        "error_state: apology",
        "defaults:",
        '  routes: {"0": operator, "*": repeat, "9": main_menu}',
        "states:",
        "  welcome:",
        "    say: Thanks for calling.",
        "    next: main_menu",
    ]
    leaf = 0
    for name in ["main_menu", *(c for menu in children for c in children[menu])]:
        options = children.get(name)
        if options:
            keys = ", ".join(f'"{k}": {c}' for k, c in enumerate(options, 1))
            presses = ", ".join(f"for {c} press {k}" for k, c in enumerate(options, 1))
            lines += [
                f"  {name}:",
                f"    say: {presses.capitalize()}.",
                "    gather: {timeout: 5}",
                f"    routes: {{{keys}}}",
                '    no_input: {say: "Sorry?", max: 3}',
                "    on_max: goodbye",
            ]
        else:
            lines += [f"  {name}:", *leaves[leaf % len(leaves)]]
            leaf += 1
    lines += [
        "  operator:",
        "    say: Connecting you to the operator.",
        '    dial: "+15005550007"',
        "    next: goodbye",
        "  voicemail:",
        "    say: Please leave a message after the beep.",
        "    record: {max_length: 120}",
        "    routes: {no_recording: goodbye}",
        "    next: thanks",
        "  thanks:",
        "    say: Thank you.",
        "    next: goodbye",
        "  goodbye:",
        "    say: Goodbye.",
        "    hangup: true",
        "  apology:",
        "    say: Sorry, something went wrong.",
        "    hangup: true",
    ]
    return "\n".join(lines) + "\n"


AGENT_FLOWS = ("assistant.yaml",)  # loaded, they give a worker a thread per conversation (gunicorn_conf.py)


def copy_example_flows(directory: Path, *, agents: bool = False) -> Path:
    """The shipped flows (main and the flows it hands over to), copied so that edits under way do not matter;
    the flows with an agent state only when `agents` (the webhook benchmarks measure flows without one)."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in FLOWS.iterdir():
        if path.suffix in (".yaml", ".yml", ".py") and (agents or path.name not in AGENT_FLOWS):
            shutil.copy(path, directory / path.name)
    if (FLOWS / "catalogs").is_dir():  # the prompts of the flows that offer several languages
        shutil.copytree(FLOWS / "catalogs", directory / "catalogs", dirs_exist_ok=True)
    return directory


def office_open(now: datetime | None = None) -> bool:
    """main.yaml's office_hours condition: weekdays 9 to 5 in New York."""
    now = (now or datetime.now(NEW_YORK)).astimezone(NEW_YORK)
    return now.weekday() < 5 and 9 <= now.hour < 17


# -- the apps --------------------------------------------------------------------------------


ANALYTICS_KEY = "0123456789abcdef" * 4  # the journal's key for callers' hashes (production requires one)


def ivr_config(
    flows_dir: Path, store: str, *, env: str = "production", public_url: str = "http://localhost", events: str = "off"
) -> dict:
    """create_app's settings for a production-like app: a token (signatures checked against `public_url`,
    which requests are signed for), a spool beside the flows, no hot reload, and the call journal
    (`events`: an IVR_EVENTS URL, or off, the default, as issue 14's benchmarks ran)."""
    return {
        "IVR_EVENTS": events,
        "IVR_ANALYTICS_KEY": ANALYTICS_KEY,
        "IVR_ENV": env,
        "IVR_PUBLIC_URL": public_url,
        "IVR_SPOOL_DIR": str(Path(flows_dir).parent / "spool"),
        "IVR_FLOWS_DIR": str(flows_dir),
        "IVR_STORE": store,
        "IVR_HOT_RELOAD": "0",
        "IVR_PHONE": "0",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
    }


# -- Twilio's side ---------------------------------------------------------------------------


def caller_params(sid: str, status: str = "in-progress") -> dict:
    """The parameters Twilio sends with every voice webhook of an inbound call (as tests/conftest.py)."""
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": "+15551230000",
        "To": "+15559870000",
        "Caller": "+15551230000",
        "Called": "+15559870000",
    }
    for prefix in ("From", "To", "Caller", "Called"):
        for part in ("City", "State", "Zip", "Country"):
            params[prefix + part] = "US" if part == "Country" else ""
    return params


def press(digits: str) -> dict:
    """What Twilio adds when a Gather got keys."""
    return {"Digits": digits, "FinishedOnKey": "", "msg": "Gather End"}


DIAL_COMPLETED = {"DialCallStatus": "completed", "DialCallSid": "CA" + "d" * 32, "DialCallDuration": "30"}
RECORDED = {
    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'1' * 32}",
    "RecordingSid": "RE" + "1" * 32,
    "RecordingDuration": "12",
    "Digits": "#",
}


class Signed:
    """One webhook as Twilio would send it: path, form body and headers, signed for `base` + path."""

    __slots__ = ("body", "headers", "path")

    def __init__(self, base: str, path: str, params: dict, token: str = TOKEN) -> None:
        self.path = path
        self.body = urllib.parse.urlencode(params).encode()
        signature = RequestValidator(token).compute_signature(base + path, params)
        self.headers = {
            "X-Twilio-Signature": signature,
            # Twilio sends one with every webhook; ivr keeps the answer for a retry of the same token.
            "I-Twilio-Idempotency-Token": f"{params['CallSid']}-{path}",
        }

    def environ(self, host: str = "localhost") -> dict:
        """A fresh WSGI environ of this request (its body can be read once)."""
        from werkzeug.test import EnvironBuilder

        builder = EnvironBuilder(
            path=self.path,
            method="POST",
            base_url=f"http://{host}",
            data=self.body,
            content_type=FORM,
            headers=self.headers,
        )
        try:
            return builder.get_environ()
        finally:
            builder.close()


def menu_step(base: str, sid: str, flow: str = "gen", digits: str = "2") -> list[Signed]:
    """A whole menu step of the generated flow: the call enters, then its first Gather reports a key."""
    return [
        Signed(base, f"/voice/{flow}", caller_params(sid, "ringing")),
        Signed(base, f"/voice/{flow}/s0", {**caller_params(sid), **press(digits)}),
    ]


def main_walk(open_now: bool) -> list[tuple[str, dict, bytes]]:
    """A call walking flows/main.yaml end to end: (path, extra params, a piece the answer must hold).

    The pieces hold no address: URLs are absolute in production (IVR_PUBLIC_URL), relative elsewhere.

    In office hours: menu, 2 (support), 1 (billing: a Dial), the Dial completes, goodbye.
    After hours: the after-hours menu, 1 (voicemail: a Record), a recording, thanks and goodbye.
    """
    if open_now:
        return [
            ("/voice/main", {}, b'/voice/main/menu"'),
            ("/voice/main/menu", press("2"), b'/voice/main/support_menu"'),
            ("/voice/main/support_menu", press("1"), b"<Number>+15005550007</Number>"),
            ("/voice/main/billing", DIAL_COMPLETED, b"<Hangup />"),
        ]
    return [
        ("/voice/main", {}, b'/voice/main/after_hours_menu"'),
        ("/voice/main/after_hours_menu", press("1"), b"<Record "),
        ("/voice/main/voicemail", RECORDED, b"second message.</Say>"),
    ]


def signed_walk(base: str, sid: str, open_now: bool) -> list[tuple[Signed, bytes]]:
    """`main_walk` for one CallSid, every request signed for `base`."""
    out = []
    for i, (path, extra, expect) in enumerate(main_walk(open_now)):
        params = {**caller_params(sid, "ringing" if i == 0 else "in-progress"), **extra}
        out.append((Signed(base, path, params), expect))
    return out


# -- measuring -------------------------------------------------------------------------------


def rss_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def us(seconds: float) -> str:
    """Seconds as microseconds, for tables."""
    return f"{seconds * 1e6:,.0f} µs"


def ms(seconds: float) -> str:
    """Seconds as milliseconds, for tables."""
    return f"{seconds * 1e3:,.1f} ms"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line about where this ran."""
    import yaml

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0))
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({model}), this process on {cores}; "
        f"Python {platform.python_version()}, libyaml {'yes' if yaml.__with_libyaml__ else 'NO'}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}; ivr/*.py {code_fingerprint()}"
    )


def code_fingerprint() -> str:
    """A short hash of every module under ivr/: which version of the code a result belongs to."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "ivr").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return "sha256:" + digest.hexdigest()[:12]


def profile_table(fn, *, top: int = 15, sort: str = "tottime", only: str | None = None) -> str:
    """Run fn under cProfile; the `top` functions by `sort` (those matching the regex `only`) as a Markdown table."""
    import gc
    import re

    gc.collect()
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    stats.sort_stats(sort)
    total = sum(entry[2] for entry in stats.stats.values())  # tottime over all functions
    rows = []
    for func in stats.fcn_list:
        calls, _primitive, tottime, cumtime, _ = stats.stats[func]
        file, line, name = func
        where = f"{_short(file)}:{line}({name})" if line else name
        if only is not None and not re.search(only, where):
            continue
        rows.append([where, calls, f"{tottime * 1e3:.1f}", f"{tottime / total:.1%}", f"{cumtime * 1e3:.1f}",
                     f"{cumtime / total:.1%}"])  # fmt: skip
        if len(rows) == top:
            break
    return table(["function", "calls", "own ms", "own share", "cumulative ms", "cumulative share"], rows)


def _short(file: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def print_header(title: str) -> None:
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    command = ["python", "-m", spec.name] if spec is not None else ["python", sys.argv[0]]
    print(f"## {title}\n\n{machine()}  \n`{' '.join([*command, *sys.argv[1:]])}`\n")


# -- PostgreSQL ------------------------------------------------------------------------------

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@contextlib.contextmanager
def postgres_database(base: str = POSTGRES, name: str | None = None):
    """A new database of this run's own on the server at `base` (its URL), dropped afterwards; None (and why
    not, printed) when PostgreSQL does not answer."""
    try:
        import psycopg

        admin = psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3)
    except Exception as exc:
        print(f"PostgreSQL: skipped, it does not answer at {base} ({type(exc).__name__}: {exc}).\n")
        yield None
        return
    name = name or f"ivr_bench_{os.getpid()}"
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_backend_ticks(url: str) -> int:
    """User + system clock ticks of every server process connected to `url`'s database (from /proc)."""
    import psycopg

    database = url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
        mine = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    total = 0
    for pid in pids:
        if pid == mine:
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total
