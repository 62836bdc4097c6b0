"""X-Ivr-Clock: a development app answers a request from this machine as if it were the time the
request names (`python -m ivr phone --url ... --at`); production, test and other machines never."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from conftest import caller_params, document, said, sign

from ivr.web.clock import CLOCK_HEADER, request_clock

SID = "CA" + "6" * 32
AFTER_HOURS = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # Tuesday 22:00 in New York: main's office is closed
IN_HOURS = "2026-11-25T10:00-05:00"
OPEN = "For sales, press 1 or say sales."
CLOSED = "Our office is closed right now."
DEVELOPMENT = {"IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None}


def first_menu(response) -> str:
    """What the caller hears after the welcome: the open menu or the closed one."""
    return said(document(response))[1]


def test_a_development_app_answers_a_local_request_at_the_time_it_names(make_app):
    client = make_app(DEVELOPMENT, now=AFTER_HOURS).test_client()
    response = client.post("/voice/main", data=caller_params(SID), headers={CLOCK_HEADER: IN_HOURS})
    assert first_menu(response).startswith(OPEN)


def test_without_the_header_a_development_app_keeps_its_own_clock(make_app):
    client = make_app(DEVELOPMENT, now=AFTER_HOURS).test_client()
    assert first_menu(client.post("/voice/main", data=caller_params(SID))).startswith(CLOSED)


@pytest.mark.parametrize(
    ("headers", "address"),
    [
        ({}, "203.0.113.5"),  # another machine
        ({"X-Forwarded-For": "203.0.113.5"}, "127.0.0.1"),  # a tunnel or proxy on this machine
    ],
)
def test_a_development_app_ignores_the_header_from_elsewhere(make_app, headers, address):
    # With a token, development serves signed requests from anywhere: only the clock rule keeps them out.
    client = make_app({"IVR_ENV": "development"}, now=AFTER_HOURS).test_client()
    params = caller_params(SID)
    headers = {**headers, CLOCK_HEADER: IN_HOURS, "X-Twilio-Signature": sign("http://localhost/voice/main", params)}
    response = client.post("/voice/main", data=params, headers=headers, environ_base={"REMOTE_ADDR": address})
    assert first_menu(response).startswith(CLOSED)


def test_a_signed_production_request_with_the_header_gets_the_real_clock(make_app, production):
    client = make_app(production, now=AFTER_HOURS).test_client()
    params = caller_params(SID)
    headers = {CLOCK_HEADER: IN_HOURS, "X-Twilio-Signature": sign(f"{production['IVR_PUBLIC_URL']}/voice/main", params)}
    response = client.post("/voice/main", data=params, headers=headers)
    assert first_menu(response).startswith(CLOSED)


def test_a_test_app_ignores_the_header(make_app):
    client = make_app({"IVR_ENV": "test", "TWILIO_AUTH_TOKEN": None}, now=AFTER_HOURS).test_client()
    response = client.post("/voice/main", data=caller_params(SID), headers={CLOCK_HEADER: IN_HOURS})
    assert first_menu(response).startswith(CLOSED)


def test_a_time_without_its_offset_is_ignored_and_logged(make_app, caplog):
    client = make_app(DEVELOPMENT, now=AFTER_HOURS).test_client()
    with caplog.at_level(logging.WARNING, logger="ivr.clock"):
        response = client.post("/voice/main", data=caller_params(SID), headers={CLOCK_HEADER: "2026-11-25T10:00"})
    assert first_menu(response).startswith(CLOSED)
    assert "needs its offset" in caplog.text


def test_outside_a_request_the_clock_is_the_apps_own():
    assert request_clock(lambda: AFTER_HOURS)() == AFTER_HOURS
