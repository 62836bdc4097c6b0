"""A report as text (for a terminal), CSV (a row per state, for a spreadsheet) or JSON (for scripts)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

from ivr.analytics.report import OUTCOMES, SOURCES, Window

__all__ = ["FORMATS", "STATE_COLUMNS", "WINDOW_SOURCES", "parse_moment", "parse_window", "render"]

FORMATS = ("text", "json", "csv")
STATE_COLUMNS = (
    "entered", "calls", "no_input", "no_match", "max_reached", "hung_up_here", "transferred", "errors", "texts",
)  # fmt: skip
_RELATIVE = re.compile(r"(\d+)([mhdw])\Z")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
WINDOW_SOURCES = (*SOURCES, "all")


def parse_moment(text: str, now: datetime | None = None) -> float:
    """--since/--until: an ISO date or time (UTC unless it says), or a span back from now (30m, 24h, 7d, 2w)."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        try:
            return ((now or datetime.now(UTC)) - timedelta(**{unit: amount})).timestamp()
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1: give a shorter span, or a date") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give an ISO date or time such as 2026-11-25 or 2026-11-25T09:00-05:00, "
            "or a span back from now such as 24h, 7d or 2w"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_window(since: str | None, until: str | None, source: str = "twilio") -> Window:
    """The window `report` and the reports page read: since and until as `parse_moment` reads them (empty:
    open), source one of WINDOW_SOURCES (`all`: every source); ValueError saying what to give instead."""
    if source not in WINDOW_SOURCES:
        raise ValueError(f"source {source!r} is not one of {', '.join(WINDOW_SOURCES)}")
    start = parse_moment(since) if since else None
    end = parse_moment(until) if until else None
    if start is not None and end is not None and end <= start:
        raise ValueError("until must come after since")
    return Window(start, end, None if source == "all" else source)


def render(report: dict, fmt: str) -> str:
    """The report in `fmt` (one of FORMATS)."""
    if fmt == "json":
        return json.dumps(report, indent=2, sort_keys=False)
    if fmt == "csv":
        return _csv(report)
    return _text(report)


def _routes(routes: dict) -> str:
    return " ".join(f"{name}:{n}" for name, n in sorted(routes.items(), key=lambda item: (-item[1], item[0])))


def _agent(agent: dict) -> str:
    """An agent state's line: its conversations' turns, the model's time to its first token, its tool calls."""
    ms = agent["model_ms"]
    tools = ", ".join(f"{name} {sum(outcomes.values())}" for name, outcomes in sorted(agent["tools"].items()))
    each = _blank(agent["turns_per_conversation"]) or "-"
    latency = f"median {_blank(ms['median']) or '-'} ms, p90 {_blank(ms['p90']) or '-'} ms"
    return (f"agent: {agent['conversations']} conversations, {agent['turns']} turns ({each} each), "
            f"model first token {latency}; tools: {tools or 'none'}")  # fmt: skip


def _csv(report: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["flow", "state", *STATE_COLUMNS, "seconds_median", "seconds_p90", "routes"])
    for name, figures in report["states"].items():
        writer.writerow(
            [report["flow"], name, *(figures[c] for c in STATE_COLUMNS), _blank(figures["seconds"]["median"]),
             _blank(figures["seconds"]["p90"]), _routes(figures["routes"])]
        )  # fmt: skip
    return out.getvalue()


def _blank(value) -> str:
    return "" if value is None else str(value)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def _text(report: dict) -> str:
    calls = report["calls"]
    window = f"{report['since'] or 'the beginning'} to {report['until'] or 'now'}"
    lines = [f"Flow {report['flow']}: {calls} calls ({report['source']}), {window}"]
    for outcome in OUTCOMES:
        lines.append(f"  {outcome:<12} {report[outcome]:>7}  {_percent(report[outcome], calls)}")
    spread = report["time_in_ivr"]
    lines.append(f"  time in the IVR: median {_blank(spread['median']) or '-'} s, p90 {_blank(spread['p90']) or '-'} s")
    lines.append(f"  callers: {report['callers']}, calling again within 24 h: {report['callers_again_24h']}")
    lines.append("")
    header = f"  {'state':<22}" + "".join(f"{c.replace('_', ' '):>13}" for c in STATE_COLUMNS) + "   median     p90"
    lines.append(header)
    for name, figures in report["states"].items():
        seconds = figures["seconds"]
        row = f"  {name:<22}" + "".join(f"{figures[c]:>13}" for c in STATE_COLUMNS)
        row += f"  {_blank(seconds['median']) or '-':>7} {_blank(seconds['p90']) or '-':>7}"
        lines.append(row)
        if figures["routes"]:
            lines.append(f"  {'':<22}routes: {_routes(figures['routes'])}")
        if agent := figures.get("agent"):
            lines.append(f"  {'':<22}{_agent(agent)}")
    for state, split in report.get("splits", {}).items():
        lines.append("")
        lines.append(f"  split {state}:")
        for name, figures in split["variants"].items():
            lines.append(
                f"    {name:<20} {figures['calls']:>7} calls  "
                f"contained {_percent(figures['contained'], figures['ended'])}  "
                f"abandoned {_percent(figures['abandoned'], figures['ended'])}"
            )
        for comparison in split["comparisons"]:
            for measure in ("containment", "abandonment"):
                result = comparison[measure]
                lines.append(f"    {comparison['variant']} vs {comparison['control']}, {measure}: {result['verdict']}")
    return "\n".join(lines)
