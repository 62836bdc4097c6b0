"""Log lines: no caller input, and with IVR_MASK_NUMBERS=1 no phone number in clear, in real requests."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import urllib.parse
from pathlib import Path

import pytest
from conftest import BASE, caller_params, sign

from ivr.web import logs

SID = "CA" + "7" * 32
CALLER, NUMBER = "+15551230000", "+15559870000"
MASKED_CALLER = "+15550000000"  # the first four digits and the last two kept
DIGITS, SPEECH = "4929", "my secret pin is 4929"
# An E.164 number in clear: "+1" and at least eight digits, of which not all but two are zeros.
CLEAR_NUMBER = re.compile(r"\+1555(?!0+\d\d\b)\d{6,}")
LINE_FLOWS = Path(__file__).resolve().parent / "flows" / "business"  # `line` runs lookup_caller first
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def lines(caplog) -> str:
    """Every line the ivr loggers wrote, formatted as a handler would (tracebacks included)."""
    formatter = logging.Formatter("%(name)s: %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records if r.name.startswith("ivr"))


def test_a_get_webhook_with_a_bad_signature_does_not_log_its_query(client, caplog):
    params = caller_params(SID, CALLER, NUMBER) | {"Digits": DIGITS, "SpeechResult": SPEECH}
    query = urllib.parse.urlencode(params)
    headers = {"X-Twilio-Signature": sign(f"{BASE}/voice/main/menu?state=x", {})}
    response = client.get(f"/voice/main/menu?{query}", headers=headers)
    assert response.status_code == 403
    text = lines(caplog)
    assert "refused GET /voice/main/menu: invalid X-Twilio-Signature" in text
    assert "Digits=*&SpeechResult=*" in text  # which parameters were signed, never what they held
    for secret in (DIGITS, "secret", "15551230000", "15559870000"):
        assert secret not in text


def test_the_fallback_logs_the_failed_url_without_its_query(client, caplog):
    failed = f"{BASE}/voice/main/menu?state=menu&Digits={DIGITS}&From=%2B15551230000"
    assert client.post("/twilio/fallback", data={"CallSid": SID, "ErrorUrl": failed}).status_code == 200
    text = lines(caplog)
    assert f"ErrorUrl={BASE}/voice/main/menu?state=menu&Digits=*&From=*)" in text
    assert DIGITS not in text and "15551230000" not in text


def requests_with_numbers(app) -> None:
    """Real requests whose log lines carry numbers: the browser phone, a text that fails, the fallback."""
    client = app.test_client()
    assert client.post("/phone/calls", json={"flow": "main", "from": CALLER}).status_code == 201
    failed = f"{BASE}/voice/main?From=%2B15551230000"
    assert client.post("/twilio/fallback", data={"CallSid": SID, "ErrorUrl": failed, "From": CALLER}).status_code == 200
    with app.app_context():
        logging.getLogger("ivr.web").error("CallSid=%s lookup for %s failed", SID, CALLER)
    try:
        raise RuntimeError(f"no account for {CALLER}")
    except RuntimeError:
        logging.getLogger("ivr.hooks").exception("CallSid=%s hook 'lookup' failed", SID)  # outside any request


def test_with_mask_numbers_no_log_line_holds_a_number_in_clear(make_app, caplog):
    app = make_app({"IVR_MASK_NUMBERS": "1", "IVR_PHONE": "1", "IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None})
    with caplog.at_level(logging.INFO, logger="ivr"):
        requests_with_numbers(app)
    text = lines(caplog)
    assert f"browser phone called main from {MASKED_CALLER}" in text
    assert f"no account for {MASKED_CALLER}" in text  # the traceback too
    assert CLEAR_NUMBER.findall(text) == []


def test_without_mask_numbers_the_lines_keep_the_numbers(make_app, caplog):
    app = make_app({"IVR_PHONE": "1", "IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None})
    with caplog.at_level(logging.INFO, logger="ivr"):
        requests_with_numbers(app)
    assert f"browser phone called main from {CALLER}" in lines(caplog)


def test_the_masking_filter_is_on_every_ivr_modules_logger(make_app):
    """A logger's filter does not see its children's lines: each module's logger must carry it."""
    make_app({"IVR_MASK_NUMBERS": "1"})
    module_loggers = {
        module.log
        for name, module in list(sys.modules.items())
        if name.startswith("ivr.") and isinstance(getattr(module, "log", None), logging.Logger)
    }
    assert len(module_loggers) >= 5
    for logger in module_loggers:
        assert any(isinstance(f, logs.MaskNumbers) for f in logger.filters), logger.name


# -- JSON lines (IVR_LOG_FORMAT=json) -----------------------------------------------------------


