"""Calls in the journal: a flow's recent calls, and one call's steps read like an execution log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ivr.analytics.database import EventsDatabase
from ivr.analytics.report import ALL_TWILIO, Window, iso

__all__ = ["CallSummary", "Step", "call_steps", "calls_per_flow", "format_steps", "recent_calls", "state_calls"]


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One call as `calls FLOW` lists it."""

    call_sid: str
    flow: str | None
    source: str
    caller: str | None
    started_at: float | None
    ended_at: float | None
    duration: float | None
    outcome: str
    last_state: str | None
    status: str | None

    def as_dict(self) -> dict:
        """The JSON form (times as ISO 8601)."""
        return {
            "call_sid": self.call_sid,
            "flow": self.flow,
            "source": self.source,
            "caller": self.caller,
            "started": iso(self.started_at),
            "ended": iso(self.ended_at),
            "duration": self.duration,
            "outcome": self.outcome,
            "last_state": self.last_state,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """One row of a call's story."""

    at: float
    state: str | None
    kind: str
    detail: str | None
    input: str | None
    confidence: float | None
    seconds: float | None
    latency_ms: float | None
    source: str
    flow: str | None = None

    def as_dict(self) -> dict:
        """The JSON form."""
        return {
            "at": iso(self.at),
            "flow": self.flow,
            "state": self.state,
            "kind": self.kind,
            "detail": self.detail,
            "input": self.input,
            "confidence": self.confidence,
            "seconds": self.seconds,
            "latency_ms": self.latency_ms,
        }


_SUMMARY = (
    "SELECT call_sid, flow, source, caller, started_at, ended_at, "
    "CASE WHEN duration IS NOT NULL THEN duration WHEN ended_at IS NOT NULL AND started_at IS NOT NULL "
    "THEN ended_at - started_at END, outcome, waiting_state, status FROM calls"
)


def _summary(row: tuple) -> CallSummary:
    sid, flow, source, caller, started, ended, duration, outcome, waiting, status = row
    shown = outcome or ("abandoned" if ended is not None else "in_progress")
    return CallSummary(sid, flow, source, caller, started, ended, duration, shown, waiting, status)


def recent_calls(db: EventsDatabase, flow: str, window: Window = ALL_TWILIO, limit: int = 50) -> list[CallSummary]:
    """A flow's calls, newest first."""
    where, params = window.where("started_at")
    rows = db.query(f"{_SUMMARY} WHERE flow = ?{where} ORDER BY started_at DESC LIMIT ?", [flow, *params, limit])
    return [_summary(row) for row in rows]


def calls_per_flow(db: EventsDatabase, window: Window = ALL_TWILIO) -> dict[str, int]:
    """How many calls each flow had in the window (the reports page's index), by flow id."""
    where, params = window.where("started_at")
    rows = db.query(f"SELECT flow, COUNT(*) FROM calls WHERE flow IS NOT NULL{where} GROUP BY flow", params)
    return {flow: n for flow, n in rows}


def state_calls(db: EventsDatabase, flow: str, state: str, window: Window = ALL_TWILIO, limit: int = 50) -> list:
    """The calls that reached a state most recently, newest first (the reports page's drill-down)."""
    where, params = window.where("at")
    sids = db.query(
        f"SELECT call_sid, MAX(at) FROM events WHERE flow = ? AND state = ? AND kind = 'entered'{where} "
        "GROUP BY call_sid ORDER BY MAX(at) DESC LIMIT ?",
        [flow, state, *params, limit],
    )
    if not sids:
        return []
    marks = ", ".join("?" * len(sids))
    found = {row[0]: _summary(row) for row in db.query(f"{_SUMMARY} WHERE call_sid IN ({marks})", [s for s, _ in sids])}
    return [found[sid] for sid, _ in sids if sid in found]


def call_steps(db: EventsDatabase, sid: str) -> tuple[CallSummary | None, list[Step]]:
    """A call's summary and its rows, in Twilio's order where callbacks give one (Timestamp, SequenceNumber),
    the final status last (Twilio's Timestamp has whole seconds: it may read earlier than the last webhook)."""
    summary = db.query(f"{_SUMMARY} WHERE call_sid = ?", [sid])
    rows = db.query(
        "SELECT COALESCE(twilio_at, at), state, kind, detail, input, confidence, seconds, latency_ms, source, flow "
        "FROM events WHERE call_sid = ? ORDER BY kind = 'ended', COALESCE(twilio_at, at), COALESCE(seq, -1), id",
        [sid],
    )
    return (_summary(summary[0]) if summary else None), [Step(*row) for row in rows]


def format_steps(summary: CallSummary | None, steps: list[Step]) -> str:
    """A call's story as text: a header, then one line per row with its time, state and what happened."""
    lines = []
    if summary is not None:
        lines.append(
            f"{summary.call_sid}  flow {summary.flow or '-'}  {summary.source}  caller {summary.caller or 'withheld'}  "
            f"{summary.outcome}  {_seconds(summary.duration)}"
        )
    start = steps[0].at if steps else 0.0
    for step in steps:
        what = step.kind
        if step.detail is not None:
            what += f" {step.detail}"
        if step.input is not None:
            what += f" input={step.input!r}"
        if step.confidence is not None:
            what += f" confidence={step.confidence:.2f}"
        if step.seconds is not None:
            what += f" after {_seconds(step.seconds)}"
        if step.latency_ms is not None:
            what += f" in {step.latency_ms:.0f} ms"
        clock = datetime.fromtimestamp(step.at, UTC).strftime("%H:%M:%S")
        where = step.state or "(call)"
        if summary is not None and step.flow not in (None, summary.flow):  # a state of another flow (a redirect)
            where = f"{step.flow}/{where}"
        lines.append(f"  {clock} +{max(0.0, step.at - start):7.1f}s  {where:<20} {what}")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
