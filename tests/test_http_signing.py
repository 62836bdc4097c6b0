"""`sign: twilio` and `answer:` on HTTP steps, against a real server on 127.0.0.1 that checks the
signature as a Protected Twilio Function does."""

from __future__ import annotations

import pytest
from conftest import TOKEN, phone_on
from function_server import function_server

from ivr.core.loader import load_flow_text
from ivr.errors import FlowLoadError

FLOW = """\
start: look
states:
  look:
    http:
      method: POST
      url: "{base}/{path}"
      query: {{lang: "en US"}}
      form: {{caller: "{{{{ call.From }}}}", note: "a&b=c"}}
      {sign}
      answer: whole
      status: code
    routes: {{ok: done, error: failed}}
  done:
    say: "Done {{{{ code }}}}."
    hangup: true
  failed:
    say: "Failed {{{{ code }}}}."
    hangup: true
"""


@pytest.fixture
def server():
    with function_server(TOKEN) as found:
        yield found


def _app(make_app, flows_dir, base: str, path: str = "protected/fn", sign: str = "sign: twilio", **config):
    (flows_dir / "fn.yaml").write_text(FLOW.format(base=base, path=path, sign=sign), encoding="utf-8")
    return make_app({"IVR_FLOWS_DIR": str(flows_dir), **config})


def test_a_signed_request_passes_a_protected_functions_check(make_app, flows_dir, server):
    call = phone_on(_app(make_app, flows_dir, server.base)).dial("fn")
    assert call.heard == ["Done 200."]
    [got] = server.seen
    assert got["form"] == {"caller": "+15551230000", "note": "a&b=c"}
    assert got["url"].endswith("/protected/fn?lang=en+US")
    assert got["signature"]


def test_without_sign_a_protected_function_refuses_the_request(make_app, flows_dir, server):
    call = phone_on(_app(make_app, flows_dir, server.base, sign="")).dial("fn")
    assert call.heard == ["Failed 400."]
    assert server.seen[0]["signature"] is None


def test_a_signature_with_another_token_is_refused(make_app, flows_dir, server):
    app = _app(make_app, flows_dir, server.base, TWILIO_AUTH_TOKEN="f" * 32)
    assert phone_on(app).dial("fn").heard == ["Failed 400."]


def test_without_an_auth_token_a_signed_request_is_not_sent(make_app, flows_dir, server):
    app = _app(make_app, flows_dir, server.base, TWILIO_AUTH_TOKEN=None, IVR_ENV="test")
    call = phone_on(app).dial("fn")
    assert call.heard == ["Failed ."]  # no answer: the error route, with no status
    assert server.seen == []


def test_answer_keeps_the_whole_body_as_text(make_app, flows_dir, server):
    server.answers["/text"] = (200, "text/plain; charset=utf-8", "plain words, café".encode())
    (flows_dir / "fn.yaml").write_text(
        FLOW.format(base=server.base, path="text", sign="").replace('"Done {{ code }}."', '"Got {{ whole }}."'),
        encoding="utf-8",
    )
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("fn")
    assert call.heard == ["Got plain words, café."]


def test_answer_is_kept_for_a_failed_answer_too(make_app, flows_dir, server):
    server.answers["/down"] = (503, "text/plain", b"down for maintenance")
    (flows_dir / "fn.yaml").write_text(
        FLOW.format(base=server.base, path="down", sign="").replace(
            '"Failed {{ code }}."', '"{{ code }}: {{ whole }}"'
        ),
        encoding="utf-8",
    )
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("fn")
    assert call.heard == ["503: down for maintenance"]


@pytest.mark.parametrize(
    ("http", "message"),
    [
        ("sign: aws", "states.look.http.sign: expected one of twilio"),
        ("sign: twilio\n      json: {a: 1}", "a signed request sends a form (or no body)"),
        ("answer: call", "'call' is a name templates already have"),
    ],
)
def test_bad_sign_and_answer_are_load_errors(http, message):
    text = (
        "start: look\nstates:\n  look:\n    http:\n      url: https://api.example.com/x\n"
        f"      {http}\n    next: look2\n  look2:\n    hangup: true\n"
    )
    with pytest.raises(FlowLoadError) as caught:
        load_flow_text(text, "fn.yaml", "fn")
    assert message in str(caught.value)
