"""One outbound call or text: the exact request Twilio gets, the variables kept server-side, every error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from twilio.base.exceptions import TwilioException

from ivr.cli.outbound import call as call_command
from ivr.cli.outbound import sms as sms_command
from ivr.core.loader import load_flows
from ivr.errors import CallOutcomeUnknown, CallRequestError, ConfigError, TwilioCallError
from ivr.outbound.calls import place_call, send_sms
from ivr.outbound.client import make_client
from ivr.outbound.deps import OutboundDeps
from ivr.phone.fakes import FakeTwilioHttp, call_json, error_body
from ivr.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "twilio"
ACCOUNT = "ACf2c1b3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "0123456789abcdef0123456789abcdef"
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
PUBLIC = "https://acme.example.com/ivr"
TO = "+14155550143"
FROM = "+15017122661"
CALL_SID = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9"


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
            "IVR_PUBLIC_URL": PUBLIC + "/",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM_NUMBER": FROM,
        },
        environ={},
    )


@pytest.fixture
def http():
    return FakeTwilioHttp()


@pytest.fixture
def call(settings, http, store, flows):
    """place_call with the fake Twilio, the memory store and the example flows; Twilio answers 201."""
    http.respond("POST", r"/Calls\.json$", 201, file=FIXTURES / "call_created.json")

    def place(flow="main", to=TO, **options):
        options.setdefault("client", make_client(settings, http_client=http))
        return place_call(settings, flow, to, store=store, flows=flows, **options)

    return place


def ctx_id(url: str) -> str:
    return re.search(r"[?&]ctx=([A-Za-z0-9_-]+)", url).group(1)


# -- the request --------------------------------------------------------------------------------


def test_call_posts_exactly_the_fields_twilio_documents(call, http):
    result = call(state="menu", machine_detection="DetectMessageEnd", timeout=25, variables={"name": "Ada"})

    [request] = http.requests
    assert (request.method, request.url, request.auth) == ("POST", CALLS_URL, ACCOUNT)
    ctx = ctx_id(result.url)
    assert request.form == [
        ("To", TO),
        ("From", FROM),
        ("Method", "POST"),
        ("StatusCallback", f"{PUBLIC}/twilio/status#ct=1000&rt=2500&tt=15000&rc=3&rp=ct,rt,5xx"),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
        ("StatusCallbackMethod", "POST"),
        ("Timeout", "25"),
        ("MachineDetection", "DetectMessageEnd"),
        ("Url", f"{PUBLIC}/voice/main?ctx={ctx}&state=menu"),
    ]
    assert (result.sid, result.status, result.to, result.from_) == (CALL_SID, "queued", TO, FROM)


def test_without_options_the_call_enters_the_flow_at_its_start(call, http):
    result = call()

    fields = dict(http.requests[0].form)
    assert result.url == f"{PUBLIC}/voice/main?ctx={ctx_id(result.url)}"
    assert fields["Url"] == result.url
    assert "MachineDetection" not in fields and "Timeout" not in fields


def test_variables_are_stored_under_the_ctx_id_and_never_sent(call, http, store):
    result = call(state="menu", variables={"name": "Ada Lovelace", "balance": "42.17"})

    ctx = ctx_id(result.url)
    assert len(ctx) >= 20
    assert store.get(f"ctx:{ctx}") == {
        "flow": "main",
        "state": "menu",
        "vars": {"name": "Ada Lovelace", "balance": "42.17"},
        "campaign": None,
        "row": None,
    }
    assert "Ada" not in http.requests[0].body and "42.17" not in http.requests[0].body
    assert store.get(f"call:{result.sid}") is None  # only campaign calls are linked


def test_each_call_gets_its_own_ctx_id(call):
    assert ctx_id(call().url) != ctx_id(call().url)


def test_a_campaign_call_links_its_callsid_to_the_row(call, store):
    result = call(campaign="spring", row="campaign:spring:+14155550143")

    assert store.get(f"call:{CALL_SID}") == {"campaign": "spring", "row": "campaign:spring:+14155550143"}
    assert store.get(f"ctx:{result.ctx}")["campaign"] == "spring"


def test_a_status_callback_that_beats_the_answer_is_kept_and_returned(call, store):
    store.update(f"call:{CALL_SID}", lambda _: {"outcome": "failed"}, 3600)

    result = call(campaign="spring", row="campaign:spring:+14155550143")

    assert result.outcome == "failed"
    assert store.get(f"call:{CALL_SID}") == {
        "campaign": "spring",
        "row": "campaign:spring:+14155550143",
        "outcome": "failed",
    }


def test_api_key_credentials_are_used_when_set(settings, http, store, flows):
    settings.update(TWILIO_API_KEY="SK" + "1" * 32, TWILIO_API_SECRET="secret")
    http.respond("POST", r"/Calls\.json$", 201, file=FIXTURES / "call_created.json")

    place_call(settings, "main", TO, client=make_client(settings, http_client=http), store=store, flows=flows)

    assert http.requests[0].auth == "SK" + "1" * 32
    assert http.requests[0].url == CALLS_URL


# -- dry runs -----------------------------------------------------------------------------------


def test_dry_run_shows_the_request_and_sends_and_stores_nothing(call, http, store):
    result = call(state="menu", timeout=30, variables={"name": "Ada"}, dry_run=True)

    assert http.requests == []
    assert store.scan("") == []
    assert result.dry_run and result.sid is None
    assert result.request.method == "POST" and result.request.url == CALLS_URL
    assert list(result.request.form) == [
        ("To", TO),
        ("From", FROM),
        ("Method", "POST"),
        ("StatusCallback", f"{PUBLIC}/twilio/status#ct=1000&rt=2500&tt=15000&rc=3&rp=ct,rt,5xx"),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
        ("StatusCallbackMethod", "POST"),
        ("Timeout", "30"),
        ("Url", result.url),
    ]


def test_dry_run_the_same_fields_as_the_real_request(call, http):
    dry = call(state="menu", machine_detection="Enable", dry_run=True)
    real = call(state="menu", machine_detection="Enable")

    def without_ctx(form):
        return [(name, value.replace(ctx, "ID")) for name, value in form for ctx in [ctx_id(form[-1][1])]]

    assert without_ctx(list(dry.request.form)) == without_ctx(http.requests[0].form)
    assert real.sid == CALL_SID


def test_dry_run_without_credentials_names_the_account_placeholder(settings, flows):
    settings.update(TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None)

    result = place_call(settings, "main", TO, flows=flows, dry_run=True)

    assert result.request.url == "https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Calls.json"


# -- refused before anything is sent --------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow", "state", "message"),
    [
        (
            "mian",
            None,
            "no flow 'mian' in {dir} (did you mean 'main'?) (flows: accounts, assistant, billing, hours,"
            " main, orders, payments, pin, reminder)",
        ),
        ("main", "menuu", "flow 'main' has no state 'menuu' (did you mean 'menu'?) (states: "),
        ("pin", None, "flow 'pin' is a subflow: a call enters it only from a state that runs it"),
    ],
)
def test_an_unknown_flow_or_state_is_refused_before_sending(call, http, store, flow, state, message):
    with pytest.raises(CallRequestError) as caught:
        call(flow=flow, state=state)

    assert str(caught.value).startswith(message.format(dir=ROOT / "flows"))
    assert http.requests == [] and store.scan("") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"to": "555-0143"}, "--to '555-0143' is not an E.164 phone number: write it as + country code and number"),
        ({"to": "+1 415 555 0143"}, "--to '+1 415 555 0143' is not an E.164 phone number"),
        ({"from_": "5017122661"}, "--from '5017122661' is not an E.164 phone number"),
        ({"variables": {"first name": "Ada"}}, "variable name 'first name' is not usable in templates"),
        ({"machine_detection": "enable"}, "machine detection 'enable' is not one of Enable, DetectMessageEnd"),
        ({"timeout": 0}, "timeout 0 is not a whole number of seconds from 1 to 600"),
        ({"timeout": 601}, "timeout 601 is not a whole number of seconds from 1 to 600"),
    ],
)
def test_bad_requests_are_refused_with_the_bad_value(call, http, store, options, message):
    with pytest.raises(CallRequestError, match=re.escape(message)):
        call(**options)

    assert http.requests == [] and store.scan("") == []


def test_without_a_public_url_the_call_stops_naming_it(call, settings, http, store):
    settings["IVR_PUBLIC_URL"] = None

    with pytest.raises(ConfigError, match=r"^IVR_PUBLIC_URL is not set: outbound calls need the app's public"):
        call()

    assert http.requests == [] and store.scan("") == []


def test_without_a_caller_id_the_message_names_the_setting_and_the_option(call, settings, http):
    settings["TWILIO_FROM_NUMBER"] = None

    with pytest.raises(ConfigError, match=r"^no caller ID: pass --from or set TWILIO_FROM_NUMBER"):
        call()

    assert http.requests == []


def test_a_bad_configured_caller_id_names_the_setting(call, settings):
    settings["TWILIO_FROM_NUMBER"] = "(501) 712-2661"

    with pytest.raises(ConfigError, match=r"^TWILIO_FROM_NUMBER '\(501\) 712-2661' is not an E.164"):
        call()


def test_every_missing_setting_is_named_at_once(settings, store, flows):
    """Not one a run: a first call should not fail once per setting."""
    settings.update(TWILIO_FROM_NUMBER=None, IVR_PUBLIC_URL=None, TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None)

    with pytest.raises(ConfigError) as raised:
        place_call(settings, "main", TO, store=store, flows=flows)

    lines = str(raised.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "no caller ID",
        "IVR_PUBLIC_URL is not set",
        "Twilio credentials are not set",
    ]
    assert store.scan("") == []


def test_missing_credentials_stop_before_anything_is_stored(settings, store, flows):
    settings.update(TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None)

    with pytest.raises(ConfigError, match="Twilio credentials are not set"):
        place_call(settings, "main", TO, store=store, flows=flows)

    assert store.scan("") == []


# -- Twilio's errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "twilio_says", "fix"),
    [
        (21211, 400, "The 'To' number 555 is not a valid phone number.", "check the To number"),
        (21212, 400, "The 'From' number +15017122661 is not a valid phone number", "TWILIO_FROM_NUMBER"),
        (21210, 400, "The source phone number provided, +15017122661, is not yet verified", "verified caller ID"),
        (21219, 400, "The number +14155550143 is unverified. Trial accounts cannot call unverified", "verify the To"),
        (21215, 400, "Account not authorized to call +14155550143.", "Geo permissions"),
        (20003, 401, "Authenticate", "check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN"),
    ],
)
def test_twilio_errors_name_the_fix_and_leave_nothing_behind(
    settings, http, store, flows, code, status, twilio_says, fix
):
    http.respond("POST", r"/Calls\.json$", status, json=error_body(code, twilio_says, status))

    with pytest.raises(TwilioCallError) as caught:
        place_call(settings, "main", TO, client=make_client(settings, http_client=http), store=store, flows=flows)

    text = str(caught.value)
    assert text.startswith(f"Twilio error {code}: {twilio_says}")
    assert fix in text
    assert text.endswith(f"(https://www.twilio.com/docs/errors/{code})")
    assert (caught.value.code, caught.value.status) == (code, status)
    assert store.scan("ctx:") == []  # the variables of a call that does not exist are gone


def test_an_http_error_without_a_twilio_code_is_reported_with_its_status(settings, http, store, flows):
    http.respond("POST", r"/Calls\.json$", 503, json={"message": "Service Unavailable"})

    with pytest.raises(TwilioCallError, match=r"^Twilio HTTP 503 error: Service Unavailable") as caught:
        place_call(settings, "main", TO, client=make_client(settings, http_client=http), store=store, flows=flows)

    assert caught.value.status == 503
    assert store.scan("ctx:") == []


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("Connection reset by peer"), TwilioException("something odd")],
    ids=["network", "bare-twilio-exception"],
)
def test_no_answer_from_twilio_means_the_call_may_exist(settings, http, store, flows, failure):
    def fail(_request):
        raise failure

    http.respond_with("POST", r"/Calls\.json$", fail)

    with pytest.raises(CallOutcomeUnknown, match="may or may not have been created: look it up in the Twilio Console"):
        place_call(settings, "main", TO, client=make_client(settings, http_client=http), store=store, flows=flows)

    assert len(store.scan("ctx:")) == 1  # kept: if the call exists, its webhook still finds its variables


# -- texts --------------------------------------------------------------------------------------


def test_sms_posts_to_from_and_body(settings, http):
    http.respond("POST", r"/Messages\.json$", 201, file=FIXTURES / "message_created.json")

    result = send_sms(
        settings, TO, "Your appointment is tomorrow at 10:00.", client=make_client(settings, http_client=http)
    )

    [request] = http.requests
    assert (request.method, request.url) == ("POST", MESSAGES_URL)
    assert request.form == [("To", TO), ("From", FROM), ("Body", "Your appointment is tomorrow at 10:00.")]
    assert (result.sid, result.status) == ("SM1f0e2d3c4b5a69788796a5b4c3d2e1f0", "queued")


def test_sms_dry_run_sends_nothing(settings, http):
    result = send_sms(
        settings, TO, "Hi", from_="+15005550006", client=make_client(settings, http_client=http), dry_run=True
    )

    assert http.requests == []
    assert result.request.url == MESSAGES_URL
    assert list(result.request.form) == [("To", TO), ("From", "+15005550006"), ("Body", "Hi")]


@pytest.mark.parametrize(
    ("to", "body", "message"),
    [
        ("0044 20 7946 0000", "Hi", "--to '0044 20 7946 0000' is not an E.164 phone number"),
        (TO, "  ", "the text is empty: give it with --body TEXT"),
        (TO, "x" * 1601, "the text has 1601 characters; Twilio takes at most 1600"),
    ],
)
def test_bad_texts_are_refused_before_sending(settings, http, to, body, message):
    with pytest.raises(CallRequestError, match=re.escape(message)):
        send_sms(settings, to, body, client=make_client(settings, http_client=http))

    assert http.requests == []


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (21610, "the recipient replied STOP"),
        (21608, "a trial account only texts verified numbers"),
        (21606, "the From number cannot send texts"),
    ],
)
def test_sms_errors_name_the_fix(settings, http, code, fix):
    http.respond("POST", r"/Messages\.json$", 400, json=error_body(code, "Twilio says no."))

    with pytest.raises(TwilioCallError, match=rf"^Twilio error {code}: Twilio says no\.; {fix}"):
        send_sms(settings, TO, "Hi", client=make_client(settings, http_client=http))


# -- the commands -------------------------------------------------------------------------------


@pytest.fixture
def invoke(settings, http, store, flows):
    """Run a command with the fake Twilio, the memory store and the example flows injected."""

    def run(command, *args):
        obj = OutboundDeps(settings=settings, client=make_client(settings, http_client=http), store=store, flows=flows)
        return CliRunner().invoke(command, list(args), obj=obj)

    return run


def test_call_command_places_the_call(invoke, http, store):
    http.respond("POST", r"/Calls\.json$", 201, file=FIXTURES / "call_created.json")

    result = invoke(call_command, "main", "--to", TO, "--state", "menu", "--var", "name=Ada", "--var", "plan=a=b")

    assert result.exit_code == 0, result.output
    assert result.output == f"placed call {CALL_SID} to {TO} into main (status queued)\n"
    [(_key, ctx)] = store.scan("ctx:")
    assert ctx["vars"] == {"name": "Ada", "plan": "a=b"}


def test_call_command_dry_run_prints_the_request(invoke, http, store):
    result = invoke(call_command, "main", "--to", TO, "--var", "name=Ada", "--machine-detection", "Enable", "--dry-run")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"POST {CALLS_URL}"
    assert lines[1:3] == [f"  To={TO}", f"  From={FROM}"]
    assert "  MachineDetection=Enable" in lines
    assert lines[-2:] == ["variables kept server-side, not sent: name", "dry run: nothing sent, nothing stored"]
    assert "Ada" not in result.output
    assert http.requests == [] and store.scan("") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["main"], "give either --to NUMBER (one call) or --csv FILE (a campaign)"),
        (["main", "--to", TO, "--rate", "2"], "--campaign and --rate go with --csv"),
        (["main", "--to", TO, "--var", "novalue"], "'novalue': give NAME=VALUE"),
        (["main", "--to", "4155550143"], "Error: --to '4155550143' is not an E.164 phone number"),
        (["mian", "--to", TO], "Error: no flow 'mian' in"),
        (["main", "--to", TO, "--timeout", "900"], "900 is not in the range 1<=x<=600"),
    ],
)
def test_call_command_failures_exit_non_zero_with_a_message(invoke, http, args, message):
    result = invoke(call_command, *args)

    assert result.exit_code != 0
    assert message in result.output
    assert http.requests == []


def test_call_command_reports_twilio_errors(invoke, http, store):
    http.respond("POST", r"/Calls\.json$", 400, json=error_body(21211, "The 'To' number +15005550001 is not valid."))

    result = invoke(call_command, "main", "--to", "+15005550001")

    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: Twilio error 21211: The 'To' number +15005550001 is not valid.; check the To number: "
    )
    assert store.scan("") == []


def test_sms_command_sends_and_reports(invoke, http):
    http.respond("POST", r"/Messages\.json$", 201, file=FIXTURES / "message_created.json")

    result = invoke(sms_command, "--to", TO, "--body", "Hello there")

    assert result.exit_code == 0, result.output
    assert result.output == f"sent text SM1f0e2d3c4b5a69788796a5b4c3d2e1f0 to {TO} (status queued)\n"
    assert http.requests[0].form[-1] == ("Body", "Hello there")


def test_sms_command_dry_run_and_errors(invoke, http):
    dry = invoke(sms_command, "--to", TO, "--body", "Hello", "--dry-run")
    bad = invoke(sms_command, "--to", "12", "--body", "Hello")

    assert dry.exit_code == 0 and dry.output.splitlines()[-1] == "dry run: nothing sent"
    assert "  Body=Hello" in dry.output
    assert bad.exit_code == 1 and "Error: --to '12' is not an E.164 phone number" in bad.output
    assert http.requests == []


def test_fake_answers_each_call_with_its_own_sid(settings, http):
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    client = make_client(settings, http_client=http)

    first = client.calls.create(to=TO, from_=FROM, url=PUBLIC)
    second = client.calls.create(to=TO, from_=FROM, url=PUBLIC)

    assert first.sid != second.sid and first.sid.startswith("CA") and len(first.sid) == 34


@pytest.mark.parametrize("name", ["now", "open", "call", "_private", "1st"])
def test_an_outbound_variable_cannot_take_a_name_templates_cannot_read(name):
    from ivr.outbound.checks import check_variables

    with pytest.raises(CallRequestError, match=f"variable name '{name}' is not usable in templates"):
        check_variables({name: "x"})
