"""Recorded calls: what the app writes under IVR_RECORD_DIR, and reading a recording back."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from conftest import BASE, OPEN_HOURS, caller_params, phone_on, sign

from ivr.phone import PhoneCall
from ivr.phone.recording import REDACTED, mask_numbers, read_recording
from ivr.testing import status_callback
from ivr.web.services import services

SID = "CA" + "1" * 32
STARTED = "2026-11-25T15:00:00.000Z"  # OPEN_HOURS as recorded
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'
GATHER_END = {"FinishedOnKey": "", "msg": "Gather End"}
RECORDING = "recording?flow=main&state=voicemail"  # the voicemail's recording status callback

PIN_FLOW = """\
start: pin
states:
  pin:
    sensitive: true
    say: Enter your PIN, or say your password.
    gather: {input: [dtmf, speech], num_digits: 4}
    next: checked
  checked:
    say: "You entered {{ input.digits }}{{ input.speech }}."
    hangup: true
"""


def lines_of(path: Path) -> list[dict]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def record_dir(tmp_path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def recording_app(make_app, record_dir):
    return make_app({"IVR_RECORD_DIR": str(record_dir)})


def sales_busy_call(app, sid: str = SID) -> PhoneCall:
    """Menu, 1 for sales, busy, a 12 second message, its recording callback, hang-up: six webhooks
    (a 30 second call)."""
    phone = phone_on(app)
    phone.status_callback = None  # posted below, with a known duration
    call = phone.dial("main", call_sid=sid)
    call.press("1")
    call.dial_result("busy")
    call.record(seconds=12)
    status_callback(call, "completed", duration=30)
    return call


# -- what is written ------------------------------------------------------------------------------


def test_each_call_gets_its_own_file_named_by_its_call_sid(recording_app, record_dir):
    sales_busy_call(recording_app, "CA" + "a" * 32)
    sales_busy_call(recording_app, "CA" + "b" * 32)
    assert sorted(p.name for p in record_dir.iterdir()) == [f"CA{'a' * 32}.jsonl", f"CA{'b' * 32}.jsonl"]


def test_the_first_line_is_the_header(recording_app, record_dir):
    sales_busy_call(recording_app)
    header = lines_of(record_dir / f"{SID}.jsonl")[0]
    flows = services(recording_app).flows.flows
    assert header == {
        "ivr_recording": 1,
        "call_sid": SID,
        "flows": {fid: flow.content_hash for fid, flow in flows.items()},
        "public_url": None,
        "started": STARTED,
        "masked": False,
        "source": "app",
    }


def test_each_webhook_is_one_line_with_its_exact_request_and_answer(recording_app, record_dir):
    call = sales_busy_call(recording_app)
    lines = lines_of(record_dir / f"{SID}.jsonl")[1:]
    params = caller_params(SID, status="in-progress")
    assert [(line["method"], line["url"]) for line in lines] == [
        ("POST", "http://localhost/voice/main"),
        ("POST", "http://localhost/voice/main/menu"),
        ("POST", "http://localhost/voice/main/sales"),
        ("POST", "http://localhost/voice/main/voicemail"),
        ("POST", "http://localhost/twilio/recording?flow=main&state=voicemail"),
        ("POST", "http://localhost/twilio/status"),
    ]
    assert lines[0]["params"] == caller_params(SID, status="ringing")
    assert lines[1]["params"] == {**params, "Digits": "1", **GATHER_END}
    assert lines[2]["params"] == {
        **params,
        "DialCallStatus": "busy",
        "DialCallSid": call.exchanges[2].params["DialCallSid"],
        "DialCallDuration": "0",
    }
    assert lines[3]["params"]["RecordingDuration"] == "12"
    assert [line["twiml"] for line in lines[:4]] == call.documents
    assert {line["status"] for line in lines} == {200}
    assert {line["t"] for line in lines} == {STARTED}
    assert all("redacted" not in line for line in lines)


def test_status_callbacks_are_recorded(recording_app, record_dir):
    sales_busy_call(recording_app)
    last = lines_of(record_dir / f"{SID}.jsonl")[-1]
    assert last["url"] == "http://localhost/twilio/status"
    params = dict(last["params"])
    assert params.pop("Timestamp").endswith(" GMT")
    assert params == {**caller_params(SID, status="completed"), "CallDuration": "30", "SequenceNumber": "0"}
    assert last["twiml"] == EMPTY


def test_the_signature_is_never_stored(recording_app, record_dir):
    phone_on(recording_app).dial("main", call_sid=SID)
    signature = sign(BASE + "/voice/main", caller_params(SID, status="ringing"))
    text = (record_dir / f"{SID}.jsonl").read_text(encoding="utf-8")
    assert signature not in text
    assert "signature" not in text.lower()


def test_refused_requests_and_the_fallback_url_are_not_recorded(recording_app, record_dir):
    client = recording_app.test_client()
    phone_on(recording_app).dial("main", call_sid=SID)
    params = {**caller_params(SID, status="in-progress"), "Digits": "1"}
    refused = client.post("/voice/main/menu", data=params, headers={"X-Twilio-Signature": "forged"})
    assert refused.status_code == 403
    fallback = client.post("/twilio/fallback", data={**params, "ErrorCode": "11200"})
    assert fallback.status_code == 200
    lines = lines_of(record_dir / f"{SID}.jsonl")
    assert [line["url"] for line in lines[1:]] == ["http://localhost/voice/main"]


def test_a_refused_request_of_a_new_call_creates_no_file(recording_app, record_dir):
    response = recording_app.test_client().post(
        "/voice/main", data=caller_params(SID), headers={"X-Twilio-Signature": "forged"}
    )
    assert response.status_code == 403
    assert not (record_dir / f"{SID}.jsonl").exists()


def test_recording_is_off_by_default(make_app, tmp_path, monkeypatch):
    monkeypatch.delenv("IVR_RECORD_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    app = make_app()
    call = sales_busy_call(app)
    assert call.end_reason == "hangup"
    assert services(app).recorder is None
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("sid", ["../../evil", "CA1/../../evil", "{tmp}/evil", "..", "CA1 evil"])
def test_a_call_sid_never_becomes_a_path(make_app, tmp_path, sid):
    record_dir = tmp_path / "a" / "b"
    app = make_app({"IVR_RECORD_DIR": str(record_dir)})
    call = phone_on(app).dial("main", call_sid=sid.format(tmp=tmp_path))
    assert call.heard[0] == "Thanks for calling Acme."  # the caller does not notice
    assert list(record_dir.iterdir()) == []
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["a", "a/b"]


# -- masked numbers -------------------------------------------------------------------------------


def test_mask_numbers_keeps_the_first_four_and_the_last_two_digits():
    assert mask_numbers("+14155550143") == "+14150000043"
    assert mask_numbers('<Number>+15005550006</Number> callerId="+12125550188"') == (
        '<Number>+15000000006</Number> callerId="+12120000088"'
    )
    assert mask_numbers("press 1234567 or +1234567") == "press 1234567 or +1234567"  # too short to be a number


def test_masked_recordings_keep_no_phone_number(make_app, record_dir):
    app = make_app({"IVR_RECORD_DIR": str(record_dir), "IVR_MASK_NUMBERS": "1"})
    call = phone_on(app).dial("main", call_sid=SID, from_="+14155550143", to="+12125550188")
    call.press("2")
    call.press("1")  # billing: two <Number>s, our number as callerId
    assert "+15005550007" in call.documents[-1]
    call.dial_result("completed", duration=60)  # then goodbye: the phone posts the completed status
    path = record_dir / f"{SID}.jsonl"
    header, lines = read_recording(path)
    assert header["masked"] is True
    for key, value in {"From": "+14150000043", "To": "+12120000088"}.items():
        assert {line["params"][key] for line in lines} == {value}
    assert {line["params"]["Caller"] for line in lines} == {"+14150000043"}
    assert {line["params"]["Called"] for line in lines} == {"+12120000088"}
    billing = lines[2]["twiml"]
    assert "<Number>+15000000006</Number><Number>+15000000007</Number>" in billing
    assert 'callerId="+12120000088"' in billing
    text = path.read_text(encoding="utf-8")
    for number in ("+14155550143", "+12125550188", "+15005550006", "+15005550007"):
        assert number not in text
        assert number[2:] not in text  # nor without the country code


def test_a_masked_get_webhook_keeps_no_phone_number_in_its_url(make_app, record_dir):
    app = make_app({"IVR_RECORD_DIR": str(record_dir), "IVR_MASK_NUMBERS": "1"})
    query = urllib.parse.urlencode(caller_params(SID, "+14155550143", "+12125550188"))
    signature = sign(f"{BASE}/voice/main?{query}", {})  # Twilio signs a GET's URL with its query
    response = app.test_client().get(f"/voice/main?{query}", headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    [line] = read_recording(record_dir / f"{SID}.jsonl")[1]
    assert line["method"] == "GET"
    assert line["params"]["From"] == "+14150000043"
    assert "4155550143" not in line["url"]
    assert "2125550188" not in line["url"]


# -- sensitive states -----------------------------------------------------------------------------


@pytest.fixture
def pin_app(make_app, flows_dir, record_dir):
    (flows_dir / "pin.yaml").write_text(PIN_FLOW, encoding="utf-8")
    return make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_RECORD_DIR": str(record_dir)})


def test_a_sensitive_states_input_is_redacted_in_params_and_twiml(pin_app, record_dir):
    call = phone_on(pin_app).dial("pin", call_sid=SID)
    call.press("4321")
    assert call.heard == ["You entered 4321."]  # the caller hears it; the recording must not keep it
    path = record_dir / f"{SID}.jsonl"
    _header, lines = read_recording(path)
    entry, pin, status = lines
    assert status["url"] == "http://localhost/twilio/status"  # the phone hung up
    assert "redacted" not in entry
    assert pin["redacted"] is True
    assert pin["params"] == {**caller_params(SID, status="in-progress"), "Digits": REDACTED, **GATHER_END}
    # Every Say of the answer is blanked: a read-back may have reformatted the input ("4 3 2 1").
    assert "<Say>[redacted]</Say><Hangup />" in pin["twiml"]
    assert "4321" not in path.read_text(encoding="utf-8")


def test_a_sensitive_spoken_answer_with_markup_characters_is_redacted_in_the_twiml(pin_app, record_dir):
    call = phone_on(pin_app).dial("pin", call_sid=SID)
    call.say("salt & pepper <3")
    assert call.heard == ["You entered salt & pepper <3."]
    text = (record_dir / f"{SID}.jsonl").read_text(encoding="utf-8")
    assert "pepper" not in text


# -- reading a recording --------------------------------------------------------------------------


@pytest.fixture
def recorded(recording_app, record_dir) -> Path:
    sales_busy_call(recording_app)
    return record_dir / f"{SID}.jsonl"


def test_read_recording_gives_the_header_and_the_webhooks(recorded):
    header, lines = read_recording(recorded)
    assert header["call_sid"] == SID
    assert [line["url"].rsplit("/", 1)[-1] for line in lines] == [
        "main",
        "menu",
        "sales",
        "voicemail",
        RECORDING,
        "status",
    ]


def test_read_recording_drops_a_torn_last_line(recorded):
    text = recorded.read_text(encoding="utf-8")
    last = text.rstrip("\n").rfind("\n") + 1
    recorded.write_text(text[: last + 40], encoding="utf-8")  # the app died writing the status line
    header, lines = read_recording(recorded)
    assert header["call_sid"] == SID
    assert [line["url"].rsplit("/", 1)[-1] for line in lines] == ["main", "menu", "sales", "voicemail", RECORDING]


def test_read_recording_refuses_a_corrupt_middle_line_naming_it(recorded):
    raw = recorded.read_text(encoding="utf-8").splitlines()
    raw[2] = raw[2][:50]
    recorded.write_text("\n".join(raw) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{recorded}:3: not a JSON line$"):
        read_recording(recorded)


def test_read_recording_refuses_a_file_without_its_header(recorded):
    raw = recorded.read_text(encoding="utf-8").splitlines(keepends=True)
    recorded.write_text("".join(raw[1:]), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{recorded}:1: not an ivr recording"):
        read_recording(recorded)


def test_a_crash_mid_line_loses_only_that_line_when_the_call_goes_on(recording_app, record_dir):
    call = phone_on(recording_app).dial("main", call_sid=SID)
    call.press("1")
    path = record_dir / f"{SID}.jsonl"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.rstrip("\n").rfind("\n") + 40], encoding="utf-8")  # torn mid-line
    call.dial_result("busy")  # the call goes on after the restart
    status_callback(call, "completed")
    _header, lines = read_recording(path)
    assert [line["url"].rsplit("/", 1)[-1] for line in lines] == ["main", "sales", "status"]


def test_recording_starts_at_the_apps_clock(make_app, record_dir):
    app = make_app({"IVR_RECORD_DIR": str(record_dir)}, now=OPEN_HOURS.replace(minute=7, microsecond=123456))
    phone_on(app).dial("main", call_sid=SID)
    header, [line] = read_recording(record_dir / f"{SID}.jsonl")
    assert header["started"] == line["t"] == "2026-11-25T15:07:00.123Z"
