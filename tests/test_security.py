"""Webhook signatures, the public URL behind proxies, the no-token rule and the open routes."""

from __future__ import annotations

import logging
import urllib.parse

import pytest
from conftest import BASE, caller_params, document, said, sign

from ivr.errors import ConfigError

SID = "CA" + "5" * 32
PUBLIC = "https://ivr.example.com/acme"
WELCOME = "Thanks for calling Acme."
APOLOGY = "We're sorry, something went wrong. Please call again later. Goodbye."
FIX_HINT = ("IVR_PUBLIC_URL", "IVR_TRUSTED_PROXIES")


def post(client, path: str, params: dict, *, signed_for: str | None = None, headers: dict | None = None, **kw):
    """POST `params` to `path`, signed as Twilio would sign a request to the URL `signed_for`."""
    headers = dict(headers or {})
    if signed_for is not None:
        headers["X-Twilio-Signature"] = sign(signed_for, params)
    return client.post(path, data=params, headers=headers, **kw)


def refusals(caplog) -> list[str]:
    """The 'refused ...' lines the security module logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ivr.security" and r.levelno == logging.WARNING and r.getMessage().startswith("refused")
    ]


def assert_refused(response, caplog, url: str, why: str) -> str:
    """A 403 and one log line naming the URL that was checked and the settings that fix it."""
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert f"{why} X-Twilio-Signature for URL {url} " in line
    for setting in FIX_HINT:
        assert setting in line
    return line


# -- signatures ---------------------------------------------------------------------------------


def test_unsigned_request_is_refused(client, caplog):
    response = post(client, "/voice/main", caller_params(SID))
    line = assert_refused(response, caplog, f"{BASE}/voice/main", "missing")
    assert line.startswith("refused POST /voice/main:")


def test_wrong_signature_is_refused(client, caplog):
    params = caller_params(SID)
    response = post(client, "/voice/main", params, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert_refused(response, caplog, f"{BASE}/voice/main", "invalid")


def test_signature_with_another_token_is_refused(client, caplog):
    params = caller_params(SID)
    headers = {"X-Twilio-Signature": sign(f"{BASE}/voice/main", params, token="f" * 32)}
    response = post(client, "/voice/main", params, headers=headers)
    assert_refused(response, caplog, f"{BASE}/voice/main", "invalid")


def test_tampered_body_is_refused(client, caplog):
    """The signature covers the POST body: a changed From no longer matches."""
    params = caller_params(SID)
    headers = {"X-Twilio-Signature": sign(f"{BASE}/voice/main", params)}
    params["From"] = "+15550009999"
    response = post(client, "/voice/main", params, headers=headers)
    assert_refused(response, caplog, f"{BASE}/voice/main", "invalid")


@pytest.mark.parametrize(
    ("path", "signed_for"),
    [
        ("/voice/main", f"{BASE}/voice/hours"),
        ("/voice/main?state=voicemail", f"{BASE}/voice/main?state=menu"),
        ("/voice/main?state=menu", f"{BASE}/voice/main"),
        ("/voice/main", f"{BASE}/voice/main?state=menu"),
        ("/voice/main", "https://localhost/voice/main"),
    ],
    ids=["other-path", "other-query", "query-added", "query-dropped", "other-scheme"],
)
def test_signature_for_another_url_is_refused(client, caplog, path, signed_for):
    response = post(client, path, caller_params(SID), signed_for=signed_for)
    assert_refused(response, caplog, BASE + path, "invalid")


def test_valid_signature_is_served(client, caplog):
    response = post(client, "/voice/main", caller_params(SID), signed_for=f"{BASE}/voice/main")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    doc = document(response)
    assert said(doc)[0] == WELCOME
    assert doc.find("Gather").get("action") == "/voice/main/menu"
    assert refusals(caplog) == []


def test_valid_signature_over_url_with_query_is_served(client):
    """Twilio signs the URL with its query and the body apart: the query is not a body parameter."""
    response = post(
        client, "/voice/main?state=voicemail", caller_params(SID), signed_for=f"{BASE}/voice/main?state=voicemail"
    )
    assert response.status_code == 200
    assert said(document(response)) == ["Please leave a message after the beep. Press the pound key when you are done."]


def test_get_webhook_signed_over_its_url_with_query_is_served(client):
    query = urllib.parse.urlencode(caller_params(SID))
    headers = {"X-Twilio-Signature": sign(f"{BASE}/voice/main?{query}", {})}
    response = client.get(f"/voice/main?{query}", headers=headers)
    assert response.status_code == 200
    assert said(document(response))[0] == WELCOME


def test_get_webhook_with_changed_query_is_refused(client, caplog):
    params = caller_params(SID)
    headers = {"X-Twilio-Signature": sign(f"{BASE}/voice/main?{urllib.parse.urlencode(params)}", {})}
    params["From"] = "+15550009999"
    query = urllib.parse.urlencode(params)
    response = client.get(f"/voice/main?{query}", headers=headers)
    # The URL checked, its query's values hidden: a GET webhook's query holds the caller's input.
    hidden = "&".join(f"{name}=*" for name in params)
    line = assert_refused(response, caplog, f"{BASE}/voice/main?{hidden}", "invalid")
    assert line.startswith("refused GET /voice/main:")


def test_status_callback_needs_a_signature(client, caplog):
    params = caller_params(SID, status="completed")
    assert_refused(post(client, "/twilio/status", params), caplog, f"{BASE}/twilio/status", "missing")
    assert post(client, "/twilio/status", params, signed_for=f"{BASE}/twilio/status").status_code == 200


# -- the public URL -----------------------------------------------------------------------------


@pytest.mark.parametrize("public", [PUBLIC, PUBLIC + "/"])
def test_public_url_with_prefix_is_the_signed_url(make_app, caplog, public):
    client = make_app({"IVR_PUBLIC_URL": public}).test_client()
    response = post(client, "/voice/main", caller_params(SID), signed_for=f"{PUBLIC}/voice/main")
    assert response.status_code == 200
    doc = document(response)
    assert said(doc)[0] == WELCOME
    # Every URL the app writes is absolute and carries the prefix.
    assert doc.find("Gather").get("action") == f"{PUBLIC}/voice/main/menu"
    assert doc[-1].tag == "Redirect"
    assert doc[-1].text == f"{PUBLIC}/voice/main/menu?event=no_input"

    # The next webhook, to the URL the document named, is accepted too.
    params = caller_params(SID, status="in-progress") | {"Digits": "3"}
    response = post(client, "/voice/main/menu", params, signed_for=doc.find("Gather").get("action"))
    assert response.status_code == 200
    doc = document(response)
    assert doc.find("Record").get("action") == f"{PUBLIC}/voice/main/voicemail"
    assert doc[-1].text == f"{PUBLIC}/voice/main/voicemail?event=no_recording"
    assert refusals(caplog) == []


def test_public_url_refuses_signatures_for_the_local_url(make_app, caplog):
    client = make_app({"IVR_PUBLIC_URL": PUBLIC}).test_client()
    response = post(client, "/voice/main", caller_params(SID), signed_for=f"{BASE}/voice/main")
    assert_refused(response, caplog, f"{PUBLIC}/voice/main", "invalid")


def test_public_url_keeps_the_query_in_the_signed_url(make_app):
    client = make_app({"IVR_PUBLIC_URL": PUBLIC}).test_client()
    path = "/voice/main/menu?event=no_input"
    params = caller_params(SID, status="in-progress")
    assert post(client, path, params, signed_for=PUBLIC + path).status_code == 200


# -- proxies ------------------------------------------------------------------------------------

# -- the raw request URI ------------------------------------------------------------------------

MENU_PRESS = caller_params(SID, status="in-progress") | {"Digits": "2"}
SUPPORT = "For billing, press 1 or say billing. For technical support, press 2. To go back, press 9."


def test_a_percent_encoded_path_is_checked_as_twilio_signed_it(client, caplog):
    """Twilio signs the URL it called: /voice/m%61in/menu, not the decoded /voice/main/menu."""
    response = post(client, "/voice/m%61in/menu", MENU_PRESS, signed_for=f"{BASE}/voice/m%61in/menu")
    assert response.status_code == 200
    assert said(document(response))[0] == SUPPORT
    assert refusals(caplog) == []


def test_a_signature_for_the_decoded_path_does_not_fit_the_encoded_one(client, caplog):
    response = post(client, "/voice/m%61in/menu", MENU_PRESS, signed_for=f"{BASE}/voice/main/menu")
    assert_refused(response, caplog, f"{BASE}/voice/m%61in/menu", "invalid")


def test_a_percent_encoded_path_behind_the_public_url(make_app, caplog):
    client = make_app({"IVR_PUBLIC_URL": PUBLIC}).test_client()
    response = post(client, "/voice/m%61in/menu?x=%2F", MENU_PRESS, signed_for=f"{PUBLIC}/voice/m%61in/menu?x=%2F")
    assert response.status_code == 200
    assert said(document(response))[0] == SUPPORT


def test_a_percent_encoded_path_behind_a_trusted_proxy(make_app, caplog):
    client = make_app({"IVR_TRUSTED_PROXIES": "1"}).test_client()
    signed_for = "https://ivr.example.com/voice/m%61in/menu"
    response = post(client, "/voice/m%61in/menu", MENU_PRESS, headers=FORWARDED, signed_for=signed_for)
    assert response.status_code == 200
    assert said(document(response))[0] == SUPPORT


def test_without_a_raw_uri_the_decoded_path_is_quoted_again(client, caplog):
    """A server that keeps no RAW_URI or REQUEST_URI: Twilio's URL is percent-encoded, so quote the path."""
    no_raw = {"RAW_URI": "", "REQUEST_URI": ""}
    path = "/voice/main/m%20enu"
    response = post(client, path, MENU_PRESS, signed_for=f"{BASE}{path}", environ_overrides=no_raw)
    assert response.status_code == 200  # the signature fits; an unknown state is the flow's apology
    assert refusals(caplog) == []


