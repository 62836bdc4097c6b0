"""A flow's report from the journal: per state the waterfall, per flow the outcomes, per split its variants.

    report = build_report(db, flow, Window(since, until, source="twilio"))
    report["states"]["menu"]["no_input"]

Every state of the flow has every figure, zero where nothing happened; a time that cannot be
measured is None. docs/reports.md says what each figure counts. Events are read by their own time,
calls by the time they started: both within [since, until).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from ivr.analytics.database import EventsDatabase
from ivr.analytics.rows import MARKS
from ivr.analytics.stats import compare
from ivr.core import flow as f

__all__ = ["ALL_TWILIO", "OUTCOMES", "ROUTE_KINDS", "SOURCES", "Window", "build_report", "iso", "percentile", "tenths"]

SOURCES = ("twilio", "phone", "replay", "import")
OUTCOMES = (*MARKS, "abandoned", "in_progress")
# The kinds of row that leave a state by a route: their detail is the route taken.
ROUTE_KINDS = ("key", "speech", "dial", "queue", "recording", "pay", "agent", "input", "hook", "split")
_CONNECTED = {("dial", "completed"), ("dial", "answered"), ("queue", "bridged")}
REPEAT_WINDOW = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Window:
    """Which rows a report reads: [since, until) in Unix seconds (None: open), and their source (None: all)."""

    since: float | None = None
    until: float | None = None
    source: str | None = "twilio"

    def where(self, time_column: str, prefix: str = "") -> tuple[str, list]:
        """SQL conditions (joined with AND, leading AND included) and their parameters."""
        sql, params = "", []
        if self.since is not None:
            sql += f" AND {prefix}{time_column} >= ?"
            params.append(self.since)
        if self.until is not None:
            sql += f" AND {prefix}{time_column} < ?"
            params.append(self.until)
        if self.source is not None:
            sql += f" AND {prefix}source = ?"
            params.append(self.source)
        return sql, params


ALL_TWILIO = Window()  # every call Twilio made, whenever


def iso(moment: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC (Z); None stays None."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def percentile(histogram: Counter, fraction: float) -> float | None:
    """Nearest-rank percentile of a {value: count} histogram; None when it is empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, -(-total * fraction // 1))  # ceil(total * fraction), at least the first
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None  # pragma: no cover - the loop always reaches the rank


def tenths(seconds: float) -> int:
    """Seconds in whole tenths, halves rounded up, never below 0: as `EventsDatabase.tenths` does in SQL."""
    return max(0, int(seconds * 10 + 0.5))


def _spread(histogram: Counter) -> dict:
    """median and p90 of tenths of seconds, in seconds."""
    median, p90 = percentile(histogram, 0.5), percentile(histogram, 0.9)
    return {
        "median": None if median is None else round(median / 10, 1),
        "p90": None if p90 is None else round(p90 / 10, 1),
    }


def _empty_state() -> dict:
    return {
        "entered": 0,
        "calls": 0,
        "routes": {},
        "no_input": 0,
        "no_match": 0,
        "max_reached": 0,
        "hung_up_here": 0,
        "transferred": 0,
        "errors": 0,
        "texts": 0,
        "hook_ms": {"median": None, "p90": None},
        "seconds": {"median": None, "p90": None},
    }


def build_report(db: EventsDatabase, flow: f.Flow | str, window: Window | None = None) -> dict:
    """The report of `flow` (a loaded flow names every state; an id alone, only those with rows)."""
    window = window or ALL_TWILIO
    flow_id = flow if isinstance(flow, str) else flow.id
    states = {} if isinstance(flow, str) else {name: _empty_state() for name in flow.states}
    report = {
        "flow": flow_id,
        "since": iso(window.since),
        "until": iso(window.until),
        "source": window.source or "all",
        **_calls(db, flow_id, window),
        "states": states,
    }
    _waterfall(db, flow_id, window, states, _hung_up(db, flow_id, window))
    _agents(db, flow_id, window, states)
    report["splits"] = _splits(db, flow, window)
    return report


def _calls(db: EventsDatabase, flow_id: str, window: Window) -> dict:
    """Per-flow figures from the calls' summaries."""
    where, params = window.where("started_at")
    rows = db.query(
        f"SELECT started_at, ended_at, left_at, outcome, caller, last_at FROM calls WHERE flow = ?{where}",
        [flow_id, *params],
    )
    outcomes = dict.fromkeys(OUTCOMES, 0)
    in_ivr: Counter = Counter()
    hours: Counter = Counter()
    days: dict[str, Counter] = defaultdict(Counter)
    by_caller: dict[str, list[float]] = defaultdict(list)
    for started, ended, left, outcome, caller, last in rows:
        kind = outcome or ("abandoned" if ended is not None else "in_progress")
        outcomes[kind] += 1
        if ended is not None and last is not None:
            ended = max(ended, last)  # Twilio's Timestamp has whole seconds: never before the last webhook
        stop = left if left is not None else ended
        if started is not None and stop is not None:
            in_ivr[tenths(stop - started)] += 1
        if started is not None:
            hour = int(started // 3600) * 3600
            hours[hour] += 1
            days[datetime.fromtimestamp(started, UTC).date().isoformat()][kind] += 1
            if caller is not None:
                by_caller[caller].append(started)
    again = 0
    for times in by_caller.values():
        times.sort()
        if any(b - a <= REPEAT_WINDOW for a, b in itertools.pairwise(times)):
            again += 1
    return {
        "calls": len(rows),
        **outcomes,
        "time_in_ivr": _spread(in_ivr),
        "callers": len(by_caller),
        "callers_again_24h": again,
        "calls_per_hour": [{"hour": iso(hour), "calls": hours[hour]} for hour in sorted(hours)],
        "outcomes_per_day": [{"day": day, **{k: days[day][k] for k in OUTCOMES}} for day in sorted(days)],
    }


def _hung_up(db: EventsDatabase, flow_id: str, window: Window) -> dict[str, Counter]:
    """Per state of this flow, the calls whose caller hung up while left there, by tenths of seconds spent."""
    where, params = window.where("started_at")
    hung_up: dict[str, Counter] = defaultdict(Counter)
    for state, bucket, n in db.query(
        f"SELECT waiting_state, {db.tenths('ended_at - last_at')}, COUNT(*) FROM calls WHERE waiting_flow = ? "
        "AND ended_at IS NOT NULL AND status = 'completed' AND ended_by_flow = 0 AND left_at IS NULL"
        f"{where} GROUP BY waiting_state, {db.tenths('ended_at - last_at')}",
        [flow_id, *params],
    ):
        hung_up[state][None if bucket is None else int(bucket)] += n
    return hung_up


def _waterfall(db: EventsDatabase, flow_id: str, window: Window, states: dict, hung_up: dict) -> None:
    """Per-state figures from the events, and the hang-ups from the calls' summaries."""
    where, params = window.where("at")
    counts = db.query(
        f"SELECT state, kind, detail, COUNT(*) FROM events WHERE flow = ? AND state IS NOT NULL{where} "
        "GROUP BY state, kind, detail",
        [flow_id, *params],
    )
    for state, kind, detail, n in counts:
        figures = states.setdefault(state, _empty_state())
        if kind == "entered":
            figures["entered"] += n
        elif kind in ("no_input", "no_match", "max_reached"):
            figures[kind] += n
        elif kind == "error":
            figures["errors"] += n
        elif kind == "text":
            figures["texts"] += n
        if kind in ROUTE_KINDS and detail is not None:
            figures["routes"][detail] = figures["routes"].get(detail, 0) + n
        if (kind, detail) in _CONNECTED:
            figures["transferred"] += n
    entered = f"FROM events WHERE flow = ? AND kind = 'entered'{where}"
    if db.distinct_in_subquery:  # PostgreSQL hashes the pairs; its COUNT(DISTINCT) sorts them (3x slower)
        reached = db.query(f"SELECT state, COUNT(*) FROM (SELECT DISTINCT state, call_sid {entered}) d GROUP BY state",
                           [flow_id, *params])  # fmt: skip
    else:  # SQLite's COUNT(DISTINCT) reads the covering index in order
        reached = db.query(f"SELECT state, COUNT(DISTINCT call_sid) {entered} GROUP BY state", [flow_id, *params])
    for state, n in reached:
        states.setdefault(state, _empty_state())["calls"] = n
    times: dict[str, Counter] = defaultdict(Counter)
    for state, bucket, n in db.query(
        f"SELECT state, {db.tenths('seconds')}, COUNT(*) FROM events WHERE flow = ? AND seconds IS NOT NULL{where} "
        f"GROUP BY state, {db.tenths('seconds')}",
        [flow_id, *params],
    ):
        times[state][int(bucket)] += n
    for state, bucket, n in db.query(
        f"SELECT state, {db.tenths('latency_ms / 10')}, COUNT(*) FROM events WHERE flow = ? AND kind = 'hook' "
        f"AND latency_ms IS NOT NULL{where} GROUP BY state, {db.tenths('latency_ms / 10')}",
        [flow_id, *params],
    ):
        hook = states.setdefault(state, _empty_state())
        hook.setdefault("_hook", Counter())[int(bucket)] += n
    for state, spread in hung_up.items():
        figures = states.setdefault(state, _empty_state())
        figures["hung_up_here"] = sum(spread.values())
        times[state].update({k: v for k, v in spread.items() if k is not None})
    for state, histogram in times.items():
        states.setdefault(state, _empty_state())["seconds"] = _spread(histogram)
    for figures in states.values():
        hook = figures.pop("_hook", None)
        if hook:
            median, p90 = percentile(hook, 0.5), percentile(hook, 0.9)
            figures["hook_ms"] = {"median": median, "p90": p90}


def _agents(db: EventsDatabase, flow_id: str, window: Window, states: dict) -> None:
    """Per agent state: its conversations (their outcomes are its `routes`), turns, tool calls and the model's
    time to its first token."""
    where, params = window.where("at")
    found: dict[str, dict] = {}

    def figures(state: str) -> dict:
        if state not in found:
            found[state] = {"conversations": 0, "turns": 0, "replies": 0, "tools": {}, "_ms": Counter()}
        return found[state]

    for state, kind, detail, name, n in db.query(
        "SELECT state, kind, detail, input, COUNT(*) FROM events WHERE flow = ? AND kind IN ('agent', 'agent_turn', "
        f"'tool'){where} GROUP BY state, kind, detail, input",
        [flow_id, *params],
    ):
        agent = figures(state)
        if kind == "agent":
            agent["conversations"] += n
        elif kind == "agent_turn":
            agent["turns"] += n
        else:
            outcomes = agent["tools"].setdefault(name or "?", {})
            outcomes[detail or "none"] = outcomes.get(detail or "none", 0) + n
    for state, bucket, n in db.query(
        f"SELECT state, {db.tenths('latency_ms / 10')}, COUNT(*) FROM events WHERE flow = ? AND kind = 'agent_reply' "
        f"AND latency_ms IS NOT NULL{where} GROUP BY state, {db.tenths('latency_ms / 10')}",
        [flow_id, *params],
    ):
        agent = figures(state)
        agent["_ms"][int(bucket)] += n
        agent["replies"] += n
    for state, agent in found.items():
        histogram = agent.pop("_ms")
        agent["model_ms"] = {"median": percentile(histogram, 0.5), "p90": percentile(histogram, 0.9)}
        agent["turns_per_conversation"] = round(agent["turns"] / agent["conversations"], 1) if agent[
            "conversations"] else None  # fmt: skip
        states.setdefault(state, _empty_state())["agent"] = agent


def _splits(db: EventsDatabase, flow: f.Flow | str, window: Window) -> dict:
    """Each split's variants: calls, contained, abandoned, and each variant against the first one written."""
    flow_id = flow if isinstance(flow, str) else flow.id
    where, params = window.where("at", "e.")
    rows = db.query(
        "SELECT e.state, e.detail, c.outcome, c.ended_at IS NOT NULL, COUNT(DISTINCT e.call_sid) FROM events e "
        f"JOIN calls c ON c.call_sid = e.call_sid WHERE e.flow = ? AND e.kind = 'split'{where} "
        "GROUP BY e.state, e.detail, c.outcome, c.ended_at IS NOT NULL",
        [flow_id, *params],
    )
    found: dict[str, dict[str, dict]] = defaultdict(dict)
    for state, variant, outcome, ended, n in rows:
        figures = found[state].setdefault(variant, {"calls": 0, "contained": 0, "abandoned": 0, "ended": 0})
        figures["calls"] += n
        figures["ended"] += n if ended else 0
        if ended and outcome == "contained":  # rates are of ended calls: one still on the line is not counted yet
            figures["contained"] += n
        elif ended and outcome is None:
            figures["abandoned"] += n
    splits = {}
    for state, variants in found.items():
        order = _written_order(flow, state, variants)
        control = variants[order[0]]
        comparisons = []
        for name in order[1:]:
            other = variants[name]
            comparisons.append(
                {
                    "control": order[0],
                    "variant": name,
                    "containment": asdict(
                        compare(control["contained"], control["ended"], other["contained"], other["ended"])
                    ),
                    "abandonment": asdict(
                        compare(control["abandoned"], control["ended"], other["abandoned"], other["ended"])
                    ),
                }
            )  # fmt: skip
        splits[state] = {"variants": {name: variants[name] for name in order}, "comparisons": comparisons}
    return splits


def _written_order(flow: f.Flow | str, state: str, variants: dict) -> list[str]:
    """The variants in the order the split names them (the first is the control), then any others."""
    written = [v.target for v in flow.states[state].split] if not isinstance(flow, str) and state in flow.states else []
    return [name for name in written if name in variants] + sorted(set(variants) - set(written))
