"""What a review found and the fixes keep true: variables, sensitive input, screened legs, hook
budgets, retries, and input that would break the XML, each on a small flow."""

from __future__ import annotations

import time

import pytest
from conftest import BASE, phone_on, sign

from ivr.core.loader import load_flows
from ivr.errors import FlowLoadError
from ivr.web.services import services


def flows(tmp_path, **files):
    directory = tmp_path / "flows"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory


def test_an_outbound_call_placed_into_a_state_keeps_its_variables(make_app, tmp_path):
    d = flows(tmp_path, o="start: a\nstates:\n  a: {say: 'Start {{ name }}', hangup: true}\n"
                          "  remind: {say: 'Hello {{ name }}, about {{ order }}.', hangup: true}\n")  # fmt: skip
    app = make_app({"IVR_FLOWS_DIR": str(d)})
    store = services(app).store
    store.update("ctx:abc", lambda _: {"flow": "o", "state": "remind", "vars": {"name": "Ada", "order": "42"}}, 60)
    call = phone_on(app).dial("/voice/o?ctx=abc&state=remind", direction="outbound-api")
    assert call.heard == ["Hello Ada, about 42."]
    assert store.get("ctx:abc") is None


PIN = """
start: pin
states:
  pin: {say: PIN?, gather: {num_digits: 4}, sensitive: true, next: verify}
  verify: {run: audit, next: decide}
  decide:
    when: [{if: "input.digits == '4321'", next: ok}]
    next: bad
  ok: {say: Confirmed., hangup: true}
  bad: {say: Does not match., hangup: true}
"""


def test_sensitive_input_stays_usable_through_the_hooks_of_its_request(make_app, hooks, tmp_path):
    hooks.returns("audit", outcome="done")
    app = make_app({"IVR_FLOWS_DIR": str(flows(tmp_path, p=PIN))})
    call = phone_on(app).dial("p")
    call.press("4321")
    assert call.heard == ["Confirmed."]
    assert hooks.calls["audit"][0].input["digits"] == "4321"
    assert "4321" not in str(services(app).store.get(call.sid))


SCREENED = """
error_state: oops
start: transfer
states:
  transfer:
    dial:
      number: "+15005550006"
      screen: {prompts: [{play: "https://example.com/{{ call.From }}.mp3"}, {say: Press 1.}]}
    routes: {completed: bye}
    next: voicemail
  voicemail: {say: Leave a message., record: {}, next: bye}
  bye: {hangup: true}
  oops: {say: Let me connect you to the operator., dial: "+15005550007", next: bye}
"""


def test_a_templated_screen_prompt_plays_to_the_answering_party(make_app, tmp_path):
    app = make_app({"IVR_FLOWS_DIR": str(flows(tmp_path, s=SCREENED))})
    call = phone_on(app).dial("s", from_="+15551230000")
    call.dial_result("completed", screen="1")
    # the From number is substituted into the URL percent-encoded, + as %2B (in a query, + reads as a space)
    assert call.child_exchanges[0].body.count("https://example.com/%2B15551230000.mp3") == 1
    assert call.ended and call.heard == []  # accepted: connected, completed, goodbye


def test_a_failing_screen_leg_hangs_up_that_leg_and_the_caller_goes_on(make_app, tmp_path, monkeypatch):
    from ivr.core.twiml import Renderer

    def broken(*args, **kwargs):
        raise RuntimeError("whisper failed")

    monkeypatch.setattr(Renderer, "whisper_document", broken)
    app = make_app({"IVR_FLOWS_DIR": str(flows(tmp_path, s=SCREENED))})
    call = phone_on(app).dial("s")
    call.dial_result("completed", screen="1")
    assert "<Hangup" in call.child_exchanges[0].body
    assert "operator" not in call.child_exchanges[0].body  # never the caller's error state on this leg
    assert call.heard == ["Leave a message."]  # not accepted: the caller reaches voicemail


CHAIN = (
    "start: a\nstates:\n"
    + "".join(f"  h{i}: {{run: slow, next: h{i + 1}, on_error: h4}}\n" for i in range(4))
    + "  h4: {say: 'Done {{ count }}.', hangup: true}\n  a: {say: Hi., next: h0}\n"
)


def test_a_chain_of_slow_hooks_still_answers_within_the_requests_budget(make_app, hooks, tmp_path, monkeypatch):
    import ivr.web.deadline

    monkeypatch.setattr(ivr.web.deadline, "HOOKS_BY", 0.5)  # the step's hooks end 0.5 s after the request came
    hooks.slow("slow", 0.2, outcome="done")
    app = make_app({"IVR_FLOWS_DIR": str(flows(tmp_path, c=CHAIN)), "IVR_HOOK_TIMEOUT": "0.3"})
    started = time.monotonic()
    call = phone_on(app).dial("c")
    assert time.monotonic() - started < 1.0
    assert call.heard == ["Hi.", "Done ."]  # the hooks past the budget took their on_error route
    assert len(hooks.calls["slow"]) < 4  # and were never started


