"""Opening hours: weekly spans, holidays, special days, clock changes, open(name) and every mistake."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.core.loader import load_schedules_file, read_schedules
from ivr.core.loader.source import Reader, compose
from ivr.core.schedules import Span, open_function
from ivr.core.templates import compile_condition
from ivr.errors import FlowLoadError

HERE = Path(__file__).resolve().parent / "flows" / "schedules"
BAD = HERE / "bad"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def schedules():
    return load_schedules_file(HERE / "shared.yaml")


def ny(text: str, fold: int = 0) -> datetime:
    """A wall-clock time in New York."""
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK, fold=fold)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def errors_of(name: str):
    with pytest.raises(FlowLoadError) as info:
        load_schedules_file(BAD / name)
    return info.value.errors


# -- hours -----------------------------------------------------------------------------------

WEEK = [  # 2026-11-23 is a Monday; New York keeps EST (UTC-5) all that week
    ("2026-11-23 08:59", False),
    ("2026-11-23 09:00", True),
    ("2026-11-23 16:59", True),
    ("2026-11-23 17:00", False),
    ("2026-11-27 12:00", True),  # Friday, the end of mon-fri
    ("2026-11-28 09:59", False),  # Saturday: two spans
    ("2026-11-28 10:00", True),
    ("2026-11-28 11:59", True),
    ("2026-11-28 12:00", False),
    ("2026-11-28 12:59", False),
    ("2026-11-28 13:00", True),
    ("2026-11-28 15:00", False),
    ("2026-11-29 12:00", False),  # Sunday: closed
]


@pytest.mark.parametrize(("local", "expected"), WEEK)
def test_weekly_hours_with_several_spans_a_day(schedules, local, expected):
    assert schedules["support"].is_open(ny(local)) is expected


@pytest.mark.parametrize("local", ["2026-12-25 10:00", "2027-01-01 10:00"])
def test_holiday_is_closed_all_day(schedules, local):
    assert schedules["support"].is_open(ny(local)) is False
    assert schedules["support"].is_open(ny("2026-12-28 10:00")) is True  # the Monday after: normal hours


@pytest.mark.parametrize(
    ("local", "expected"),
    [("2026-12-24 08:59", False), ("2026-12-24 11:59", True), ("2026-12-24 12:00", False), ("2026-12-24 16:00", False)],
)
def test_partial_day_replaces_that_weekdays_hours(schedules, local, expected):
    assert schedules["support"].is_open(ny(local)) is expected


def test_special_day_can_close_a_whole_weekday(schedules):
    assert schedules["support"].is_open(ny("2026-12-31 10:00")) is False  # a Thursday
    assert schedules["support"].is_open(ny("2026-12-30 10:00")) is True


def test_span_to_24_00_runs_into_the_next_days_span(schedules):
    late = schedules["late"]
    london = ZoneInfo("Europe/London")
    assert late.is_open(datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=london)) is True  # a Friday
    assert late.is_open(datetime(2026, 11, 28, 0, 0, tzinfo=london)) is True
    assert late.is_open(datetime(2026, 11, 28, 2, 0, tzinfo=london)) is False
    assert late.is_open(datetime(2026, 11, 27, 19, 59, tzinfo=london)) is False


# -- clock changes ---------------------------------------------------------------------------

DST = [
    # spring forward, 2026-03-08: 02:00 EST becomes 03:00 EDT (UTC-4 from 07:00 UTC)
    ("2026-03-08 12:59", False),  # 08:59 EDT
    ("2026-03-08 13:00", True),  # 09:00 EDT (still 08:00 by the winter offset)
    ("2026-03-08 06:59", False),  # 01:59 EST
    ("2026-03-08 07:00", True),  # 03:00 EDT: the span 02:30-04:00 opens with the jump
    ("2026-03-08 07:59", True),  # 03:59 EDT
    ("2026-03-08 08:00", False),  # 04:00 EDT
    # fall back, 2026-11-01: 02:00 EDT becomes 01:00 EST (UTC-5 from 06:00 UTC)
    ("2026-11-01 13:59", False),  # 08:59 EST
    ("2026-11-01 13:00", False),  # 08:00 EST (09:00 by the summer offset)
    ("2026-11-01 14:00", True),  # 09:00 EST
    ("2026-11-01 04:59", False),  # 00:59 EDT
    ("2026-11-01 05:30", True),  # 01:30 EDT, the first 01:xx hour
    ("2026-11-01 06:30", True),  # 01:30 EST, the second 01:xx hour
    ("2026-11-01 07:59", True),  # 02:59 EST
    ("2026-11-01 08:00", False),  # 03:00 EST
]


@pytest.mark.parametrize(("instant", "expected"), DST)
def test_clock_changes_follow_the_wall_clock(schedules, instant, expected):
    assert schedules["frontdesk"].is_open(utc(instant)) is expected


@pytest.mark.parametrize("day", ["2026-03-08", "2026-11-01"])
def test_nine_oclock_local_opens_on_both_clock_change_days(schedules, day):
    assert schedules["frontdesk"].is_open(ny(f"{day} 08:59")) is False
    assert schedules["frontdesk"].is_open(ny(f"{day} 09:00")) is True


def test_fall_back_span_covers_both_one_oclock_hours(schedules):
    first, second = ny("2026-11-01 01:15", fold=0), ny("2026-11-01 01:15", fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == utc("2026-11-01 06:15") - utc("2026-11-01 05:15")
    assert (schedules["frontdesk"].is_open(first), schedules["frontdesk"].is_open(second)) == (True, True)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [("2026-11-01 05:15", True), ("2026-11-01 05:45", False), ("2026-11-01 06:15", True), ("2026-11-01 06:45", False)],
)
def test_span_inside_the_repeated_hour_opens_twice(schedules, instant, expected):
    assert schedules["repeat"].is_open(utc(instant)) is expected


# -- open(name) ------------------------------------------------------------------------------


def test_open_converts_a_utc_now_to_each_schedules_zone(schedules):
    monday_night_in_tokyo = open_function(schedules, utc("2026-11-23 14:30"))  # 09:30 New York, 23:30 Tokyo
    assert (monday_night_in_tokyo("support"), monday_night_in_tokyo("tokyo")) == (True, False)
    tuesday_morning_in_tokyo = open_function(schedules, utc("2026-11-24 00:30"))  # 19:30 New York, 09:30 Tokyo
    assert (tuesday_morning_in_tokyo("support"), tuesday_morning_in_tokyo("tokyo")) == (False, True)
    assert open_function(schedules, utc("2026-11-23 13:59"))("support") is False  # 08:59 New York


def test_open_works_inside_a_when_condition(schedules):
    condition = compile_condition("open('support') and not open('tokyo')")
    assert condition(open=open_function(schedules, utc("2026-11-23 14:30"))) is True
    assert condition(open=open_function(schedules, utc("2026-11-23 13:30"))) is False


def test_open_with_an_unknown_name_lists_the_known_schedules(schedules):
    ask = open_function(schedules, utc("2026-11-23 14:30"))
    with pytest.raises(KeyError) as info:
        ask("suport")
    assert info.value.args[0] == (
        "unknown schedule 'suport' (did you mean 'support'?); known schedules: always, frontdesk, late, never, "
        "repeat, support, tokyo"
    )


def test_naive_datetimes_are_refused(schedules):
    with pytest.raises(ValueError, match="aware datetime"):
        schedules["support"].is_open(datetime(2026, 11, 23, 10, 0))


# -- next_change -----------------------------------------------------------------------------

CHANGES = [
    ("2026-11-23 08:00", "2026-11-23 09:00"),  # Monday: opens
    ("2026-11-23 09:00", "2026-11-23 17:00"),  # open at the start of a span: the close is next
    ("2026-11-27 18:00", "2026-11-28 10:00"),  # Friday evening: Saturday's first span
    ("2026-11-28 12:30", "2026-11-28 13:00"),  # between Saturday's spans
    ("2026-11-28 16:00", "2026-11-30 09:00"),  # over a closed Sunday
    ("2026-12-24 11:00", "2026-12-24 12:00"),  # the partial day closes at noon
    ("2026-12-24 12:00", "2026-12-26 10:00"),  # over the Christmas holiday to Saturday
]


@pytest.mark.parametrize(("local", "expected"), CHANGES)
def test_next_change(schedules, local, expected):
    change = schedules["support"].next_change(ny(local))
    assert change == ny(expected)
    assert change.tzinfo == NEW_YORK


def test_next_change_finds_the_spring_forward_jump(schedules):
    change = schedules["frontdesk"].next_change(utc("2026-03-08 06:00"))  # 01:00 EST, closed
    assert change == utc("2026-03-08 07:00")
    assert change.isoformat() == "2026-03-08T03:00:00-04:00"


def test_next_change_after_fall_back_waits_for_the_second_three_oclock(schedules):
    change = schedules["frontdesk"].next_change(utc("2026-11-01 05:30"))  # 01:30 EDT, open
    assert change == utc("2026-11-01 08:00")
    assert change.isoformat() == "2026-11-01T03:00:00-05:00"


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("2026-11-01 05:45", "2026-11-01T01:00:00-05:00"),  # closed at 01:45 EDT: the clocks go back into the span
        ("2026-11-01 06:10", "2026-11-01T01:30:00-05:00"),  # open at 01:10 EST: the second 01:30 closes it
    ],
)
def test_next_change_inside_the_repeated_hour(schedules, instant, expected):
    assert schedules["repeat"].next_change(utc(instant)).isoformat() == expected


def test_next_change_ignores_midnight_between_touching_spans(schedules):
    london = ZoneInfo("Europe/London")
    change = schedules["late"].next_change(datetime(2026, 11, 27, 21, 0, tzinfo=london))
    assert change == datetime(2026, 11, 28, 2, 0, tzinfo=london)


@pytest.mark.parametrize("name", ["always", "never"])
def test_next_change_is_none_without_a_change_in_14_days(schedules, name):
    assert schedules[name].next_change(utc("2026-11-23 12:00")) is None


# -- the shared file and flows ---------------------------------------------------------------


def test_shared_file_reads_into_schedules(schedules):
    support = schedules["support"]
    nine_to_five = (Span(time(9), time(17)),)
    assert support.weekly == {
        0: nine_to_five,
        1: nine_to_five,
        2: nine_to_five,
        3: nine_to_five,
        4: nine_to_five,
        5: (Span(time(10), time(12)), Span(time(13), time(15))),
        6: (),
    }
    assert support.closed == frozenset({date(2026, 12, 25), date(2027, 1, 1)})
    assert support.special == {date(2026, 12, 24): (Span(time(9), time(12)),), date(2026, 12, 31): ()}
    assert (support.timezone, support.pos.line, support.pos.column) == ("America/New_York", 3, 3)
    assert schedules["late"].weekly[4] == (Span(time(20), time.max),)


def flow_schedules(default_timezone):
    file = str(HERE / "in_flow.yaml")
    root = compose((HERE / "in_flow.yaml").read_text(), file)
    reader = Reader(file)
    found = read_schedules(reader, root.value[1][1], "schedules", default_timezone=default_timezone)
    return found, reader.errors


def test_flow_schedule_without_a_zone_takes_the_flows_default():
    found, errors = flow_schedules("Europe/Paris")
    assert errors == []
    office = found["office"]
    assert office.timezone == "Europe/Paris"
    assert office.is_open(utc("2026-11-23 07:30")) is True  # 08:30 in Paris
    assert office.is_open(utc("2026-11-23 07:29")) is False


def test_flow_schedule_without_any_zone_is_an_error():
    found, [error] = flow_schedules(None)
    assert found == {}
    assert (error.line, error.column, error.path) == (3, 3, "schedules.office.timezone")


# -- mistakes --------------------------------------------------------------------------------

# file, line, column, key path, message (a substring)
MISTAKES = [
    ("unknown_key.yaml", 4, 5, "schedules.support.hour", "unknown key (did you mean 'hours'?)"),
    ("bad_day.yaml", 5, 7, "schedules.support.hours.mon-fry", "unknown day 'fry' (did you mean 'fri'?); use mon..sun"),
    ("hour_25.yaml", 5, 12, "schedules.support.hours.mon", "bad time '25:00' (hours go 00-23, minutes 00-59"),
    ("nine_to_five.yaml", 5, 16, "schedules.support.hours.mon-fri", "bad time '9' (use HH:MM"),
    (
        "wraps_midnight.yaml",
        5,
        12,
        "schedules.bar.hours.fri",
        "span '22:00-02:00' ends before it starts; a span may not wrap midnight: split it at 24:00 "
        "('22:00-24:00' and '00:00-02:00' on the next day)",
    ),
    ("empty_span.yaml", 5, 12, "schedules.bar.hours.fri", "span '09:00-09:00' is empty"),
    ("starts_at_24.yaml", 5, 12, "schedules.bar.hours.fri", "24:00 can only end a span"),
    ("overlap.yaml", 5, 28, "schedules.support.hours.sat[1]", "'11:00-13:00' overlaps '10:00-12:00'"),
    ("closed_with_spans.yaml", 7, 11, "schedules.support.hours.sat[1]", "closed cannot be listed with spans"),
    ("bad_holiday.yaml", 4, 28, "schedules.support.closed[1]", "bad date '2026-02-30': day is out of range"),
    ("bad_special_date.yaml", 5, 7, 'schedules.support.special."12/24/2026"', "bad date '12/24/2026' (use YYYY-MM-DD"),
    ("bad_timezone.yaml", 3, 15, "schedules.support.timezone", "unknown time zone 'America/New_Yrok' (did you mean"),
    ("missing_timezone.yaml", 2, 3, "schedules.support.timezone", "missing key: name one such as America/New_York"),
    ("day_twice.yaml", 6, 7, "schedules.support.hours.fri", "fri already given by 'weekdays' (line 5)"),
    ("holiday_twice.yaml", 6, 9, "schedules.support.closed[1]", "2026-12-25 is listed twice (first at line 5)"),
    (
        "date_closed_and_special.yaml",
        6,
        7,
        'schedules.support.special."2026-12-24"',
        "2026-12-24 is also listed under closed (line 4)",
    ),
    ("bad_name.yaml", 2, 3, 'schedules."main line"', "schedule names may use only letters, digits"),
]


@pytest.mark.parametrize(("name", "line", "column", "path", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_reported_once_at_its_position(name, line, column, path, message):
    [error] = errors_of(name)
    assert (error.line, error.column, error.path, error.severity) == (line, column, path, "error")
    assert message in error.message
    assert Path(error.file) == BAD / name


def test_error_formats_as_file_line_column_path_message():
    [error] = errors_of("bad_timezone.yaml")
    assert error.format() == (
        f"{BAD / 'bad_timezone.yaml'}:3:15: error: schedules.support.timezone: "
        "unknown time zone 'America/New_Yrok' (did you mean 'America/New_York'?)"
    )


def test_every_problem_of_the_file_is_reported_at_once():
    with pytest.raises(FlowLoadError) as info:
        load_schedules_file(BAD / "three_mistakes.yaml")
    assert [(e.line, e.column, e.path) for e in info.value.errors] == [
        (5, 7, "schedules.support.hours.mon-fry"),
        (6, 12, "schedules.support.hours.sat"),
        (8, 15, "schedules.sales.timezone"),
    ]
    assert "(did you mean 'Europe/London'?)" in info.value.errors[2].message
    assert str(info.value).splitlines()[-1] == "3 errors in flow files"


def test_shared_file_needs_the_schedules_key():
    messages = [(e.line, e.column, e.path, e.message) for e in errors_of("wrong_top_key.yaml")]
    assert messages == [
        (1, 1, "schedule", "unknown key (did you mean 'schedules'?)"),
        (1, 1, "schedules", "missing key: the file holds one `schedules:` mapping"),
    ]


def test_missing_or_empty_shared_file_is_a_load_error(tmp_path):
    with pytest.raises(FlowLoadError, match="cannot read the schedules file \\(set IVR_SCHEDULES\\)"):
        load_schedules_file(tmp_path / "nowhere.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(FlowLoadError, match=r"empty.yaml:1:1: error: the schedules file is empty"):
        load_schedules_file(tmp_path / "empty.yaml")
