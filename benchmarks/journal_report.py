"""The call journal at a million rows: reports and drill-downs on SQLite and PostgreSQL, and the writer's rate.

Calls are generated for flows/main.yaml through its real states, row for row as the app's webhooks
write them (`ivr/web/analytics.py`: a `call` row and each state entered, each Gather's `key`,
`speech`, `no_input`, `no_match` or `max_reached`, each Dial's and Enqueue's outcome, each
recording, the hand-over to the `hours` flow, the final status callback; and per call its summary
in `calls`). Starts spread over `--days` days by weekday and hour of day (New York), office hours
taking the menu and other times the after-hours menu; callers from a pool (some call again), 2%
withheld. What callers do, by state:

- menu: 1 sales 28%, 2 support 38%, 3 voicemail 14%, 4 hours 12%, one in ten by voice; silence
  8%, a wrong key 4%, a hang-up 6% of each turn; three silences or wrong keys end with goodbye;
- support menu: 1 billing 45%, 2 tech 38%, 9 back to the menu 5%; silence, wrong key, hang-up;
- a Dial (sales, billing): completed 65% (the caller talks 1-10 minutes), no-answer 15%, busy 10%,
  failed 4%, the caller hangs up while it rings 6%; what does not connect goes to voicemail;
- the queue (tech): bridged 72%, the caller hangs up 28% (then voicemail's prompt, unheard);
- voicemail: a recording 78%, none 14%, a hang-up before the beep 8%;
- hours: hangs up after hearing them 70%, presses 2 to go back to the menu 18%, 1 to hear again 6%;
- 0.3% of calls get no final status callback (in progress for the report).

About ten rows a call. Bulk loads: SQLite through `EventsDatabase.write` (one transaction per
10,000 calls, every index in place), PostgreSQL through COPY, then VACUUM ANALYZE: what autovacuum
does on its own to an insert-only table soon after (PostgreSQL 13 and later vacuum on inserts), which
sets the visibility map that index-only scans need (`--no-vacuum` measures the table as loaded).

Then, median of `--repeat` runs each: `build_report` over the whole range and over its last day,
`recent_calls`, `state_calls` (menu) and `call_steps` of one call; the target (issue 15) is a report
under 2 s at 1,000,000 rows, on each database. Then the writer's sustained rate on the loaded
database: webhooks of new calls handed to an `EventWriter` as the app hands them (rows and the
call's summary per webhook), written in batches of about 2,000 rows, as its thread does under load;
rows per second and webhooks per second of writing (the thread's time only), against the HTTP
benchmark's webhooks per second.

Run (about four minutes at a million rows):

    python -m benchmarks.journal_report
    python -m benchmarks.journal_report --rows 100000 --databases sqlite   # quick
    python -m benchmarks.journal_report --explain                          # and the queries' plans
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import common

TARGET = 2.0  # seconds, a report at a million rows
UNTIL = datetime(2026, 12, 1, tzinfo=UTC).timestamp()  # the generated calls end here (a Tuesday, 0:00 UTC)
DAY = 86400.0
SOURCE = "twilio"
# Calls per hour of the day in New York, relative (a business line: mornings and early afternoons).
HOURS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 20, 22, 21, 18, 19, 20, 18, 15, 10, 7, 5, 4, 3, 2, 1)
PROMPTS = {"menu": 11.0, "after_hours_menu": 7.0, "support_menu": 8.0, "again": 6.0, "voicemail": 5.0}


# -- the calls ---------------------------------------------------------------------------------


class Webhook:
    """One webhook's share of the journal: its event rows, and the call's summary it writes (`ANSWERED`) or
    closes (`ENDED`)."""

    __slots__ = ("answered", "ended", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.answered: tuple | None = None
        self.ended: tuple | None = None


class Call:
    """One generated call of main.yaml: its webhooks, in order."""

    def __init__(self, rng: random.Random, sid: str, start: float, caller: str | None) -> None:
        self.rng, self.sid, self.caller = rng, sid, caller
        self.start = self.t = start
        self.webhooks: list[Webhook] = []
        self.hook: Webhook | None = None
        self.waiting: str | None = None
        self.ends = 0
        self.left: float | None = None
        self.served = start  # when the document the caller is in was served

    # -- rows, as journal_answer writes them
    def webhook(self, wait: float = 0.0) -> Webhook:
        self._close()
        self.t += wait
        self.hook = Webhook()
        self.webhooks.append(self.hook)
        return self.hook

    def row(self, flow: str, state: str | None, kind: str, detail=None, given=None, confidence=None, seconds=None):
        self.hook.rows.append((self.sid, flow, state, kind, detail, given, confidence, seconds, None, self.t, None,
                               None, SOURCE))  # fmt: skip

    def enter(self, *states: str, flow: str = "main") -> None:
        for state in states:
            self.row(flow, state, "entered")
        self.waiting = states[-1]
        self.ends = 1 if states[-1] == "goodbye" else 0
        self.served = self.t

    def _close(self) -> None:
        if self.hook is not None and self.hook.ended is None:
            self.hook.answered = (self.sid, "main", SOURCE, self.caller, "inbound", self.start, self.t, self.waiting,
                                  self.ends, None, None, self.left, "main")  # fmt: skip

    def hang_up(self, after: float) -> None:
        """The final status callback (goodbye hangs up itself; a caller may hang up anywhere)."""
        self._close()
        if self.rng.random() < 0.003:  # the callback never came
            return
        end = self.t + after
        hook = Webhook()
        hook.rows.append((self.sid, None, None, "ended", "completed", None, None, None, None, end, end, 4, SOURCE))
        hook.ended = (self.sid, SOURCE, "inbound", end, "completed", round(end - self.start))
        self.webhooks.append(hook)
        self.hook = None

    # -- the caller
    def pause(self, state: str) -> float:
        return round(PROMPTS.get(state, 4.0) * self.rng.uniform(0.3, 1.0) + self.rng.lognormvariate(0.8, 0.6), 1)

    def gather(self, state: str, choices: dict[str, float], silence: float, wrong: float, hang: float,
               speech: dict[str, str] | None = None, flow: str = "main") -> str | None:  # fmt: skip
        """The caller's turns at a Gather until a route, a hang-up (None) or the third miss ("goodbye")."""
        misses = {"no_input": 0, "no_match": 0}
        while True:
            draw = self.rng.random()
            if draw < hang:
                self.hang_up(self.pause(state))
                return None
            draw -= hang
            if draw < silence + wrong:
                outcome = "no_input" if draw < silence else "no_match"
                waited = round(PROMPTS.get(state, 4.0) + 5.0, 1) if outcome == "no_input" else self.pause(state)
                self.webhook(waited)
                misses[outcome] += 1
                given = None if outcome == "no_input" else self.rng.choice("056789*#")
                kind = "max_reached" if misses[outcome] >= 3 else outcome
                self.row(flow, state, kind, outcome, given, None, waited)
                if kind == "max_reached":
                    self.enter("goodbye", flow=flow)
                    return "goodbye"
                self.served = self.t
                continue
            key = self.rng.choices(list(choices), weights=list(choices.values()))[0]
            waited = self.pause(state)
            self.webhook(waited)
            said = (speech or {}).get(key)
            if said and self.rng.random() < 0.1:
                self.row(flow, state, "speech", said, said, round(self.rng.uniform(0.6, 0.98), 2), waited)
            else:
                self.row(flow, state, "key", key, key, None, waited)
            return key

    def dial(self, state: str) -> bool:
        """A Dial's outcome; True when it connected (the call then ends with goodbye)."""
        outcome = self.rng.choices(["completed", "no-answer", "busy", "failed", "hangup"], [65, 15, 10, 4, 6])[0]
        if outcome == "hangup":
            self.hang_up(self.rng.uniform(3, 25))
            return True
        served = self.served
        rings = self.rng.uniform(4, 18) if outcome != "no-answer" else 20.0
        waited = round(rings + (self.rng.uniform(60, 600) if outcome == "completed" else 0.0), 1)
        self.webhook(waited)
        self.row("main", state, "dial", outcome, None, None, waited)
        if outcome == "completed":
            self.left = served
            self.enter("goodbye")
            self.hang_up(3.0)
            return True
        self.enter("voicemail")
        return False

    def voicemail(self) -> None:
        draw = self.rng.random()
        if draw < 0.08:
            self.hang_up(self.rng.uniform(1, 5))
            return
        if draw < 0.22:
            waited = round(PROMPTS["voicemail"] + 5.0, 1)
            self.webhook(waited)
            self.row("main", "voicemail", "no_input", "no_recording", None, None, waited)
            self.enter("goodbye")
        else:
            waited = round(PROMPTS["voicemail"] + self.rng.uniform(5, 90), 1)
            self.webhook(waited)
            self.row("main", "voicemail", "recording", "recorded", None, None, waited)
            self.enter("thanks_for_message", "goodbye")
        self.hang_up(4.0)

    def walk(self, office: bool) -> None:
        self.webhook()
        self.row("main", None, "call", "inbound")
        self.enter("welcome", "office_hours", "menu" if office else "after_hours_menu")
        state = self.waiting
        for _ in range(4):  # back from the hours flow or the support menu at most a few times
            if state == "after_hours_menu":
                key = self.gather(state, {"1": 55, "2": 45}, 0.08, 0.04, 0.10)
                state = {"1": "voicemail", "2": "hours"}.get(key, key)
            elif state == "menu":
                speech = {"1": "sales", "2": "support"}
                key = self.gather(state, {"1": 28, "2": 38, "3": 14, "4": 12}, 0.08, 0.04, 0.06, speech)
                state = {"1": "sales", "2": "support_menu", "3": "voicemail", "4": "hours"}.get(key, key)
                if state == "support_menu":
                    self.enter("support_menu")
            elif state == "support_menu":
                key = self.gather(state, {"1": 45, "2": 38, "9": 5}, 0.05, 0.03, 0.04, {"1": "billing"})
                state = {"1": "billing", "2": "tech", "9": "menu"}.get(key, key)
                if state == "menu":
                    self.enter("menu")
            elif state == "hours":
                self.enter("hours")
                self.webhook(0.2)  # the redirect to the hours flow
                self.row("hours", None, "call", "inbound")
                self.enter("hours", "again", flow="hours")
                draw = self.rng.random()
                if draw < 0.70:
                    self.hang_up(self.rng.uniform(2, 8))
                    return
                key = "2" if draw < 0.88 else "1"
                self.webhook(self.pause("again"))
                self.row("hours", "again", "key", key, key, None, self.t - self.served)
                if key == "1":
                    self.enter("hours", "again", flow="hours")
                    self.hang_up(self.rng.uniform(2, 8))
                    return
                self.enter("back_to_main", flow="hours")
                self.webhook(0.2)
                self.row("main", None, "call", "inbound")
                self.enter("menu")
                state = "menu"
                continue
            if state is None:
                return
            if state == "goodbye":
                self.hang_up(3.0)
                return
            if state in ("sales", "billing", "tech"):
                self.enter(state)
                if state == "tech":
                    bridged = self.rng.random() < 0.72
                    waited = round(self.rng.uniform(10, 300), 1)
                    served = self.served
                    self.webhook(waited + (self.rng.uniform(120, 900) if bridged else 0.0))
                    self.row("main", "tech", "queue", "bridged" if bridged else "hangup", None, None, waited)
                    if bridged:
                        self.left = served
                        self.enter("goodbye")
                        self.hang_up(3.0)
                    else:
                        self.enter("voicemail")
                        self.hang_up(0.5)
                    return
                if self.dial(state):
                    return
                state = "voicemail"
            if state == "voicemail":
                if self.waiting != "voicemail":
                    self.enter("voicemail")
                self.voicemail()
                return
        self.hang_up(5.0)


