"""Campaigns: every good number called exactly once, through crashes, rate limits and quiet hours."""

from __future__ import annotations

import collections
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import FakeClock
from twilio.base.exceptions import TwilioException

from ivr.cli import main
from ivr.cli.campaign import campaign as campaign_group
from ivr.cli.outbound import call as call_command
from ivr.core.loader import load_flows
from ivr.errors import CallRequestError, ConfigError
from ivr.outbound.campaign import Campaign, row_key
from ivr.outbound.checks import normalise_number
from ivr.outbound.client import make_client
from ivr.outbound.contacts import read_contacts
from ivr.outbound.deps import OutboundDeps
from ivr.outbound.hours import CallHours
from ivr.phone.fakes import FakeTwilioHttp, call_json, error_body
from ivr.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "ACf2c1b3d4e5f60718293a4b5c6d7e8f90"
CALLS = r"/Calls\.json$"
# A Wednesday, 10:00 in New York, 15:00 in London, midnight in Tokyo.
START = datetime(2026, 11, 25, 15, 0, tzinfo=UTC).timestamp()


class Crash(Exception):
    """The process dies: raised by the fake after Twilio has created the call."""


class Twilio:
    """The fake API's Calls.json: a CallSid per call, chosen numbers refused, a crash after N calls."""

    def __init__(self, clock: FakeClock, *, refuse: dict | None = None, crash_after: int | None = None) -> None:
        self.clock = clock
        self.refuse = dict(refuse or {})  # number -> [(status, code), ...] answered in turn
        self.crash_after = crash_after
        self.created: collections.Counter = collections.Counter()
        self.times: list[float] = []
        self.http = FakeTwilioHttp().respond_with("POST", CALLS, self.answer)

    def answer(self, request):
        self.times.append(self.clock())
        to = request.data["To"]
        if self.refuse.get(to):
            status, code = self.refuse[to].pop(0)
            return status, error_body(code, f"Twilio refuses {to} ({code}).", status)
        self.created[to] += 1
        if self.crash_after is not None and sum(self.created.values()) > self.crash_after:
            raise Crash(f"killed after creating the call to {to}")
        return 201, call_json(request)


@pytest.fixture(scope="module")
def flows():
    return load_flows(ROOT / "flows")


@pytest.fixture
def settings():
    return load_settings(
        {
            "IVR_ENV": "test",
            "IVR_STORE": "memory://",
            "IVR_FLOWS_DIR": str(ROOT / "flows"),
            "IVR_PUBLIC_URL": "https://acme.example.com/ivr",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
            "TWILIO_FROM_NUMBER": "+15017122661",
            "IVR_TIMEZONE": "America/New_York",
        },
        environ={},
    )


@pytest.fixture
def clock():
    """Time that moves only when the code under test sleeps, from a Wednesday morning."""
    return FakeClock(START)


def number(n: int) -> str:
    return f"+1415555{n:04d}"


