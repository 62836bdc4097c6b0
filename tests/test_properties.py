"""Every webhook route, under hostile input (Hypothesis, a fixed seed): each answer is 200 with TwiML
that validates (texts: one Message), or 403 exactly when the signature is bad; never a traceback or
a Python repr; nothing the caller said is run as a template. The strategies are in tests/fuzzing.py,
shared with benchmarks/fuzz.py."""

from __future__ import annotations

import pytest
from conftest import OPEN_HOURS, suite_settings
from fuzzing import ROUTES, Webhook, odd_voice_webhooks, problems, send, webhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr import create_app

EXAMPLES_PER_ROUTE = 260  # 2,080 examples in all: the file runs in under 20 s on two shared cores
FUZZ = settings(
    derandomize=True,  # a fixed seed: the same examples on every run and every machine
    database=None,
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def fuzz_client(example_flows):
    """One app for every example: the shipped flows, the memory store, a token."""
    app = create_app(suite_settings(example_flows), clock=lambda: OPEN_HOURS)
    return app.test_client()


def answer_problems(client, webhook: Webhook) -> list[str]:
    response = send(client, webhook)
    return problems(webhook, response.status_code, response.get_data())


@pytest.mark.parametrize("route", ROUTES)
@FUZZ
@given(data=st.data())
def test_every_route_answers_valid_twiml_or_refuses_a_bad_signature(fuzz_client, route, data):
    webhook = data.draw(webhooks(route), label="webhook")
    assert answer_problems(fuzz_client, webhook) == []


@settings(FUZZ, max_examples=50)
@given(webhook=odd_voice_webhooks())
def test_every_url_under_voice_answers_twiml_even_percent_encoded_or_empty(fuzz_client, webhook):
    assert answer_problems(fuzz_client, webhook) == []


VALID = b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello.</Say><Hangup /></Response>'
SPOKEN = Webhook("/voice/<flow>/<state>", "POST", "/voice/main/menu", (("SpeechResult", b"{{7*7}}"),))


@pytest.mark.parametrize(
    ("webhook", "status", "body", "complaint"),
    [
        (SPOKEN, 200, VALID, None),
        (SPOKEN, 404, b"<!doctype html><title>404 Not Found</title>", "404 (wanted 200 with TwiML)"),
        (SPOKEN, 200, b"<Response><Say>Hi</Say><Bogus /></Response>", "TwiML does not validate"),
        (SPOKEN, 200, b"<Response><Say>&#1;</Say></Response>", "TwiML does not validate"),
        (SPOKEN, 200, VALID.replace(b"Hello.", b"You said 49."), "was run as a template"),
        (SPOKEN, 200, VALID.replace(b"Hello.", b"Traceback (most recent call last)"), "a traceback"),
        (SPOKEN, 200, VALID.replace(b"Hello.", b"&lt;Engine object at 0x7f00&gt;"), "Python repr"),
        (Webhook("/sms/<flow>", "POST", "/sms/main", ()), 200, VALID, "without exactly one Message"),
        (Webhook("/twilio/status", "POST", "/twilio/status", (), "bad"), 200, VALID, "wanted 403"),
        (Webhook("/twilio/fallback", "POST", "/twilio/fallback", (), "missing"), 200, VALID, None),
    ],
)
def test_the_properties_catch_each_broken_promise(webhook, status, body, complaint):
    """The checks above can fail: each kind of wrong answer is named, a right one passes."""
    found = problems(webhook, status, body)
    if complaint is None:
        assert found == []
    else:
        assert len(found) == 1 and complaint in found[0], found
