"""Twilio's Call Events for a real call, fetched through the REST client and turned into a recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.errors import TwilioCallError
from ivr.outbound.client import make_client
from ivr.phone.events import events_to_recording, fetch_events, load_events_file, webhook_name, write_recording
from ivr.phone.fakes import FakeTwilioHttp, error_body
from ivr.phone.recording import read_recording

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "twilio"
EVENTS = FIXTURES / "call_events.json"
EXPECTED = FIXTURES / "call_events.recording.jsonl"
ACCOUNT = "ACf2c1b3d4e5f60718293a4b5c6d7e8f90"
CALL = "CA5e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
EVENTS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/Events.json"
BASE = "https://acme.example.com/ivr"


def client_for(http: FakeTwilioHttp):
    return make_client({"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "0" * 32}, http_client=http)


def expected_lines() -> list[dict]:
    return [json.loads(line) for line in EXPECTED.read_text(encoding="utf-8").splitlines()]


def event(url: str, date: str, sid: str = CALL, **params) -> dict:
    return {
        "request": {"method": "POST", "url": url, "parameters": {"call_sid": sid, **params}},
        "response": {
            "content_type": "text/xml",
            "date_created": date,
            "request_duration": 10,
            "response_body": "<Response/>",
            "response_code": 200,
        },
    }


# -- fetching -----------------------------------------------------------------------------------


def test_fetch_events_reads_the_call_events_resource_and_converts_the_call():
    http = FakeTwilioHttp().respond("GET", r"/Calls/CA\w+/Events\.json$", file=EVENTS)

    events = fetch_events(client_for(http), CALL)
    lines = events_to_recording(events, CALL)

    assert [(r.method, r.url, r.params, r.data, r.auth) for r in http.requests] == [
        ("GET", EVENTS_URL, {}, {}, ACCOUNT)
    ]
    assert len(events) == 5
    assert lines[0] == {
        "ivr_recording": 1,
        "call_sid": CALL,
        "flows": {},
        "public_url": BASE,
        "started": "2026-11-25T15:00:01.000Z",
        "masked": False,
        "source": "twilio-events",
    }
    steps = [(line["t"], line["method"], line["url"], line["status"]) for line in lines[1:]]
    assert steps == [
        ("2026-11-25T15:00:01.000Z", "POST", f"{BASE}/voice/main", 200),
        ("2026-11-25T15:00:09.000Z", "POST", f"{BASE}/voice/main/menu", 200),
        ("2026-11-25T15:00:16.000Z", "POST", f"{BASE}/voice/main/sales", 200),
        ("2026-11-25T15:00:31.000Z", "POST", f"{BASE}/voice/main/voicemail", 200),
    ]  # the status callback to /twilio/status is dropped
    entry, gather, dial, record = (line["params"] for line in lines[1:])
    assert (entry["CallSid"], entry["ApiVersion"], entry["FromCity"], entry["StirVerstat"]) == (
        CALL,
        "2010-04-01",
        "SAN FRANCISCO",
        "TN-Validation-Passed-A",
    )
    assert (gather["Digits"], gather["FinishedOnKey"], gather["msg"]) == ("1", "", "Gather End")
    assert (dial["DialCallStatus"], dial["DialCallSid"]) == ("busy", "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    assert (record["RecordingDuration"], record["Digits"], record["RecordingSid"]) == (
        "12",
        "#",
        "RE9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    )
    assert all(key[0].isupper() or key == "msg" for line in lines[1:] for key in line["params"])
    assert "<Dial action=" in lines[2]["twiml"]
    assert lines == expected_lines()


def test_fetch_events_follows_every_page():
    page = json.loads(EVENTS.read_text(encoding="utf-8"))
    uri = page["uri"].split("?")[0]
    first = dict(
        page, events=page["events"][:3], end=2, page_size=3, next_page_uri=f"{uri}?PageSize=3&Page=1&PageToken=PA3"
    )
    second = dict(page, events=page["events"][3:], start=3, end=4, page=1, page_size=3, next_page_uri=None)
    http = (
        FakeTwilioHttp()
        .respond("GET", r"/Events\.json\?PageSize=3&Page=1&PageToken=PA3$", json=second)
        .respond("GET", r"/Events\.json$", json=first)
    )

    events = fetch_events(client_for(http), CALL)

    assert [r.url for r in http.requests] == [EVENTS_URL, f"{EVENTS_URL}?PageSize=3&Page=1&PageToken=PA3"]
    assert events_to_recording(events, CALL) == expected_lines()


def test_fetch_events_failure_is_a_twilio_call_error():
    message = f"The requested resource /2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}/Events.json was not found"
    http = FakeTwilioHttp().respond("GET", r"/Events\.json$", 404, json=error_body(20404, message, 404))

    with pytest.raises(TwilioCallError) as caught:
        fetch_events(client_for(http), CALL)

    assert str(caught.value) == (
        f"Twilio error 20404: Unable to fetch page: {message}; the resource does not exist in this account "
        "(or is not visible yet) (https://www.twilio.com/docs/errors/20404)"
    )


def test_fetch_events_refuses_what_is_not_a_call_sid():
    http = FakeTwilioHttp()
    with pytest.raises(TwilioCallError, match=r"'CA\.\./x' is not a call SID"):
        fetch_events(client_for(http), "CA../x")
    assert http.requests == []


# -- files --------------------------------------------------------------------------------------


def test_load_events_file_reads_a_page_or_a_plain_list(tmp_path):
    page_events = load_events_file(EVENTS)
    plain = tmp_path / "events.json"
    plain.write_text(json.dumps(page_events), encoding="utf-8")

    assert [e["request"]["url"] for e in page_events] == [
        f"{BASE}/voice/main",
        f"{BASE}/voice/main/menu",
        f"{BASE}/voice/main/sales",
        f"{BASE}/voice/main/voicemail",
        f"{BASE}/twilio/status",
    ]
    assert load_events_file(plain) == page_events


def test_load_events_file_refuses_other_json(tmp_path):
    path = tmp_path / "call.json"
    path.write_text('{"sid": "CA123"}', encoding="utf-8")
    with pytest.raises(ValueError, match="neither a page of Twilio call events"):
        load_events_file(path)


def test_written_recording_is_compact_utf8_json_lines_that_replay_can_read(tmp_path):
    lines = events_to_recording(load_events_file(EVENTS), CALL)
    lines[2]["params"]["SpeechResult"] = "Señor, ventas"

    path = write_recording(lines, tmp_path / "calls" / f"{CALL}.jsonl")

    raw = path.read_bytes().decode("utf-8").splitlines()
    assert len(raw) == 5
    assert raw[0] == (
        f'{{"ivr_recording":1,"call_sid":"{CALL}","flows":{{}},"public_url":"{BASE}",'
        '"started":"2026-11-25T15:00:01.000Z","masked":false,"source":"twilio-events"}'
    )
    assert '"SpeechResult":"Señor, ventas"' in raw[2]
    header, webhooks = read_recording(path)
    assert header == lines[0]
    assert webhooks == lines[1:]


# -- conversion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("call_sid", "CallSid"),
        ("api_version", "ApiVersion"),
        ("from_city", "FromCity"),
        ("from", "From"),
        ("speech_result", "SpeechResult"),
        ("dial_call_status", "DialCallStatus"),
        ("finished_on_key", "FinishedOnKey"),
        ("recording_url", "RecordingUrl"),
        ("answered_by", "AnsweredBy"),
        ("add_ons", "AddOns"),
        ("msg", "msg"),
        ("CallSid", "CallSid"),
    ],
)
def test_webhook_names_come_back_from_snake_case(key, name):
    assert webhook_name(key) == name


def test_webhooks_are_ordered_by_time_keeping_twilios_order_within_a_second():
    events = [
        event(f"{BASE}/voice/main/menu", "Wed, 25 Nov 2026 15:00:09 +0000", digits="1"),
        event(f"{BASE}/voice/main", "Wed, 25 Nov 2026 15:00:01 +0000"),
        event(f"{BASE}/voice/main/menu?event=no_input", "Wed, 25 Nov 2026 15:00:09 +0000"),
    ]

    lines = events_to_recording(events, CALL)

    assert [(line["url"], line["t"]) for line in lines[1:]] == [
        (f"{BASE}/voice/main", "2026-11-25T15:00:01.000Z"),
        (f"{BASE}/voice/main/menu", "2026-11-25T15:00:09.000Z"),
        (f"{BASE}/voice/main/menu?event=no_input", "2026-11-25T15:00:09.000Z"),
    ]
    assert lines[0]["started"] == "2026-11-25T15:00:01.000Z"


def test_a_list_that_runs_newest_first_is_read_backwards():
    events = [
        event(f"{BASE}/voice/main/voicemail", "Wed, 25 Nov 2026 15:00:31 +0000"),
        event(f"{BASE}/voice/main/menu?event=no_input", "Wed, 25 Nov 2026 15:00:09 +0000"),
        event(f"{BASE}/voice/main/menu", "Wed, 25 Nov 2026 15:00:09 +0000"),
        event(f"{BASE}/voice/main", "Wed, 25 Nov 2026 15:00:01 +0000"),
    ]

    urls = [line["url"] for line in events_to_recording(events, CALL)[1:]]

    assert urls == [
        f"{BASE}/voice/main",
        f"{BASE}/voice/main/menu",
        f"{BASE}/voice/main/menu?event=no_input",
        f"{BASE}/voice/main/voicemail",
    ]


def test_only_voice_webhooks_of_the_call_are_kept():
    other_leg = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    events = [
        {
            "request": {
                "method": "POST",
                "url": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
                "parameters": {"to": "+14155550143", "url": f"{BASE}/voice/main"},
            },
            "response": {
                "date_created": "Wed, 25 Nov 2026 14:59:58 +0000",
                "response_code": 201,
                "response_body": "{}",
            },
        },
        event(f"{BASE}/voice/main", "Wed, 25 Nov 2026 15:00:01 +0000"),
        event(f"{BASE}/twilio/status", "Wed, 25 Nov 2026 15:00:02 +0000", call_status="ringing"),
        event(f"{BASE}/twilio/recording?flow=main&state=voicemail", "Wed, 25 Nov 2026 15:00:40 +0000"),
        event(f"{BASE}/voice/main/whisper", "Wed, 25 Nov 2026 15:00:20 +0000", sid=other_leg),
    ]

    lines = events_to_recording(events, CALL)

    assert [line["url"] for line in lines[1:]] == [f"{BASE}/voice/main"]
    assert lines[0]["public_url"] == BASE
    assert lines[0]["started"] == "2026-11-25T15:00:01.000Z"


def test_public_url_without_prefix_and_base64_bodies():
    twiml = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
    entry = event("http://localhost:5000/voice/hours?state=closed", "2026-11-25T15:00:01+00:00", digits=None)
    entry["response"]["response_body"] = (
        "PD94bWwgdmVyc2lvbj0iMS4wIiBlbmNvZGluZz0iVVRGLTgiPz48UmVzcG9uc2U+PEhhbmd1cCAvPjwvUmVzcG9uc2U+"
    )

    lines = events_to_recording([entry], CALL)

    assert lines[0]["public_url"] == "http://localhost:5000"
    assert lines[1]["twiml"] == twiml
    assert lines[1]["params"] == {"CallSid": CALL, "Digits": ""}


def test_no_voice_webhooks_is_an_error():
    with pytest.raises(ValueError, match=f"no voice webhooks of {CALL} among 1 events"):
        events_to_recording([event(f"{BASE}/twilio/status", "Wed, 25 Nov 2026 15:00:02 +0000")], CALL)