def write_csv(path: Path, rows: list[str], header: str = "to,first_name,timezone") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def campaign(settings, store, flows, twilio, clock, name="spring", **options):
    return Campaign(
        settings,
        name,
        "main",
        client=make_client(settings, http_client=twilio.http),
        store=store,
        flows=flows,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


# -- the 50-row campaign ------------------------------------------------------------------------


def test_fifty_rows_interrupted_and_resumed_call_each_good_number_exactly_once(tmp_path, settings, store, flows, clock):
    rows = [f"{number(n)},Person {n}," for n in range(50)]
    rows[4] = "555-0104,Nobody,"  # line 6: not a phone number at all
    rows[9] = f"{number(9)},Invalid,"  # line 11: Twilio says 21211
    rows[39] = f"{number(39)},Unreachable,"  # line 41: Twilio says 21214
    contacts = read_contacts(write_csv(tmp_path / "spring.csv", rows))
    good = {number(n) for n in range(50)} - {number(4), number(9), number(39)}
    refuse = {
        number(9): [(400, 21211)],
        number(39): [(400, 21214)],
        number(30): [(429, 20429), (429, 20429)],  # rate-limited twice, then created
    }
    first = Twilio(clock, refuse=refuse, crash_after=20)

    with pytest.raises(Crash):
        campaign(settings, store, flows, first, clock).run(contacts)

    crashed = number(22)  # the 21st call was created, then the process died before writing it down
    assert store.get(row_key("spring", crashed))["status"] == "pending"
    second = Twilio(clock, refuse=refuse)
    summary = campaign(settings, store, flows, second, clock).run(contacts)

    created = first.created + second.created
    assert set(created) == good
    assert set(created.values()) == {1}
    assert summary.failed == [
        (
            6,
            "555-0104",
            "'555-0104' is not a phone number in E.164: write + country code and number, e.g. +15551234567",
        ),
        (
            41,
            number(39),
            f"Twilio error 21214: Twilio refuses {number(39)} (21214).; the To number cannot be reached: "
            "check that it is in service (https://www.twilio.com/docs/errors/21214)",
        ),
    ]
    skipped = dict(((line, n), why) for line, n, why in summary.skipped)
    assert skipped[(11, number(9))].startswith("failed in an earlier run: Twilio error 21211:")
    assert skipped[(24, crashed)].startswith("pending since 2026-11-25T15:00:2")
    assert "campaign retry spring +14155550022" in skipped[(24, crashed)]
    assert sum(why.startswith("placed in an earlier run (CA") for why in skipped.values()) == 20
    assert len(summary.placed) == 47 - 20 - 1
    assert summary.stopped is None and not summary.held
    rows_by_status = collections.Counter(row["status"] for _key, row in store.scan("campaign:spring:"))
    assert rows_by_status == {"placed": 46, "failed": 2, "pending": 1}
    assert len(store.scan("ctx:")) == 47  # one per created call; refused requests left none behind


def test_a_third_run_calls_nobody(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(n)},P," for n in range(5)]))
    campaign(settings, store, flows, Twilio(clock), clock).run(contacts)

    again = Twilio(clock)
    summary = campaign(settings, store, flows, again, clock).run(contacts)

    assert again.http.requests == []
    assert [why[:24] for _l, _n, why in summary.skipped] == ["placed in an earlier run"] * 5


def test_a_row_is_pending_in_the_store_while_its_create_request_is_on_the_wire(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(1)},Ada,"]))
    seen = []
    twilio = Twilio(clock)
    original = twilio.answer

    def answer(request):
        seen.append(store.get(row_key("spring", number(1))))
        return original(request)

    twilio.http = FakeTwilioHttp().respond_with("POST", CALLS, answer)

    campaign(settings, store, flows, twilio, clock).run(contacts)

    assert seen[0]["status"] == "pending" and seen[0]["line"] == 2
    row = store.get(row_key("spring", number(1)))
    assert row["status"] == "placed" and row["sid"].startswith("CA")
    assert store.get(f"call:{row['sid']}") == {"campaign": "spring", "row": row_key("spring", number(1))}
    [(_key, ctx)] = store.scan("ctx:")
    assert ctx["vars"] == {"first_name": "Ada"} and ctx["campaign"] == "spring"


def test_a_duplicate_number_in_the_csv_is_skipped(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(
        write_csv(tmp_path / "c.csv", ["+1 (415) 555-0001,Ada,", "+14155550002,Bob,", "+1.415.555.0001,Ada again,"])
    )
    twilio = Twilio(clock)

    summary = campaign(settings, store, flows, twilio, clock).run(contacts)

    assert twilio.created == {number(1): 1, number(2): 1}
    assert summary.skipped == [(4, number(1), "duplicate of line 2")]


# -- pace and retries ---------------------------------------------------------------------------


def test_calls_are_paced_at_the_configured_rate(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(n)},P," for n in range(5)]))
    twilio = Twilio(clock)

    campaign(settings, store, flows, twilio, clock, rate=2).run(contacts)

    gaps = [round(b - a, 6) for a, b in zip(twilio.times, twilio.times[1:], strict=False)]
    assert gaps == [0.5, 0.5, 0.5, 0.5]


def test_the_default_rate_is_one_call_per_second(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(n)},P," for n in range(3)]))
    twilio = Twilio(clock)

    campaign(settings, store, flows, twilio, clock).run(contacts)

    assert twilio.times == [START, START + 1, START + 2]


def test_rate_limits_and_server_errors_are_retried_with_exponential_backoff(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(1)},P,"]))
    twilio = Twilio(clock, refuse={number(1): [(429, 20429), (503, 20500), (502, 20502)]})

    summary = campaign(settings, store, flows, twilio, clock).run(contacts)

    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert twilio.created == {number(1): 1}
    assert [line for line, _n, _sid in summary.placed] == [2] and summary.failed == []


def test_a_rate_limit_that_does_not_end_holds_the_row_and_stops_resumably(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(1)},P,", f"{number(2)},P,"]))
    busy = Twilio(clock, refuse={number(1): [(429, 20429)] * 3})

    summary = campaign(settings, store, flows, busy, clock, retries=2).run(contacts)

    assert busy.created == {}
    assert summary.stopped.startswith("line 2: Twilio still refused after 3 tries: Twilio error 20429:")
    assert summary.not_reached == 1 and not summary.ok
    assert store.get(row_key("spring", number(1)))["status"] == "held"
    later = Twilio(clock)
    campaign(settings, store, flows, later, clock).run(contacts)
    assert later.created == {number(1): 1, number(2): 1}


def test_bad_credentials_stop_the_run_without_marking_rows_bad(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(1)},P,", f"{number(2)},P,"]))
    twilio = Twilio(clock, refuse={number(1): [(401, 20003)]})

    summary = campaign(settings, store, flows, twilio, clock).run(contacts)

    assert "Twilio error 20003" in summary.stopped and "check TWILIO_ACCOUNT_SID" in summary.stopped
    assert summary.failed == [] and summary.not_reached == 1
    assert store.get(row_key("spring", number(1)))["status"] == "held"
    assert store.scan("ctx:") == []


@pytest.mark.parametrize(
    "failure", [TwilioException("Unable to fetch page"), OSError("Connection reset by peer")], ids=["twilio", "network"]
)
def test_an_unanswered_request_leaves_the_row_pending_and_stops(tmp_path, settings, store, flows, clock, failure):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(1)},P,", f"{number(2)},P,"]))

    def fail(_request):
        raise failure

    twilio = Twilio(clock)
    twilio.http = FakeTwilioHttp().respond_with("POST", CALLS, fail)

    summary = campaign(settings, store, flows, twilio, clock).run(contacts)

    row = store.get(row_key("spring", number(1)))
    assert row["status"] == "pending" and "may or may not have been created" in row["reason"]
    assert "look it up in the Twilio Console" in summary.stopped
    assert len(twilio.http.requests) == 1


# -- quiet hours --------------------------------------------------------------------------------


def test_rows_outside_the_calling_hours_are_held_in_their_own_time_zone(tmp_path, settings, store, flows, clock):
    settings["IVR_CALL_HOURS"] = "09:00-20:00"
    path = write_csv(
        tmp_path / "c.csv",
        [f"{number(1)},NY,", f"{number(2)},Tokyo,Asia/Tokyo", f"{number(3)},London,Europe/London"],
    )
    contacts = read_contacts(path)
    twilio = Twilio(clock)

    summary = campaign(settings, store, flows, twilio, clock).run(contacts)

    assert twilio.created == {number(1): 1, number(3): 1}
    assert summary.held == [
        (3, number(2), "outside calling hours 09:00-20:00 (IVR_CALL_HOURS): 00:00 in Asia/Tokyo"),
    ]
    assert store.get(row_key("spring", number(2)))["status"] == "held"
    assert "run the same command again to continue" in summary.report()

    clock.now += 10 * 3600  # 10:00 in Tokyo, 20:00 in New York
    later = Twilio(clock)
    summary = campaign(settings, store, flows, later, clock).run(contacts)

    assert later.created == {number(2): 1}
    assert summary.held == []


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [("09:00-20:00", ["09:00", "19:59"], ["08:59", "20:00"]), ("22:00-06:00", ["23:30", "05:59"], ["06:00", "21:59"])],
)
def test_call_hours(text, inside, outside):
    hours = CallHours.parse(text)

    def at(hhmm):
        return datetime.fromisoformat(f"2026-11-25T{hhmm}:00")

    assert all(hours.allows(at(t)) for t in inside)
    assert not any(hours.allows(at(t)) for t in outside)


