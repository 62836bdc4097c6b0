"""The built-in phone plays <Connect><ConversationRelay>: the caller talks to the agent by text through the protocol's
messages (in-process, and over a real socket signed like Twilio's handshake), and the call goes on at the route the
conversation ended on, as Twilio's <Connect action> request reports it."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import FLOWS, TOKEN, phone_on

from ivr.phone import HttpTransport, Phone
from ivr.testing import Turn, use_scripted_model
from ivr.web.services import services

GREETING = "Hi, this is Acme's assistant. How can I help?"
BYE = "Thank you for calling Acme. Goodbye."
PERSON = "Connecting you to a person."


@pytest.fixture
def assistant_app(make_app, tmp_path):
    """An app serving the shipped flows/assistant.yaml (its tools are the hooks of flows/hooks.py)."""
    flows = tmp_path / "assistant-flows"
    flows.mkdir()
    for name in ("assistant.yaml", "hooks.py"):
        shutil.copy(FLOWS / name, flows / name)

    def make(**config):
        return make_app({"IVR_FLOWS_DIR": str(flows), **config})

    return make


def action_of(call):
    """The <Connect action> request of the call's conversation."""
    return next(e for e in call.exchanges if "HandoffData" in e.params or "SessionStatus" in e.params)


def test_the_caller_talks_to_the_agent_and_the_call_goes_on_at_the_route_it_ends_on(assistant_app):
    app = assistant_app()
    model = use_scripted_model(app, [
        Turn("Let me look.", (("order_status", {"order": "12345"}),)),
        Turn("Order 12345 shipped yesterday."),
        Turn("Glad to help. Bye!", (("end_resolved", {}),)),
    ])  # fmt: skip
    call = phone_on(app).dial("assistant")
    assert (call.heard, call.waiting_for, call.state) == ([GREETING], "agent", "assistant")
    call.say("Where is my order 12345?")
    assert call.heard == ["Let me look.", "Order 12345 shipped yesterday."]
    assert call.waiting_for == "agent"
    call.say("That's all, thanks.")
    assert call.heard == ["Glad to help. Bye!", BYE]
    assert (services(app).store.get(call.sid)["state"], call.end_reason) == ("goodbye", "hangup")
    action = action_of(call)
    assert action.url.endswith("/voice/assistant/assistant")
    assert json.loads(action.params["HandoffData"]) == {"route": "resolved", "values": {}}
    assert (action.params["SessionStatus"], action.params["CallStatus"]) == ("completed", "in-progress")
    assert action.params["SessionDuration"].isdigit()
    # The tool's result went back to the model: the second reply was asked with it.
    assert json.loads(model.asked[1][0][-1]["content"])["outcome"] == "found"


def test_setup_goes_first_with_the_call_and_the_documents_parameters(assistant_app):
    app = assistant_app()
    use_scripted_model(app, [Turn("Hello.")])
    entry = app.extensions["ivr.relay"]
    sent = []
    opened = entry.open

    def open_recording(flow_id, state, params=None):
        connection = opened(flow_id, state, params)
        send = connection.send
        connection.send = lambda message: (sent.append(message), send(message))[1]
        return connection

    entry.open = open_recording
    call = phone_on(app).dial("assistant", from_="+15551112222")
    call.say("hello")
    setup, prompt = sent
    assert setup["type"] == "setup"
    assert (setup["callSid"], setup["from"], setup["to"]) == (call.sid, "+15551112222", call.to)
    assert set(setup["customParameters"]) == {"version"}
    assert prompt == {"type": "prompt", "voicePrompt": "hello", "lang": "en-US", "last": True}
    assert call.heard == ["Hello."]


def test_a_key_the_agent_maps_ends_on_its_route_and_other_keys_do_nothing(assistant_app):
    app = assistant_app()
    use_scripted_model(app, [Turn("Sure.")])
    call = phone_on(app).dial("assistant")
    call.press("5")
    assert (call.waiting_for, call.heard) == ("agent", [])
    call.press("0")
    assert call.heard == [PERSON]
    assert (call.state, call.waiting_for) == ("operator", "dial")
    assert json.loads(action_of(call).params["HandoffData"])["route"] == "operator"
    assert services(app).store.get(call.sid)["agent"]["transcript"] == [{"key": "0"}]


def test_hanging_up_mid_conversation_closes_the_socket_and_reports_completed_to_the_action(assistant_app):
    app = assistant_app()
    use_scripted_model(app, [Turn("Hello there.")])
    call = phone_on(app).dial("assistant")
    call.say("hi")
    call.hangup()
    assert (call.ended, call.end_reason) == (True, "caller-hangup")
    action = action_of(call)
    assert (action.params["CallStatus"], action.params["SessionStatus"]) == ("completed", "ended")
    assert "HandoffData" not in action.params
    with pytest.raises(Exception, match="ended"):
        call.say("are you there?")


