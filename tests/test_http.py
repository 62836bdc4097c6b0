"""The webhook body parsed once (ivr/web/http.py): the same parameters werkzeug's request.form gives, and the same
signature RequestValidator computes from them (and the app's own HMAC, ivr/web/security.py), over the fuzzing
corpus's hostile parameter sets."""

from __future__ import annotations

import urllib.parse

from conftest import BASE, TOKEN
from flask import Flask, request
from fuzzing import parameters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr.web.http import Form, form, webhook_params
from ivr.web.security import expected_signature

VALIDATOR = RequestValidator(TOKEN)
APP = Flask(__name__)


def _body(pairs) -> bytes:
    return "&".join(
        f"{urllib.parse.quote_from_bytes(k.encode(), safe='')}={urllib.parse.quote_from_bytes(v, safe='')}"
        for k, v in pairs
    ).encode()


def _both(body: bytes, *, method: str = "POST", content_type: str = "application/x-www-form-urlencoded"):
    """(ours, werkzeug's) for the same request."""
    with APP.test_request_context("/voice/main/menu", method=method, data=body, content_type=content_type):
        ours = form()
        return ours, request.form.copy(), webhook_params()


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=parameters(), algorithm=st.sampled_from(("HMAC_SHA1", "HMAC_SHA256")))
def test_the_parsed_form_and_its_signature_are_werkzeugs(pairs, algorithm):
    ours, theirs, params = _both(_body(pairs))
    assert dict(ours) == theirs.to_dict() == params
    for name in theirs:
        assert ours.getall(name) == theirs.getlist(name)  # repeated parameters, in the order sent
    url = f"{BASE}/voice/main/menu"
    assert VALIDATOR.compute_signature(url, ours, algorithm) == VALIDATOR.compute_signature(url, theirs, algorithm)
    # The app's own HMAC, the same as the validator's over every request the corpus makes.
    assert expected_signature(VALIDATOR.token, url, ours, algorithm) == VALIDATOR.compute_signature(
        url, theirs, algorithm
    )


@settings(max_examples=500, deadline=None, derandomize=True)
@given(text=st.text(alphabet="ab=&+%2FfF0é ", max_size=40))
def test_parse_decodes_any_text_as_parse_qsl_does(text):
    expected = urllib.parse.parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
    parsed = Form.parse(text)
    assert [(name, value) for name in parsed._lists for value in parsed.getall(name)] == [
        (name, value) for name in dict.fromkeys(n for n, _ in expected) for n2, value in expected if n2 == name
    ]


def test_repeated_parameters_are_all_signed_sorted_and_deduplicated():
    ours, theirs, params = _both(b"b=2&a=1&b=1&b=2")
    assert ours.getall("b") == ["2", "1", "2"] and params == {"b": "2", "a": "1"}
    url = f"{BASE}/x"
    expected = VALIDATOR.compute_signature(url, {"a": "1", "b": "1"})  # b's values sorted, the repeat once
    assert VALIDATOR.compute_signature(url, ours) != expected  # b=2 is signed too
    assert VALIDATOR.compute_signature(url, ours) == VALIDATOR.compute_signature(url, theirs)
    assert expected_signature(VALIDATOR.token, url, ours) == VALIDATOR.compute_signature(url, theirs)


def test_a_body_that_is_not_utf8_is_an_empty_form_as_werkzeug_makes_it():
    ours, theirs, _ = _both(b"CallSid=CA1&Digits=\xff\xfe")
    assert ours == {} and theirs.to_dict() == {}


def test_percent_encoded_bytes_that_are_not_utf8_are_quoted_again_as_werkzeug_does():
    ours, theirs, _ = _both(b"SpeechResult=%FF%41")
    assert ours == theirs.to_dict() == {"SpeechResult": "%FFA"}


def test_other_content_types_and_gets_have_no_form():
    assert _both(b'{"CallSid": "CA1"}', content_type="application/json")[0] == {}
    with APP.test_request_context("/voice/main?CallSid=CA1", method="GET"):
        assert form() == {} and webhook_params() == {"CallSid": "CA1"}


def test_the_body_is_parsed_once_and_request_form_still_reads_it():
    with APP.test_request_context("/voice/main", method="POST", data={"CallSid": "CA1", "Digits": "2"}):
        first = form()
        assert form() is first
        assert request.form.to_dict() == {"CallSid": "CA1", "Digits": "2"}  # the bytes were kept for it


def test_webhook_params_is_a_copy_the_caller_may_change():
    with APP.test_request_context("/voice/main", method="POST", data={"CallSid": "CA1"}):
        params = webhook_params()
        params["CallSid"] = "changed"
        assert form()["CallSid"] == "CA1"
        assert type(params) is dict and isinstance(form(), Form)