@pytest.mark.parametrize("text", ["9-17", "09:00", "25:00-26:00", "09:00-09:00"])
def test_bad_call_hours_name_the_setting(text):
    with pytest.raises(ConfigError, match=r"^IVR_CALL_HOURS=.*: give the allowed calling hours as HH:MM-HH:MM"):
        CallHours.parse(text)


# -- the CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+14155550143", "+14155550143"),
        ("+1 (415) 555-0143", "+14155550143"),
        ("0044 20 7946 0000", "+442079460000"),
        ("4155550143", None),
        ("+0123", None),
        ("", None),
    ],
)
def test_normalise_number(text, expected):
    assert normalise_number(text) == expected


def test_other_columns_become_variables_and_bad_rows_are_flagged(tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        ["+14155550001,Ada,Europe/London", "", "+14155550002,Bob,Mars/Olympus", "+14155550003,Cy,,extra"],
        header="To, first_name ,TimeZone",
    )

    ada, bob, cy = read_contacts(path)

    assert (ada.line, ada.to, ada.timezone, ada.variables, ada.problem) == (
        2,
        "+14155550001",
        "Europe/London",
        {"first_name": "Ada"},
        None,
    )
    assert (
        bob.line == 4 and bob.problem == "unknown time zone 'Mars/Olympus': use an IANA name such as America/New_York"
    )
    assert cy.problem == "4 fields but 3 columns"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("phone,name", "c.csv:1: no 'to' column (columns: phone, name); name the column of numbers 'to'"),
        ("to,first name", "c.csv:1: column 'first name' cannot be a variable: use letters, digits and _"),
        ("to,name,name", "c.csv:1: column 'name' appears twice"),
        ("", "c.csv: the file is empty"),
    ],
)
def test_file_wide_problems_stop_before_any_call(tmp_path, header, message):
    path = write_csv(tmp_path / "c.csv", ["+14155550001,x"], header=header)

    with pytest.raises(CallRequestError) as caught:
        read_contacts(path)

    assert str(caught.value).startswith(str(tmp_path / message.split(":")[0]) + message[len(message.split(":")[0]) :])