@pytest.mark.parametrize("path", ["/voice/", "/voice//menu", "/voice/main//menu", "/voice/main/menu/extra"])
def test_an_unknown_voice_url_still_needs_a_signature(client, caplog, path):
    response = post(client, path, MENU_PRESS, signed_for=f"{BASE}/voice/main")
    assert_refused(response, caplog, f"{BASE}{path}", "invalid")


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ivr.example.com"}


def test_trusted_proxy_headers_make_the_signed_url(make_app, caplog):
    client = make_app({"IVR_TRUSTED_PROXIES": "1"}).test_client()
    response = post(
        client, "/voice/main", caller_params(SID), headers=FORWARDED, signed_for="https://ivr.example.com/voice/main"
    )
    assert response.status_code == 200
    assert said(document(response))[0] == WELCOME
    assert refusals(caplog) == []


def test_trusted_proxy_refuses_signature_for_the_unforwarded_url(make_app, caplog):
    client = make_app({"IVR_TRUSTED_PROXIES": "1"}).test_client()
    response = post(client, "/voice/main", caller_params(SID), headers=FORWARDED, signed_for=f"{BASE}/voice/main")
    assert_refused(response, caplog, "https://ivr.example.com/voice/main", "invalid")


def test_forwarded_headers_are_ignored_without_trusted_proxies(make_app, caplog):
    client = make_app({"IVR_TRUSTED_PROXIES": "0"}).test_client()
    response = post(
        client, "/voice/main", caller_params(SID), headers=FORWARDED, signed_for="https://ivr.example.com/voice/main"
    )
    assert_refused(response, caplog, f"{BASE}/voice/main", "invalid")


