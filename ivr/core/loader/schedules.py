"""Reading schedules: a flow's `schedules:` mapping, or the shared file that IVR_SCHEDULES names."""

from __future__ import annotations

import os
import re
from datetime import date, time
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from ivr.core.flow import Pos
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.source import Reader, compose
from ivr.core.schedules import DAYS, GROUPS, NAME_RE, SCHEDULE_KEYS, Schedule, Span
from ivr.errors import FlowError, FlowLoadError

__all__ = ["load_schedules_file", "read_schedules"]

_TIME = re.compile(r"(\d{1,2}):(\d{2})\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DAY_HELP = "use mon..sun, a range such as mon-fri, weekdays, weekend or daily"
_SPAN_HELP = 'use "HH:MM-HH:MM" such as "09:00-17:00", a list of them, or closed'


def load_schedules_file(path: str | os.PathLike) -> dict[str, Schedule]:
    """Load the shared schedules file (IVR_SCHEDULES); raise FlowLoadError listing every problem."""
    file = os.fspath(path)
    try:
        root = compose(Path(path).read_text(encoding="utf-8"), file)
    except OSError as exc:
        message = f"cannot read the schedules file (set IVR_SCHEDULES): {exc.strerror or exc}"
        raise FlowLoadError([FlowError(file, 1, 1, "", message)]) from None
    except FlowError as exc:
        raise FlowLoadError([exc]) from None
    reader = Reader(file)
    schedules: dict[str, Schedule] = {}
    if root is None:
        reader.error(Pos(file, 1, 1), "", "the schedules file is empty: it holds one `schedules:` mapping")
    elif (items := reader.mapping(root, "")) is not None:
        reader.known_keys(items, ("schedules",), "")
        if "schedules" in items:
            schedules = read_schedules(reader, items["schedules"][1], "schedules", default_timezone=None)
        else:
            reader.error(root, "schedules", "missing key: the file holds one `schedules:` mapping")
    if reader.errors:
        raise FlowLoadError(reader.errors)
    return schedules


def read_schedules(reader: Reader, node: yaml.Node, path: str, *, default_timezone: str | None) -> dict[str, Schedule]:
    """Read a `schedules:` mapping of name -> schedule; every problem goes to reader.error."""
    out: dict[str, Schedule] = {}
    for name, (key_node, value_node) in (reader.mapping(node, path) or {}).items():
        sub = path_join(path, name)
        if not NAME_RE.match(name):
            reader.error(key_node, sub, "schedule names may use only letters, digits, '_' and '-'")
            continue
        before = len(reader.errors)
        schedule = _schedule(reader, name, key_node, value_node, sub, default_timezone)
        if schedule is not None and len(reader.errors) == before:
            out[name] = schedule
    return out


def _schedule(reader: Reader, name, key_node, node, path: str, default_timezone: str | None) -> Schedule | None:
    items = reader.mapping(node, path)
    if items is None:
        return None
    reader.known_keys(items, SCHEDULE_KEYS, path)
    zone = default_timezone
    if "timezone" in items:
        zone = _timezone(reader, items["timezone"][1], path_join(path, "timezone"))
    elif zone is None:
        hint = "name one such as America/New_York (a flow's schedules may use its defaults.timezone)"
        reader.error(key_node, path_join(path, "timezone"), f"missing key: {hint}")
    weekly: dict[int, tuple[Span, ...]] = dict.fromkeys(range(7), ())
    if "hours" in items:
        weekly.update(_hours(reader, items["hours"][1], path_join(path, "hours")))
    closed = _closed(reader, items["closed"][1], path_join(path, "closed")) if "closed" in items else {}
    special: dict[date, tuple[Span, ...]] = {}
    if "special" in items:
        special_path = path_join(path, "special")
        for key, (day_node, value) in (reader.mapping(items["special"][1], special_path) or {}).items():
            key_path = path_join(special_path, key)
            day = _date(reader, day_node, key_path)
            if day in closed:
                line = closed[day].start_mark.line + 1
                reader.error(day_node, key_path, f"{day} is also listed under closed (line {line}): give a date once")
                continue
            spans = _spans(reader, value, key_path)
            if day is not None and spans is not None:
                special[day] = spans
    if zone is None:
        return None
    return Schedule(name, zone, weekly, frozenset(closed), special, reader.pos(key_node))


def _timezone(reader: Reader, node: yaml.Node, path: str) -> str | None:
    value = reader.string(node, path)
    try:
        return None if value is None else ZoneInfo(value).key
    except (ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(value, available_timezones()) or " (use an IANA name such as America/New_York)"
        reader.error(node, path, f"unknown time zone '{value}'{hint}")
        return None


def _hours(reader: Reader, node: yaml.Node, path: str) -> dict[int, tuple[Span, ...]]:
    out: dict[int, tuple[Span, ...]] = {}
    given: dict[int, yaml.Node] = {}
    for key, (key_node, value) in (reader.mapping(node, path) or {}).items():
        key_path = path_join(path, key)
        days = _days(reader, key, key_node, key_path)
        if days is None:
            continue
        if twice := [d for d in days if d in given]:
            first = given[twice[0]]
            where = f"'{first.value}' (line {first.start_mark.line + 1})"
            reader.error(key_node, key_path, f"{', '.join(DAYS[d] for d in twice)} already given by {where}")
            continue
        given.update(dict.fromkeys(days, key_node))
        spans = _spans(reader, value, key_path)
        if spans is not None:
            out.update(dict.fromkeys(days, spans))
    return out


def _days(reader: Reader, key: str, node: yaml.Node, path: str) -> tuple[int, ...] | None:
    word = key.strip().lower()
    if word in GROUPS:
        return GROUPS[word]
    ends = [part.strip() for part in word.split("-")]
    for part in ends:
        if part not in DAYS:
            options = DAYS + tuple(GROUPS) if len(ends) == 1 else DAYS
            reader.error(node, path, f"unknown day '{part}'{did_you_mean(part, options)}; {_DAY_HELP}")
            return None
    if len(ends) > 2:
        reader.error(node, path, f"bad day range '{key}'; {_DAY_HELP}")
        return None
    first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
    return tuple((first + n) % 7 for n in range((last - first) % 7 + 1))


def _spans(reader: Reader, node: yaml.Node, path: str) -> tuple[Span, ...] | None:
    """A day's spans: "HH:MM-HH:MM", a list of them, or closed; None after an error."""
    if isinstance(node, yaml.SequenceNode):
        items = [(item, path_join(path, i)) for i, item in enumerate(node.value)]
        if not items:
            reader.error(node, path, f"no spans in the list; {_SPAN_HELP}")
            return None
    elif isinstance(node, yaml.ScalarNode) and node.value.strip().lower() == "closed":
        return ()
    else:
        items = [(node, path)]
    before = len(reader.errors)
    read = []
    for item, item_path in items:
        text = reader.string(item, item_path)
        if text is not None and text.strip().lower() == "closed":
            reader.error(item, item_path, "closed cannot be listed with spans: write the day as closed alone")
        elif text is not None and (span := _span(reader, item, item_path, text.strip())) is not None:
            read.append((span, item, item_path))
    read.sort(key=lambda entry: entry[0].start)
    for (earlier, first, _), (span, item, item_path) in pairwise(read):
        if span.start < earlier.end:
            message = f"'{item.value}' overlaps '{first.value}' (spans on a day may touch, not overlap)"
            reader.error(item, item_path, message)
    return None if len(reader.errors) > before else tuple(span for span, _, _ in read)


def _span(reader: Reader, node: yaml.Node, path: str, text: str) -> Span | None:
    parts = text.split("-")
    if len(parts) != 2:
        reader.error(node, path, f"bad span '{text}'; {_SPAN_HELP}")
        return None
    start = _time(reader, node, path, parts[0].strip(), is_end=False)
    end = _time(reader, node, path, parts[1].strip(), is_end=True) if start is not None else None
    if start is None or end is None:
        return None
    if end > start:
        return Span(start, end)
    split = f"'{start:%H:%M}-24:00' and '00:00-{end:%H:%M}' on the next day"
    wrap = f"ends before it starts; a span may not wrap midnight: split it at 24:00 ({split})"
    reader.error(node, path, f"span '{text}' " + ("is empty: it ends when it starts" if end == start else wrap))
    return None


def _time(reader: Reader, node: yaml.Node, path: str, text: str, *, is_end: bool) -> time | None:
    match = _TIME.match(text)
    hour, minute = (int(match[1]), int(match[2])) if match else (99, 0)
    if (hour, minute) == (24, 0) and is_end:
        return time.max
    if hour < 24 and minute < 60:
        return time(hour, minute)
    if not match:
        reader.error(node, path, f"bad time '{text}' (use HH:MM, as in \"09:00-17:00\")")
    elif (hour, minute) == (24, 0):
        reader.error(node, path, "24:00 can only end a span (start the day at 00:00)")
    else:
        reader.error(node, path, f"bad time '{text}' (hours go 00-23, minutes 00-59; 24:00 may end a span)")
    return None


def _closed(reader: Reader, node: yaml.Node, path: str) -> dict[date, yaml.Node]:
    """The holidays: a list of dates, each given once."""
    out: dict[date, yaml.Node] = {}
    for i, item in enumerate(reader.sequence(node, path) or ()):
        day = _date(reader, item, path_join(path, i))
        if day in out:
            line = out[day].start_mark.line + 1
            reader.error(item, path_join(path, i), f"{day} is listed twice (first at line {line})")
        elif day is not None:
            out[day] = item
    return out


def _date(reader: Reader, node: yaml.Node, path: str) -> date | None:
    text = reader.string(node, path)
    if text is None:
        return None
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
        reason = " (use YYYY-MM-DD, such as 2026-12-25)"
    except ValueError as exc:
        reason = f": {exc}"
    reader.error(node, path, f"bad date '{text}'{reason}")
    return None
