"""Opening hours: named weekly schedules with holidays and special days, each in its own time zone.

A flow declares schedules under `schedules:`; shared ones live in the file `IVR_SCHEDULES` names,
a YAML mapping with the single key `schedules:`. Conditions and templates ask `open('support')`.

    schedules:
      support:
        timezone: America/New_York        # optional in a flow: else its defaults.timezone
        hours:
          mon-fri: "09:00-17:00"          # a day (mon..sun), a range (mon-fri), weekdays, weekend, daily
          sat: ["10:00-12:00", "13:00-15:00"]   # several spans
          sun: closed                     # days not named are closed too
        closed: ["2026-12-25", "2027-01-01"]    # holidays: whole days
        special:
          "2026-12-24": "09:00-12:00"     # a partial day: replaces that day's normal hours
          "2026-12-31": closed

Times are HH:MM on the schedule's wall clock; a span includes its start, not its end, and may
not cross midnight: write "22:00-24:00" and "00:00-02:00" on the next day. Spans on a day may
touch, not overlap; each day and date is given once. When the clocks change, the wall clock
decides: "01:00-03:00" on the fall-back day covers both 01:xx hours.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import product
from zoneinfo import ZoneInfo

from ivr.core.flow import Pos
from ivr.core.hints import did_you_mean

__all__ = ["DAYS", "GROUPS", "HORIZON", "NAME_RE", "SCHEDULE_KEYS", "Schedule", "Span", "open_function"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GROUPS = {"weekdays": (0, 1, 2, 3, 4), "weekend": (5, 6), "daily": (0, 1, 2, 3, 4, 5, 6)}
SCHEDULE_KEYS = ("timezone", "hours", "closed", "special")
NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
HORIZON = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Span:
    """Open from `start` (included) to `end` (excluded; time.max stands for 24:00) on one day."""

    start: time
    end: time

    def covers(self, moment: time) -> bool:
        """Whether a wall-clock time falls in the span."""
        return self.start <= moment and (moment < self.end or self.end == time.max)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A named set of opening hours: weekly spans, closed dates and special days, in one time zone."""

    name: str
    timezone: str
    weekly: dict[int, tuple[Span, ...]]
    closed: frozenset[date]
    special: dict[date, tuple[Span, ...]]
    pos: Pos

    def spans_on(self, day: date) -> tuple[Span, ...]:
        """The hours of a date: its special hours, none on a holiday, else its weekday's."""
        if day in self.special:
            return self.special[day]
        return () if day in self.closed else self.weekly.get(day.weekday(), ())

    def is_open(self, now: datetime) -> bool:
        """Whether the schedule is open at an aware instant, read on the schedule's wall clock."""
        local = _aware(now).astimezone(ZoneInfo(self.timezone))
        return any(span.covers(local.time()) for span in self.spans_on(local.date()))

    def next_change(self, now: datetime) -> datetime | None:
        """When it next opens or closes, in the schedule's zone; None if not within 14 days."""
        zone = ZoneInfo(self.timezone)
        start = _aware(now).astimezone(UTC)
        state = self.is_open(start)
        for moment in sorted(self._candidates(start.astimezone(zone).date(), zone)):
            if start < moment <= start + HORIZON and self.is_open(moment) != state:
                return moment.astimezone(zone)
        return None

    def _candidates(self, first: date, zone: ZoneInfo) -> set[datetime]:
        # The hours can only change where the wall clock reaches a span's edge (under either fold,
        # as fall-back repeats an hour) or where it jumps (spring-forward skips the edges inside).
        out: set[datetime] = set()
        for n in range(HORIZON.days + 2):
            day = first + timedelta(days=n)
            edges = {time(0)} | {t for s in self.spans_on(day) for t in (s.start, s.end) if t != time.max}
            for edge, fold in product(edges, (0, 1)):
                out.add(datetime.combine(day, edge.replace(fold=fold), zone).astimezone(UTC))
            out.update(_clock_changes(day, zone))
        return out


def _clock_changes(day: date, zone: ZoneInfo) -> list[datetime]:
    """The UTC instant the zone's offset changes during a local day, found by bisection."""
    low, high = (int(datetime.combine(d, time(0), zone).timestamp()) for d in (day, day + timedelta(days=1)))

    def offset(stamp: int) -> timedelta | None:
        return datetime.fromtimestamp(stamp, zone).utcoffset()

    if offset(low) == offset(high):
        return []
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
    return [datetime.fromtimestamp(high, UTC)]


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"a schedule needs an aware datetime, got the naive {now.isoformat()}")
    return now


def open_function(schedules: dict[str, Schedule], now: datetime) -> Callable[[str], bool]:
    """`open(name)` for conditions and templates: whether that schedule is open at `now`."""
    _aware(now)

    def open_(name: str) -> bool:
        schedule = schedules.get(name)
        if schedule is None:
            known = ", ".join(sorted(schedules)) or "none"
            raise KeyError(f"unknown schedule '{name}'{did_you_mean(name, schedules)}; known schedules: {known}")
        return schedule.is_open(now)

    return open_
