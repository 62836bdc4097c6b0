"""The REST client factory, the error messages, and the fake HTTP client the tests hand to the real client."""

from __future__ import annotations

import json

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client

from ivr.errors import ConfigError, TwilioCallError
from ivr.outbound.client import make_client, twilio_error
from ivr.phone.fakes import FakeTwilioHttp, RecordedRequest, error_body

ACCOUNT = "ACf2c1b3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "0123456789abcdef0123456789abcdef"
KEY = "SK3a4b5c6d7e8f90f2c1b3d4e5f6071829"
SECRET = "s3cr3t-api-secret-value-0123456789"
CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
CALL = {
    "account_sid": ACCOUNT,
    "api_version": "2010-04-01",
    "direction": "outbound-api",
    "from": "+15017122661",
    "sid": "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "status": "queued",
    "to": "+14155550143",
    "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA0a1b2c3d4e5f60718293a4b5c6d7e8f9.json",
}


def place_call(client: Client):
    return client.calls.create(
        to="+14155550143",
        from_="+15017122661",
        url="https://acme.example.com/ivr/voice/main",
        status_callback="https://acme.example.com/ivr/twilio/status",
        status_callback_event=["initiated", "completed"],
    )


# -- make_client --------------------------------------------------------------------------------


def test_auth_token_credentials_sign_requests_as_the_account():
    http = FakeTwilioHttp().respond("POST", r"/Calls\.json$", 201, json=CALL)
    client = make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http)

    call = place_call(client)

    assert isinstance(client, Client)
    assert (client.username, client.password, client.account_sid) == (ACCOUNT, TOKEN, ACCOUNT)
    assert call.sid == "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert http.requests[0].auth == ACCOUNT
    assert http.requests[0].url == CALLS_URL


def test_api_key_is_preferred_over_the_auth_token():
    settings = {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_KEY": KEY,
        "TWILIO_API_SECRET": SECRET,
    }
    http = FakeTwilioHttp().respond("POST", r"/Calls\.json$", 201, json=CALL)
    client = make_client(settings, http_client=http)

    place_call(client)

    assert (client.username, client.password, client.account_sid) == (KEY, SECRET, ACCOUNT)
    assert http.requests[0].auth == KEY
    assert http.requests[0].url == CALLS_URL  # the account still names the resource


def test_process_environment_does_not_reroute_or_reauthenticate(monkeypatch):
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "9" * 32)
    http = FakeTwilioHttp().respond("POST", r"/Calls\.json$", 201, json=CALL)

    place_call(make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http))

    assert http.requests[0].url == CALLS_URL
    assert http.requests[0].auth == ACCOUNT


BOTH = "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)"
WITH_KEY = (
    ": REST calls with an API key need TWILIO_ACCOUNT_SID, TWILIO_API_KEY and TWILIO_API_SECRET "
    "(or unset TWILIO_API_KEY and TWILIO_API_SECRET to use TWILIO_AUTH_TOKEN)"
)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, f"Twilio credentials are not set: set {BOTH}"),
        ({"TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": "  "}, f"Twilio credentials are not set: set {BOTH}"),
        (
            {"TWILIO_ACCOUNT_SID": ACCOUNT},
            "set TWILIO_AUTH_TOKEN: REST calls need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)",
        ),
        (
            {"TWILIO_AUTH_TOKEN": TOKEN},
            "set TWILIO_ACCOUNT_SID: REST calls need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)",
        ),
        ({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY": KEY}, "set TWILIO_API_SECRET" + WITH_KEY),
        (
            {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_SECRET": SECRET},
            "set TWILIO_API_KEY" + WITH_KEY,
        ),
        ({"TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": SECRET}, "set TWILIO_ACCOUNT_SID" + WITH_KEY),
        ({"TWILIO_API_SECRET": SECRET}, "set TWILIO_ACCOUNT_SID and TWILIO_API_KEY" + WITH_KEY),
        (
            {"TWILIO_ACCOUNT_SID": "acme-prod", "TWILIO_AUTH_TOKEN": TOKEN},
            "TWILIO_ACCOUNT_SID='acme-prod' is not an account SID (those start with AC): "
            "copy the Account SID from the Twilio Console's Account Info",
        ),
        (
            {"TWILIO_ACCOUNT_SID": KEY, "TWILIO_AUTH_TOKEN": TOKEN},
            f"TWILIO_ACCOUNT_SID={KEY!r} is not an account SID (those start with AC) (that is an API key SID: "
            "put it in TWILIO_API_KEY): copy the Account SID from the Twilio Console's Account Info",
        ),
        (
            {"TWILIO_ACCOUNT_SID": KEY, "TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": SECRET},
            f"TWILIO_ACCOUNT_SID={KEY!r} is not an account SID (those start with AC) (that is an API key SID: "
            "put it in TWILIO_API_KEY): copy the Account SID from the Twilio Console's Account Info",
        ),
        (
            {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY": ACCOUNT, "TWILIO_API_SECRET": SECRET},
            f"TWILIO_API_KEY={ACCOUNT!r} is not an API key SID (those start with SK): copy the key's SID "
            "from the Twilio Console, API keys & tokens",
        ),
    ],
)
def test_bad_credentials_name_what_to_set(settings, message):
    with pytest.raises(ConfigError) as caught:
        make_client(settings)
    assert str(caught.value) == message
    assert TOKEN not in str(caught.value)
    assert SECRET not in str(caught.value)


# -- the fake -----------------------------------------------------------------------------------


def test_fake_records_the_exact_form_fields_and_never_the_password():
    http = FakeTwilioHttp().respond("POST", r"/Calls\.json$", 201, json=CALL)

    place_call(make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http))

    assert http.requests == [
        RecordedRequest(
            method="POST",
            url=CALLS_URL,
            params={},
            data={
                "To": "+14155550143",
                "From": "+15017122661",
                "Url": "https://acme.example.com/ivr/voice/main",
                "StatusCallback": "https://acme.example.com/ivr/twilio/status",
                "StatusCallbackEvent": ["initiated", "completed"],
            },
            auth=ACCOUNT,
        )
    ]
    assert TOKEN not in repr(http.requests)


def test_unmatched_request_fails_naming_it_and_is_still_recorded():
    http = FakeTwilioHttp().respond("GET", r"/Calls\.json$", json={"calls": []})
    client = make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http)

    with pytest.raises(AssertionError) as caught:
        place_call(client)

    assert str(caught.value).startswith(f"unexpected Twilio request POST {CALLS_URL} params={{}} data={{'To': ")
    assert "no rule matches" in str(caught.value)
    assert [(r.method, r.url) for r in http.requests] == [("POST", CALLS_URL)]