@pytest.mark.parametrize(
    ("signed_host", "status"),
    [("ivr.example.com", 200), ("attacker.example", 403)],
)
def test_one_trusted_hop_uses_only_the_last_forwarded_host(make_app, caplog, signed_host, status):
    client = make_app({"IVR_TRUSTED_PROXIES": "1"}).test_client()
    headers = {"X-Forwarded-Proto": "https, https", "X-Forwarded-Host": "attacker.example, ivr.example.com"}
    response = post(
        client, "/voice/main", caller_params(SID), headers=headers, signed_for=f"https://{signed_host}/voice/main"
    )
    assert response.status_code == status
    if status == 403:
        assert_refused(response, caplog, "https://ivr.example.com/voice/main", "invalid")
    else:
        assert refusals(caplog) == []


def test_a_forwarded_prefix_is_not_trusted_because_twiml_urls_could_not_carry_it(make_app, caplog):
    """The TwiML's root-relative URLs would drop the prefix: a path prefix is set with IVR_PUBLIC_URL only."""
    client = make_app({"IVR_TRUSTED_PROXIES": "1"}).test_client()
    headers = FORWARDED | {"X-Forwarded-Prefix": "/acme"}
    response = post(client, "/voice/main", caller_params(SID), headers=headers, signed_for=f"{PUBLIC}/voice/main")
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert "for URL https://ivr.example.com/voice/main " in line
    assert all(hint in line for hint in FIX_HINT)