def test_a_campaign_name_stays_with_its_flow(tmp_path, settings, store, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "c.csv", [f"{number(1)},P,"]))
    campaign(settings, store, flows, Twilio(clock), clock).run(contacts)
    other = Campaign(settings, "spring", "hours", client=None, store=store, flows=flows, clock=clock, sleep=clock.sleep)

    with pytest.raises(CallRequestError, match="campaign 'spring' calls flow 'main', not 'hours': give another"):
        other.run(contacts)


def test_setup_problems_stop_before_the_first_row(settings, store, flows, clock):
    settings["IVR_PUBLIC_URL"] = None

    with pytest.raises(ConfigError, match=r"^IVR_PUBLIC_URL is not set"):
        campaign(settings, store, flows, Twilio(clock), clock)
    with pytest.raises(CallRequestError, match="campaign name 'a:b'"):
        campaign(settings, store, flows, Twilio(clock), clock, name="a:b")


# -- the commands -------------------------------------------------------------------------------


@pytest.fixture
def invoke(settings, store, flows, clock):
    def run(command, *args, twilio=None):
        client = make_client(settings, http_client=twilio.http) if twilio is not None else None
        obj = OutboundDeps(settings=settings, client=client, store=store, flows=flows, clock=clock, sleep=clock.sleep)
        return CliRunner().invoke(command, list(args), obj=obj)

    return run


def test_call_csv_runs_the_campaign_and_prints_the_summary(tmp_path, invoke, clock):
    path = write_csv(tmp_path / "spring.csv", [f"{number(1)},Ada,", "12345,Bob,", f"{number(1)},Ada,"])
    twilio = Twilio(clock)

    result = invoke(call_command, "main", "--csv", str(path), twilio=twilio)

    assert result.exit_code == 1  # a row failed
    assert result.stdout.splitlines() == [
        "campaign spring (main): 1 placed, 1 failed, 0 held, 1 skipped",
        "failed:",
        "  line 3 12345: '12345' is not a phone number in E.164: write + country code and number, e.g. +15551234567",
        "skipped:",
        f"  line 4 {number(1)}: duplicate of line 2",
    ]
    assert "campaign spring" in result.stderr  # the progress bar


def test_call_csv_dry_run_sends_and_stores_nothing(tmp_path, invoke, store, clock):
    path = write_csv(tmp_path / "spring.csv", [f"{number(1)},Ada,", f"{number(2)},Bob,"])
    twilio = Twilio(clock)

    result = invoke(call_command, "main", "--csv", str(path), "--campaign", "trial", "--dry-run", twilio=twilio)

    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0] == f"POST https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert f"  To={number(1)}" in out
    assert "  ... and 1 more like it, each with its own To and ctx" in out
    assert out[-2:] == [
        "campaign trial (main): 2 would place, 0 failed, 0 held, 0 skipped",
        "dry run: nothing sent, nothing stored",
    ]
    assert "Ada" not in result.stdout
    assert twilio.http.requests == [] and store.scan("") == [] and clock.sleeps == []