def test_first_matching_rule_answers():
    http = (
        FakeTwilioHttp()
        .respond("POST", r"/Calls\.json$", 201, json=dict(CALL, sid="CA" + "1" * 32))
        .respond("POST", r"/Calls", 201, json=dict(CALL, sid="CA" + "2" * 32))
    )
    client = make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http)

    assert place_call(client).sid == "CA" + "1" * 32
    assert place_call(client).sid == "CA" + "1" * 32
    assert len(http.requests) == 2


def test_fake_answers_from_a_file(tmp_path):
    body = tmp_path / "call.json"
    body.write_text(json.dumps(dict(CALL, status="ringing")), encoding="utf-8")
    http = FakeTwilioHttp().respond("post", r"/Calls\.json$", 201, file=body)

    call = place_call(make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http))

    assert call.status == "ringing"


def test_respond_refuses_two_bodies(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        FakeTwilioHttp().respond("GET", r".", json={}, file=tmp_path / "x.json")


# -- errors -------------------------------------------------------------------------------------


def test_error_body_surfaces_as_rest_exception_with_its_code():
    http = FakeTwilioHttp().respond(
        "POST", r"/Calls\.json$", 400, json=error_body(21211, "The 'To' number +1555 is not a valid phone number.")
    )
    client = make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http)

    with pytest.raises(TwilioRestException) as caught:
        place_call(client)

    assert (caught.value.code, caught.value.status, caught.value.method) == (21211, 400, "POST")
    error = twilio_error(caught.value)
    assert isinstance(error, TwilioCallError)
    assert str(error) == (
        "Twilio error 21211: Unable to create record: The 'To' number +1555 is not a valid phone number. "
        "(https://www.twilio.com/docs/errors/21211)"
    )
    assert (error.code, error.status) == (21211, 400)


def test_authentication_error_says_which_settings_to_check():
    http = FakeTwilioHttp().respond("POST", r"/Calls\.json$", 401, json=error_body(20003, "Authenticate", 401))
    client = make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}, http_client=http)

    with pytest.raises(TwilioRestException) as caught:
        place_call(client)

    assert str(twilio_error(caught.value)) == (
        "Twilio error 20003: Unable to create record: Authenticate; check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, "
        "or TWILIO_API_KEY with TWILIO_API_SECRET (https://www.twilio.com/docs/errors/20003)"
    )


def test_error_without_a_twilio_code_reports_the_http_status():
    exc = TwilioRestException(502, CALLS_URL, "Unable to create record", 502, "POST")

    error = twilio_error(exc)

    assert str(error) == f"Twilio HTTP 502 error: Unable to create record (POST {CALLS_URL})"
    assert (error.code, error.status) == (None, 502)


def test_problem_details_error_is_described():
    exc = TwilioServiceException(
        "https://www.twilio.com/docs/errors/20001", "Invalid parameter", 400, 20001, detail="PageSize must be <= 1000"
    )

    assert str(twilio_error(exc)) == (
        "Twilio error 20001: Invalid parameter: PageSize must be <= 1000 (https://www.twilio.com/docs/errors/20001)"
    )


def test_other_twilio_exceptions_keep_their_text():
    error = twilio_error(TwilioException("Invalid Account SID"))
    assert str(error) == "Twilio error: Invalid Account SID"
    assert (error.code, error.status) == (None, None)
