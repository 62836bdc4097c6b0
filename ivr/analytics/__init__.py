"""The call journal and its reports: what happened on every call, as rows in a real database
(SQLite by default, PostgreSQL for many servers), and the figures made from them."""

from __future__ import annotations

from ivr.analytics.database import EventsDatabase, open_events
from ivr.analytics.writer import EventWriter

__all__ = ["EventWriter", "EventsDatabase", "open_events"]