def office_open(moment: float) -> bool:
    return common.office_open(datetime.fromtimestamp(moment, UTC))


def generate(rows: int, *, days: int = 30, until: float = UNTIL, seed: int = 15, prefix: str = "CA") -> Iterator[Call]:
    """Calls of main.yaml, in order of their start over `days` days before `until`, until they hold `rows` event
    rows (the last call may pass it by a few)."""
    rng = random.Random(seed)
    first = until - days * DAY

    def start() -> float:  # a day (weekends a third as busy), an hour by HOURS, any second of it
        while True:
            day = rng.choices(range(days + 1), day_weights)[0]
            hour = rng.choices(range(24), HOURS)[0]
            moment = (midnight + timedelta(days=day)).replace(hour=hour).timestamp() + rng.uniform(0, 3600)
            if first <= moment < until - 3600:
                return moment

    midnight = datetime.fromtimestamp(first, common.NEW_YORK).replace(hour=0, minute=0, second=0, microsecond=0)
    day_weights = [0.35 if (midnight + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(days + 1)]
    # Rows per call, from a sample, say how many calls fill the range.
    sample = [Call(random.Random(seed + n), "CA", start(), None) for n in range(500)]
    for call in sample:
        call.walk(office_open(call.start))
    per_call = sum(len(hook.rows) for call in sample for hook in call.webhooks) / len(sample)
    starts = sorted(start() for _ in range(max(1, round(rows / per_call))))
    callers = max(1, int(len(starts) * 0.7))
    made = n = 0
    while made < rows:
        moment = starts[n] if n < len(starts) else start()  # short of rows: a few more, anywhere in the range
        caller = None if rng.random() < 0.02 else f"{rng.randrange(callers):032x}"
        call = Call(rng, f"{prefix}{n:0{34 - len(prefix)}d}", moment, caller)
        call.walk(office_open(moment))
        made += sum(len(hook.rows) for hook in call.webhooks)
        n += 1
        yield call


def summary(call: Call) -> tuple[tuple | None, tuple | None]:
    """The call's final summary, as the upserts of its webhooks leave it: (ANSWERED's values, ENDED's values)."""
    answered = [hook.answered for hook in call.webhooks if hook.answered is not None]
    ended = next((hook.ended for hook in call.webhooks if hook.ended is not None), None)
    if not answered:
        return None, ended
    last = answered[-1]
    left = next((a[11] for a in answered if a[11] is not None), None)
    return (*last[:5], call.start, *last[6:11], left, last[12]), ended


# -- loading -----------------------------------------------------------------------------------


def load(db, calls: Iterator[Call], chunk: int = 10_000, *, vacuum: bool = True) -> tuple[int, int, float]:
    """Bulk-load the calls: (event rows, calls, seconds)."""
    from ivr.analytics.database import EVENT_COLUMNS

    rows = count = 0
    start = time.perf_counter()
    copy = db.name == "postgresql"
    while True:
        events, answered, ended = [], [], []
        for call in calls:
            for hook in call.webhooks:
                events += hook.rows
            a, e = summary(call)
            if a is not None:
                answered.append(a)
            if e is not None:
                ended.append(e)
            count += 1
            if count % chunk == 0:
                break
        if not events:
            break
        rows += len(events)
        if not copy:
            db.write(events, answered, ended)
            continue
        closing = {e[0]: e for e in ended}
        with db.transaction() as cursor:
            with cursor.copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as out:
                for row in events:
                    out.write_row(row)
            with cursor.copy(
                "COPY calls (call_sid, flow, source, caller, direction, started_at, last_at, waiting_state, "
                "ended_by_flow, outcome, outcome_at, left_at, waiting_flow, ended_at, status, duration) FROM STDIN"
            ) as out:
                for a in answered:
                    e = closing.get(a[0])
                    out.write_row((*a, *(e[3:6] if e else (None, None, None))))
    if copy:
        with db._connection().cursor() as cursor:
            db._connection().commit()
            db._connection().autocommit = True
            verb = "VACUUM ANALYZE" if vacuum else "ANALYZE"
            cursor.execute(f"{verb} events")
            cursor.execute(f"{verb} calls")
            db._connection().autocommit = False
    return rows, count, time.perf_counter() - start


# -- timing ------------------------------------------------------------------------------------


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def check(report: dict) -> None:
    """The report agrees with itself: every call has one outcome; the menu's routes and misses add up."""
    from ivr.analytics.report import OUTCOMES

    assert report["calls"] == sum(report[k] for k in OUTCOMES), report
    assert sum(day[k] for day in report["outcomes_per_day"] for k in OUTCOMES) == report["calls"]
    assert sum(hour["calls"] for hour in report["calls_per_hour"]) == report["calls"]


def explain(db, flow_id: str, window) -> None:
    """The plans of the report's heaviest statements."""
    where, params = window.where("at")
    statements = {
        "waterfall counts": f"SELECT state, kind, detail, COUNT(*) FROM events WHERE flow = ? AND state IS NOT NULL"
        f"{where} GROUP BY state, kind, detail",
        "calls per state": f"SELECT state, COUNT(DISTINCT call_sid) FROM events WHERE flow = ? AND kind = 'entered'"
        f"{where} GROUP BY state",
        "calls": "SELECT started_at, ended_at FROM calls WHERE flow = ?" + window.where("started_at")[0],
    }
    prefix = "EXPLAIN QUERY PLAN " if db.name == "sqlite" else "EXPLAIN "
    for name, sql in statements.items():
        bound = [flow_id, *(params if "events" in sql else window.where("started_at")[1])]
        plan = db.query(prefix + sql, bound)
        print(f"- {name}: " + " / ".join(str(row[-1]) for row in plan))
    print()


def measure(db, flow, repeat: int, do_explain: bool) -> dict:
    from ivr.analytics.calls import call_steps, recent_calls, state_calls
    from ivr.analytics.report import Window, build_report

    windows = {"whole range": Window(source=SOURCE), "last day": Window(UNTIL - DAY, UNTIL, source=SOURCE)}
    out = {}
    for name, window in windows.items():
        seconds, report = timed(lambda w=window: build_report(db, flow, w), repeat)
        check(report)
        span = [window.since or 0, window.until or 1e12]
        rows = db.query("SELECT COUNT(*) FROM events WHERE at >= ? AND at < ?", span)
        out[f"build_report, {name}"] = (seconds, f"{report['calls']:,} calls, {rows[0][0]:,} rows")
        if do_explain:
            print(f"Plans on {db.name}, {name}:\n")
            explain(db, flow.id, window)
        seconds, listed = timed(lambda w=window: recent_calls(db, "main", w), repeat)
        out[f"recent_calls, {name}"] = (seconds, f"{len(listed)} calls")
        seconds, listed = timed(lambda w=window: state_calls(db, "main", "support_menu", w), repeat)
        out[f"state_calls support_menu, {name}"] = (seconds, f"{len(listed)} calls")
    sid = db.query("SELECT call_sid FROM calls ORDER BY started_at DESC LIMIT 1 OFFSET 500")[0][0]
    seconds, (_, steps) = timed(lambda: call_steps(db, sid), repeat)
    out["call_steps of one call"] = (seconds, f"{len(steps)} rows")
    return out


def writer_rate(db, calls: int, batch: int = 2000) -> dict:
    """New calls' webhooks handed to an EventWriter one by one; the time of its flushes of about `batch` rows."""
    from ivr.analytics.writer import EventWriter

    writer = EventWriter(lambda: db, background=False, batch=batch, limit=10**9)
    spent = 0.0
    rows = webhooks = 0
    for call in generate(calls * 10, until=UNTIL + 2 * DAY, days=1, seed=16, prefix="CAw"):
        for hook in call.webhooks:
            writer.add(hook.rows, hook.answered, hook.ended)
            rows += len(hook.rows)
            webhooks += 1
            if writer.pending() >= batch:
                start = time.perf_counter()
                writer.flush()
                spent += time.perf_counter() - start
    start = time.perf_counter()
    writer.flush()
    spent += time.perf_counter() - start
    return {"rows": rows, "webhooks": webhooks, "seconds": spent}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="event rows to generate (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30, help="days the calls spread over (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query; the median counts (default 3)")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=common.POSTGRES, help="the PostgreSQL server's URL")
    parser.add_argument("--writer-calls", type=int, default=20_000, help="calls written through the writer")
    parser.add_argument("--explain", action="store_true", help="print the plans of the report's main statements")
    parser.add_argument("--no-vacuum", action="store_true", help="PostgreSQL: ANALYZE only after loading, no VACUUM")
    args = parser.parse_args(argv)
    common.clean_environ()
    from ivr.analytics.database import open_events
    from ivr.core.loader import load_flow

    flow = load_flow(common.FLOWS / "main.yaml")
    common.print_header("The call journal at scale: reports and the writer")
    results = {}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-bench-")))
        for name in args.databases:
            if name == "sqlite":
                url = f"sqlite:///{tmp}/events.sqlite3"
            else:
                url = stack.enter_context(common.postgres_database(args.postgres))
                if url is None:
                    continue
            db = open_events(url)
            rows, calls, seconds = load(db, generate(args.rows, days=args.days), vacuum=not args.no_vacuum)
            speed = rows / seconds
            print(f"{name}: loaded {rows:,} rows of {calls:,} calls in {seconds:.1f} s ({speed:,.0f} rows/s).\n")
            timings = measure(db, flow, args.repeat, args.explain)
            rate = writer_rate(db, args.writer_calls)
            results[name] = (rows, calls, timings, rate)
            db.close()
    names = list(results)
    print(f"### Queries at {args.rows:,} rows (median of {args.repeat} runs)\n")
    rows = []
    for query in next(iter(results.values()))[2]:
        row = [query]
        for name in names:
            seconds, what = results[name][2][query]
            met = (" (met)" if seconds < TARGET else " (MISSED)") if query.startswith("build_report") else ""
            row.append(f"{seconds:.3f} s{met}, {what}")
        rows.append(row)
    print(common.table(["query", *names], rows))
    print()
    print("### The writer's sustained rate on the loaded journal\n")
    rows = []
    for name in names:
        rate = results[name][3]
        written = f"{rate['rows']:,} rows, {rate['webhooks']:,} webhooks"
        speeds = [f"{rate['rows'] / rate['seconds']:,.0f}", f"{rate['webhooks'] / rate['seconds']:,.0f}"]
        rows.append([name, written, f"{rate['seconds']:.2f} s", *speeds])
    print(common.table(["database", "written", "writing time", "rows/s", "webhooks/s"], rows))
    print()
    for name in names:
        seconds = max(v[0] for k, v in results[name][2].items() if k.startswith("build_report"))
        verdict = "met" if seconds < TARGET else "MISSED"
        print(f"- {name}: the slowest report at {results[name][0]:,} rows took {seconds:.2f} s; target < {TARGET} s: "
              f"{verdict}.")  # fmt: skip
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