def _outbound_env(monkeypatch, tmp_path, **values) -> None:
    """What `python -m ivr call` reads from the environment: the example flows and a store in tmp_path."""
    monkeypatch.setenv("IVR_FLOWS_DIR", str(ROOT / "flows"))
    monkeypatch.setenv("IVR_STORE", f"sqlite:///{tmp_path / 'store.sqlite3'}")
    for name in ("IVR_PUBLIC_URL", "TWILIO_FROM_NUMBER", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY",
                 "TWILIO_API_SECRET", "IVR_CALL_HOURS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_python_m_ivr_call_csv_dry_run_exits_1_when_a_row_failed(tmp_path, monkeypatch, capsys):
    """As its help says; click hands main() the status of ctx.exit(1) instead of exiting with it."""
    _outbound_env(monkeypatch, tmp_path, IVR_PUBLIC_URL="https://ivr.example.com", TWILIO_FROM_NUMBER="+15005550006")
    path = write_csv(tmp_path / "spring.csv", [f"{number(1)},Ada,", "12345,Bob,"])

    assert main(["call", "main", "--csv", str(path), "--dry-run"]) == 1
    assert "campaign spring (main): 1 would place, 1 failed, 0 held, 0 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("mode", [[], ["--dry-run"]])
def test_python_m_ivr_call_csv_names_every_missing_setting_at_once(tmp_path, monkeypatch, capsys, mode):
    _outbound_env(monkeypatch, tmp_path)
    path = write_csv(tmp_path / "spring.csv", [f"{number(1)},Ada,"])

    assert main(["call", "main", "--csv", str(path), *mode]) == 1
    err = capsys.readouterr().err
    assert "no caller ID: pass --from or set TWILIO_FROM_NUMBER" in err
    assert "IVR_PUBLIC_URL is not set" in err
    assert ("Twilio credentials are not set" in err) is not bool(mode)  # a dry run sends nothing: no credentials


def test_outbound_md_shows_the_campaign_of_the_flow_its_command_calls():
    """A campaign's summary names the flow it calls: the guide's output must match its own command."""
    guide = (ROOT / "docs" / "outbound.md").read_text(encoding="utf-8")
    [(flow, name)] = re.findall(r"python -m ivr call (\S+) --csv \S+ --campaign (\S+)", guide)
    shown = re.findall(rf"^campaign {name} \((\S+)\):", guide, re.M)
    assert shown and set(shown) == {flow}


def test_campaign_status_shows_each_rows_outcome(tmp_path, invoke, store, clock):
    path = write_csv(tmp_path / "spring.csv", [f"{number(1)},Ada,", f"{number(2)},Bob,", f"{number(3)},Cy,"])
    twilio = Twilio(clock, refuse={number(3): [(400, 21217)]})
    invoke(call_command, "main", "--csv", str(path), twilio=twilio)
    # What the app's status callback does: find the row through call:<CallSid>, write the outcome.
    for outcome, n in (("answered", 1), ("busy", 2)):
        sid = store.get(row_key("spring", number(n)))["sid"]
        row = store.get(f"call:{sid}")["row"]
        store.update(row, lambda old, outcome=outcome: {**old, "outcome": outcome}, 3600)

    result = invoke(campaign_group, "status", "spring")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "campaign spring (main): 3 rows: 1 failed, 2 placed"
    assert lines[1] == "outcomes: 1 answered, 1 busy"
    assert lines[2].startswith(f"line    2  {number(1)}     placed   answered   CA")
    assert lines[3].startswith(f"line    3  {number(2)}     placed   busy       CA")
    assert lines[4].startswith(f"line    4  {number(3)}     failed   -          Twilio error 21217:")


def test_campaign_status_of_an_unknown_campaign_fails(invoke):
    result = invoke(campaign_group, "status", "autumn")

    assert result.exit_code == 1
    assert "Error: no campaign 'autumn' in the store (campaigns: none)" in result.output


def test_campaign_retry_releases_a_pending_row_for_the_next_run(tmp_path, invoke, store, settings, flows, clock):
    contacts = read_contacts(write_csv(tmp_path / "spring.csv", [f"{number(1)},Ada,"]))
    with pytest.raises(Crash):
        campaign(settings, store, flows, Twilio(clock, crash_after=0), clock).run(contacts)

    result = invoke(campaign_group, "retry", "spring", number(1), "+19999999999")

    assert result.exit_code == 1
    assert f"line 2 {number(1)}: the next run calls it" in result.output
    assert "Error: +19999999999: no such row in campaign 'spring'" in result.output
    again = Twilio(clock)
    campaign(settings, store, flows, again, clock).run(contacts)
    assert again.created == {number(1): 1}