def test_without_a_model_the_caller_hears_the_apology_and_goes_on_at_the_error_route(assistant_app):
    app = assistant_app()
    services(app).agent_model = lambda agent: None
    call = phone_on(app).dial("assistant")
    assert call.heard == [GREETING, "Sorry, I'm having trouble right now.", PERSON]
    assert json.loads(action_of(call).params["HandoffData"])["route"] == "error"
    assert call.state == "operator"


@pytest.mark.parametrize("public", ["https://ivr.example.com", None], ids=["wss URL", "root-relative"])
def test_over_a_real_socket_the_handshake_is_signed_like_twilios(assistant_app, serve, public):
    app = assistant_app(IVR_PUBLIC_URL=public)
    use_scripted_model(app, [Turn("You want a person.", (("end_operator", {"reason": "billing"}),))])
    base = serve(app)
    phone = Phone(HttpTransport(), base, auth_token=TOKEN, public_url=public)
    call = phone.dial("assistant")
    assert (call.heard, call.waiting_for) == ([GREETING], "agent"), call.warnings
    call.say("a person please")
    assert call.heard == ["You want a person.", PERSON]
    assert call.state == "operator"
    assert services(app).store.get(call.sid)["vars"]["handoff"] == {"reason": "billing"}


class _ForgingTransport(HttpTransport):
    def open_relay(self, url, headers):
        return super().open_relay(url, {"X-Twilio-Signature": "forged"})


def test_a_refused_handshake_fails_the_session_and_the_call_goes_on_at_the_error_route(assistant_app, serve):
    app = assistant_app(IVR_PUBLIC_URL="https://ivr.example.com")
    use_scripted_model(app, [Turn("never heard")])
    phone = Phone(_ForgingTransport(), serve(app), auth_token=TOKEN, public_url="https://ivr.example.com")
    call = phone.dial("assistant")
    assert [w.code for w in call.warnings] == [64102]
    assert action_of(call).params["SessionStatus"] == "failed"
    assert call.heard == [GREETING, PERSON]
    assert call.state == "operator"


def test_the_journal_and_the_report_count_outcomes_turns_tool_calls_and_model_latency(assistant_app, tmp_path):
    from ivr.analytics.formats import render
    from ivr.analytics.report import Window, build_report

    app = assistant_app(IVR_EVENTS=f"sqlite:///{tmp_path}/events.sqlite3")
    use_scripted_model(app, [
        Turn("Let me look.", (("order_status", {"order": "12345"}), ("order_status", {"order": "12"}))),
        Turn("It shipped."),
        Turn("Bye!", (("end_resolved", {}),)),
        Turn("One moment.", (("end_operator", {"reason": "a person"}),)),
    ])  # fmt: skip
    phone = phone_on(app)
    first = phone.dial("assistant")
    first.say("where is 12345?")
    first.say("thanks")
    second = phone.dial("assistant", from_="+15550001111")
    second.say("a person please")
    writer = services(app).events
    writer.flush()
    agent = build_report(writer.database, "assistant", Window(source=None))["states"]["assistant"]
    assert agent["routes"] == {"resolved": 1, "operator": 1}
    figures = agent["agent"]
    assert (figures["conversations"], figures["turns"], figures["turns_per_conversation"]) == (2, 3, 1.5)
    assert figures["tools"] == {"order_status": {"found": 1, "refused": 1}}
    assert figures["replies"] == 4 and figures["model_ms"]["median"] is not None
    text = render(build_report(writer.database, "assistant", Window(source=None)), "text")
    assert "agent: 2 conversations, 3 turns (1.5 each)" in text and "tools: order_status 2" in text
    said = writer.database.query("SELECT input FROM events WHERE kind IN ('agent', 'agent_turn', 'tool')")
    assert {row[0] for row in said} <= {None, "order_status"}, "nothing the caller or the model said is journaled"
    writer.close()


def test_forgetting_a_caller_erases_their_conversations_transcript(assistant_app, tmp_path):
    from ivr.web.privacy import forget_everywhere

    app = assistant_app()
    use_scripted_model(app, [Turn("A person will help.", (("end_operator", {"reason": "order 12345"}),))])
    call = phone_on(app).dial("assistant", from_="+15550009999")
    call.say("my order number is 12345")
    assert call.waiting_for == "dial"
    store = services(app).store
    assert store.get(call.sid)["agent"]["transcript"][0] == {"caller": "my order number is 12345"}
    erasure = forget_everywhere({"IVR_EVENTS": None}, "+15550009999", store=store)
    assert erasure.sessions == 1
    assert store.get(call.sid) is None
    call.hangup()