# -- without a token ----------------------------------------------------------------------------

DEVELOPMENT = {"IVR_ENV": "development", "TWILIO_AUTH_TOKEN": None}


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_development_without_token_serves_loopback(make_app, caplog, address):
    client = make_app(DEVELOPMENT).test_client()
    response = post(client, "/voice/main", caller_params(SID), environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200
    assert said(document(response))[0] == WELCOME
    assert refusals(caplog) == []


def test_development_without_token_refuses_other_addresses(make_app, caplog):
    client = make_app(DEVELOPMENT).test_client()
    response = post(client, "/voice/main", caller_params(SID), environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert line.startswith("refused POST /voice/main from 203.0.113.5: no TWILIO_AUTH_TOKEN is set")
    assert "(not loopback)" in line


@pytest.mark.parametrize("header", ["X-Forwarded-For", "X-Forwarded-Host", "Forwarded"])
def test_development_without_token_refuses_forwarded_loopback(make_app, caplog, header):
    client = make_app(DEVELOPMENT).test_client()
    response = post(
        client,
        "/voice/main",
        caller_params(SID),
        headers={header: "203.0.113.5"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert line.startswith("refused POST /voice/main from 127.0.0.1: no TWILIO_AUTH_TOKEN is set")
    assert f"({header})" in line


def test_development_without_token_warns_at_start(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="ivr.security"):
        make_app(DEVELOPMENT)
    warnings = [r for r in caplog.records if r.name == "ivr.security" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "webhook signatures are NOT verified" in warnings[0].getMessage()
    assert "TWILIO_AUTH_TOKEN" in warnings[0].getMessage()


def test_no_unverified_warning_with_a_token(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="ivr.security"):
        make_app({"IVR_ENV": "development"})
    assert [r for r in caplog.records if r.name == "ivr.security"] == []


@pytest.mark.parametrize("token", [None, ""])
def test_production_without_token_refuses_to_start(make_app, production, token):
    production["TWILIO_AUTH_TOKEN"] = token
    with pytest.raises(ConfigError, match=r"^TWILIO_AUTH_TOKEN is not set"):
        make_app(production)


def test_production_with_token_public_url_and_sqlite_starts(make_app, production):
    app = make_app(production)
    response = post(
        app.test_client(), "/voice/main", caller_params(SID), signed_for=f"{production['IVR_PUBLIC_URL']}/voice/main"
    )
    assert response.status_code == 200


def test_production_refuses_the_memory_store(make_app, production):
    production["IVR_STORE"] = "memory://"
    with pytest.raises(ConfigError, match=r"^IVR_STORE=memory:// loses every call's session"):
        make_app(production)


# -- open routes --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_fallback_apologises_without_a_signature(client, caplog, method):
    params = caller_params(SID) | {"ErrorCode": "11200", "ErrorUrl": f"{BASE}/voice/main"}
    if method == "POST":
        response = client.post("/twilio/fallback", data=params)
    else:
        response = client.get("/twilio/fallback", query_string=params)
    assert response.status_code == 200
    doc = document(response)
    assert said(doc) == [APOLOGY]
    assert [v.tag for v in doc] == ["Say", "Hangup"]
    assert refusals(caplog) == []
    assert f"CallSid={SID} fallback URL called (ErrorCode=11200, ErrorUrl={BASE}/voice/main)" in caplog.messages


def test_healthz_answers_without_a_signature(client, caplog):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "flows": ["accounts", "hours", "main", "pin"]}
    assert refusals(caplog) == []


# -- Webhooks SharedKeys (X-Twilio-Webhooks-Signature-Settings) -----------------------------------

KEY_ID = "webhooks_sharedkey_" + "0" * 26
SECRET = "a-shared-key-secret"


def shared_key_headers(params: dict, *, key: str = KEY_ID, secret: str = SECRET, algorithm: str = "HMAC_SHA256"):
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(secret).compute_signature(f"{BASE}/voice/main", params, algorithm)
    return {"X-Twilio-Signature": signature, "X-Twilio-Webhooks-Signature-Settings": f"key={key},algorithm={algorithm}"}


@pytest.mark.parametrize("algorithm", ["HMAC_SHA256", "HMAC_SHA1"])
def test_a_request_signed_with_a_configured_shared_key_is_served(make_app, caplog, algorithm):
    client = make_app({"TWILIO_WEBHOOK_SHARED_KEYS": f"old_key=old-secret,{KEY_ID}={SECRET}"}).test_client()
    params = caller_params(SID)
    response = post(client, "/voice/main", params, headers=shared_key_headers(params, algorithm=algorithm))
    assert response.status_code == 200 and WELCOME in said(document(response))
    assert refusals(caplog) == []


def test_a_shared_key_signature_does_not_pass_as_the_tokens_nor_the_other_way_round(make_app, caplog):
    client = make_app({"TWILIO_WEBHOOK_SHARED_KEYS": f"{KEY_ID}={SECRET}"}).test_client()
    params = caller_params(SID)
    forged = shared_key_headers(params, secret="not-the-secret")
    response = post(client, "/voice/main", params, headers=forged)
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert f"checked with SharedKey {KEY_ID}" in line
    caplog.clear()
    token_signed = {**shared_key_headers(params), "X-Twilio-Signature": sign(f"{BASE}/voice/main", params)}
    assert post(client, "/voice/main", params, headers=token_signed).status_code == 403


def test_a_shared_key_the_app_does_not_hold_is_refused_naming_the_setting(make_app, caplog):
    client = make_app().test_client()
    params = caller_params(SID)
    response = post(client, "/voice/main", params, headers=shared_key_headers(params))
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert KEY_ID in line and "TWILIO_WEBHOOK_SHARED_KEYS" in line and "HMAC_SHA256" in line
    assert SECRET not in line


def test_an_algorithm_the_library_cannot_check_is_refused_saying_so(make_app, caplog):
    client = make_app({"TWILIO_WEBHOOK_SHARED_KEYS": f"{KEY_ID}={SECRET}"}).test_client()
    params = caller_params(SID)
    headers = {**shared_key_headers(params), "X-Twilio-Webhooks-Signature-Settings": f"key={KEY_ID},algorithm=ED25519"}
    response = post(client, "/voice/main", params, headers=headers)
    assert response.status_code == 403
    (line,) = refusals(caplog)
    assert "ED25519" in line and "upgrade twilio" in line


@pytest.mark.parametrize("value", ["s3cr3t-value", "=s3cr3t-value", "key=", "a=s3cr3t-value,b"])
def test_a_malformed_shared_keys_setting_is_refused_without_showing_a_secret(make_app, value):
    with pytest.raises(ConfigError, match=r"TWILIO_WEBHOOK_SHARED_KEYS: .* is not keyId=secret") as refused:
        make_app({"TWILIO_WEBHOOK_SHARED_KEYS": value})
    assert "s3cr3t-value" not in str(refused.value)