def test_characters_xml_cannot_hold_are_left_out_of_the_document(make_app, hooks, tmp_path):
    hooks.returns("fetch", vars={"name": "A\x0bda\x00"})
    d = flows(tmp_path, x="start: a\nstates:\n  a: {run: fetch, next: b}\n  b: {say: 'Hi {{ name }}.', hangup: true}\n")
    assert phone_on(make_app({"IVR_FLOWS_DIR": str(d)})).dial("x").heard == ["Hi Ada."]


def test_a_read_back_of_sensitive_input_is_not_kept_for_retries(make_app, tmp_path):
    d = flows(tmp_path, p="start: pin\nstates:\n  pin: {say: PIN?, gather: {num_digits: 4}, sensitive: true, next: b}\n"
                          "  b: {say: 'You entered {{ input.digits }}.', hangup: true}\n")  # fmt: skip
    app = make_app({"IVR_FLOWS_DIR": str(d)})
    call = phone_on(app).dial("p")
    params = {**call.exchanges[0].params, "CallStatus": "in-progress", "Digits": "4321"}
    headers = {"X-Twilio-Signature": sign(BASE + "/voice/p/pin", params), "I-Twilio-Idempotency-Token": "t1"}
    response = app.test_client().post("/voice/p/pin", data=params, headers=headers)
    assert b"You entered 4321." in response.data
    assert "4321" not in str(services(app).store.get(call.sid))


def test_an_answering_machine_still_gets_the_entry_states_variables_but_not_its_text(make_app, tmp_path):
    d = flows(tmp_path, m="start: a\nstates:\n  a:\n    set: {who: Ada}\n    sms: Hello.\n"
                          "    answered_by: {machine: drop}\n    say: Hi.\n    hangup: true\n"
                          "  drop: {say: 'Message for {{ who }}.', hangup: true}\n")  # fmt: skip
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(d)})).dial("m", params={"AnsweredBy": "machine_end_beep"})
    assert call.heard == ["Message for Ada."]
    assert call.effects == []


def test_a_retried_webhook_runs_its_hooks_once_and_answers_as_before(make_app, hooks, tmp_path):
    hooks.returns("slow", outcome="done")
    d = flows(tmp_path, r="start: m\nstates:\n  m: {say: Menu., gather: {}, routes: {'1': h}}\n"
                          "  h: {run: slow, next: e}\n  e: {say: Done., hangup: true}\n")  # fmt: skip
    app = make_app({"IVR_FLOWS_DIR": str(d)})
    call = phone_on(app).dial("r")
    params = {**call.exchanges[0].params, "CallStatus": "in-progress", "Digits": "1"}
    headers = {"X-Twilio-Signature": sign(BASE + "/voice/r/m", params), "I-Twilio-Idempotency-Token": "same"}
    client = app.test_client()
    first = client.post("/voice/r/m", data=params, headers=headers).get_data()
    again = client.post("/voice/r/m", data=params, headers=headers).get_data()  # Twilio's retry
    assert first == again
    assert b"Done." in first
    assert len(hooks.calls["slow"]) == 1


def test_a_flow_file_that_is_not_utf8_is_reported_and_callers_go_on(make_app, tmp_path, monkeypatch):
    from ivr.web import registry

    monkeypatch.setattr(registry, "CHECK_EVERY", 0.0)
    d = flows(tmp_path, ok="start: a\nstates:\n  a: {say: Fine., hangup: true}\n")
    app = make_app({"IVR_FLOWS_DIR": str(d), "IVR_HOT_RELOAD": "1"})
    (d / "latin.yaml").write_bytes("start: a\nstates:\n  a: {say: Caf\xe9., hangup: true}\n".encode("latin-1"))
    assert phone_on(app).dial("ok").heard == ["Fine."]
    [problem] = services(app).flows.problems
    assert "cannot be read as UTF-8 text" in problem.message


def test_redirects_between_flows_that_circle_without_waiting_are_refused(tmp_path):
    d = flows(tmp_path, a="start: a\nstates:\n  a: {redirect: {flow: b}}\n",
              b="start: x\nstates:\n  x: {redirect: {flow: a}}\n")  # fmt: skip
    with pytest.raises(FlowLoadError) as info:
        load_flows(d)
    [error] = info.value.errors
    assert error.message == "redirects go round in a circle with nothing to wait for: a/a -> b/x -> a/a"


@pytest.mark.parametrize("body", [{"flow": "main", "to": 15551230000}, {"flow": ["main"], "to": "+15551230000"},
                                  {"flow": "main", "to": "+15551230000", "timeout": "20"}])  # fmt: skip
def test_the_api_answers_wrong_types_with_json(make_app, body):
    app = make_app({"IVR_API_TOKEN": "t", "IVR_PUBLIC_URL": "https://ivr.example.com"})
    response = app.test_client().post("/api/calls", json=body, headers={"Authorization": "Bearer t"})
    assert response.status_code == 400
    assert "must be" in response.get_json()["error"]
