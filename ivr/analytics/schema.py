"""The journal's schema, versioned: each migration is one step, written for SQLite and PostgreSQL.

A database remembers the version it is at (`journal_schema`); opening it applies the steps it
lacks, in one transaction, under a lock, so that several workers starting together migrate once.
Later issues add columns by appending a step, never by editing one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "latest"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: its version and its statements on each database."""

    version: int
    summary: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


def _both(*statements: str, serial: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The same statements for both databases; `{id}` is each one's auto-incrementing key, `{real}` its float."""
    sqlite = tuple(s.format(id="INTEGER PRIMARY KEY", real="REAL") for s in statements)
    postgresql = tuple(s.format(id=f"{serial} PRIMARY KEY", real="DOUBLE PRECISION") for s in statements)
    return sqlite, postgresql


# Times are Unix seconds (floats): the same arithmetic on both databases, and no time zone to get wrong.
_V1 = _both(
    """CREATE TABLE events (
        id {id},
        call_sid TEXT NOT NULL,
        flow TEXT,
        state TEXT,
        kind TEXT NOT NULL,
        detail TEXT,
        input TEXT,
        confidence {real},
        seconds {real},
        latency_ms {real},
        at {real} NOT NULL,
        twilio_at {real},
        seq INTEGER,
        source TEXT NOT NULL
    )""",
    """CREATE TABLE calls (
        call_sid TEXT PRIMARY KEY,
        flow TEXT,
        source TEXT NOT NULL,
        caller TEXT,
        direction TEXT,
        started_at {real},
        last_at {real},
        waiting_state TEXT,
        waiting_flow TEXT,
        ended_by_flow INTEGER,
        outcome TEXT,
        outcome_at {real},
        left_at {real},
        ended_at {real},
        status TEXT,
        duration {real}
    )""",
    "CREATE INDEX events_call ON events (call_sid, id)",
    "CREATE INDEX calls_flow_started ON calls (flow, started_at)",
    serial="BIGSERIAL",
)
# The report reads a flow's rows in a window, by kind; the drill-down a state's recent calls; privacy
# requests find a caller's calls.
_V2 = _both(
    "CREATE INDEX events_flow_at ON events (flow, at, kind)",
    "CREATE INDEX events_flow_state_at ON events (flow, state, at)",
    "CREATE INDEX calls_caller ON calls (caller, started_at)",
    "CREATE INDEX events_at ON events (at)",
    serial="BIGSERIAL",
)

# A report over the whole journal read every row through (flow, state, at) and then the table, once
# per figure: 6 s on SQLite at a million rows (benchmarks/journal_report.py). Two covering indexes:
# the waterfall's counts and times read (flow, state, kind, detail, source, at, seconds) alone, the
# calls per state, the drill-down, hooks and splits (flow, kind, state, call_sid, source, at) alone.
# The second serves everything (flow, state, at) did.
_V3 = _both(
    "CREATE INDEX events_flow_state_kind ON events (flow, state, kind, detail, source, at, seconds)",
    "CREATE INDEX events_flow_kind_state ON events (flow, kind, state, call_sid, source, at)",
    "DROP INDEX events_flow_state_at",
    serial="BIGSERIAL",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events and calls", *_V1),
    Migration(2, "indexes for reports, drill-downs and privacy requests", *_V2),
    Migration(3, "covering indexes for reports over the whole journal", *_V3),
)


def latest() -> int:
    """The version this code writes."""
    return MIGRATIONS[-1].version
