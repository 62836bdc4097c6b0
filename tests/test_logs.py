"""Log lines: no caller input, and with IVR_MASK_NUMBERS=1 no phone number in clear, in real requests."""

from __future__ import annotations

import logging
import re
import sys
import urllib.parse

from conftest import BASE, caller_params, sign

from ivr.web import logs

SID = "CA" + "7" * 32
CALLER, NUMBER = "+15551230000", "+15559870000"
MASKED_CALLER = "+15550000000"  # the first four digits and the last two kept
DIGITS, SPEECH = "4929", "my secret pin is 4929"
# An E.164 number in clear: "+1" and at least eight digits, of which not all but two are zeros.
CLEAR_NUMBER = re.compile(r"\+1555(?!0+\d\d\b)\d{6,}")


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