@pytest.fixture
def json_log():
    """The ivr loggers' lines at INFO as gunicorn's JSON config writes them: call it for the raw text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("ivr")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream.getvalue
    logger.removeHandler(handler)
    logger.setLevel(level)


def signed_post(client, path: str, params: dict):
    return client.post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path.split("?")[0], params)})


def webhooks_with_caller_input(make_app, hooks) -> None:
    """A call through main's menu with keys and speech, a refused GET, and a hook that fails naming the caller."""
    params = caller_params(SID, CALLER, NUMBER)
    client = make_app({"IVR_MASK_NUMBERS": "1"}).test_client()
    assert signed_post(client, "/voice/main", params).status_code == 200
    input_ = params | {"Digits": DIGITS, "SpeechResult": SPEECH}
    assert signed_post(client, "/voice/main/menu", input_).status_code == 200
    no_input = f"{BASE}/voice/main/menu?event=no_input"
    headers = {"X-Twilio-Signature": sign(no_input, params)}
    assert client.post("/voice/main/menu?event=no_input", data=params, headers=headers).status_code == 200
    assert client.get(f"/voice/main/menu?{urllib.parse.urlencode(input_)}").status_code == 403
    hooks.raises("lookup_caller", RuntimeError(f"no account for {CALLER}"))
    hooks.returns("balance", outcome="found")
    line = make_app({"IVR_MASK_NUMBERS": "1", "IVR_FLOWS_DIR": str(LINE_FLOWS)}).test_client()
    assert signed_post(line, "/voice/line", caller_params(SID, CALLER, NUMBER)).status_code == 200


def test_json_lines_of_real_webhooks_parse_one_by_one_and_name_the_call(make_app, hooks, json_log):
    webhooks_with_caller_input(make_app, hooks)
    lines = [json.loads(text) for text in json_log().splitlines()]
    assert all(ISO_UTC.match(line["time"]) and line["level"] and line["logger"].startswith("ivr") for line in lines)
    [step, redirect] = [line for line in lines if line["message"].endswith("menu -> menu")]
    assert step["level"] == "INFO" and step["logger"] == "ivr.web"
    assert (step["CallSid"], step["flow"], step["state"], step["next_state"]) == (SID, "main", "menu", "menu")
    assert 0 <= step["duration"] < 10
    [entry] = [line for line in lines if line["message"].endswith("(entry) -> menu")]
    assert "state" not in entry and entry["next_state"] == "menu"
    assert "event" not in step and redirect["event"] == "no_input"
    [failed] = [line for line in lines if "hook 'lookup_caller' failed" in line["message"]]
    assert (failed["level"], failed["flow"], failed["CallSid"]) == ("ERROR", "line", SID)
    assert f"RuntimeError: no account for {MASKED_CALLER}" in failed["exception"]


def test_json_lines_carry_no_caller_input_and_no_number_in_clear(make_app, hooks, json_log):
    webhooks_with_caller_input(make_app, hooks)
    text = json_log()
    assert "refused GET /voice/main/menu" in text
    for secret in (DIGITS, "secret", "SpeechResult=my"):
        assert secret not in text
    assert CLEAR_NUMBER.findall(text) == []


def test_a_call_field_without_its_shape_is_left_out_of_a_json_line(json_log):
    """Fields a log call passes are kept only when they look like what the app writes, never like input."""
    log = logging.getLogger("ivr.web")
    log.info("checked", extra={"CallSid": CALLER, "state": SPEECH, "event": "no_input", "duration": "1"})
    [line] = [json.loads(text) for text in json_log().splitlines()]
    assert line["event"] == "no_input"
    assert {"CallSid", "state", "duration"}.isdisjoint(line)


def test_a_json_line_keeps_a_multi_line_message_on_one_line(json_log):
    logging.getLogger("ivr.web").warning("first\nsecond")
    [text] = json_log().splitlines()
    assert json.loads(text)["message"] == "first\nsecond"


def test_json_lines_of_other_loggers_are_masked_too(make_app):
    """gunicorn's and werkzeug's lines have no masking filter: the JSON formatter masks them itself."""
    app = make_app({"IVR_MASK_NUMBERS": "1"})
    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, "worker for %s", (CALLER,), None)
    with app.app_context():
        line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == f"worker for {MASKED_CALLER}"


def test_a_get_callback_without_recordingsid_logs_no_query_values(app, caplog):
    """A number may send its callbacks with GET: the query is then Twilio's parameters, the caller's among them."""
    import urllib.parse

    from conftest import BASE, caller_params, sign

    params = {**caller_params("CA" + "e" * 32), "TranscriptionText": "my pin is 4929"}
    target = "/twilio/transcription?" + urllib.parse.urlencode(params)
    with caplog.at_level(logging.INFO, logger="ivr"):
        response = app.test_client().get(target, headers={"X-Twilio-Signature": sign(BASE + target, {})})
    assert response.status_code == 200
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "without RecordingSid" in text
    assert "4929" not in text and "15551230000" not in text
