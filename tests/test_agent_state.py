"""The agent state, the flow language side (docs/agents.md): the loader's errors with positions, the
<Connect><ConversationRelay> document against Twilio's schema, routing of every kind of action request, the
journal's agent rows, ConversationRelay voice warnings, IVR_PUBLIC_URL required, tools resolved, graph edges."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BASE, caller_params, sign

from ivr.cli import cli
from ivr.core.agent_checks import relay_setting_errors
from ivr.core.engine import Engine, new_session
from ivr.core.graph import graph_data, mermaid
from ivr.core.loader import load_flow, load_flow_text
from ivr.core.references import unknown_names
from ivr.core.urls import Urls
from ivr.core.voice_checks import voice_warnings
from ivr.errors import FlowLoadError, WebhookError
from ivr.settings import load_settings, production_problems
from ivr.testing import TwimlSchema
from ivr.web.services import services

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "agent"
PUBLIC = "https://ivr.example.com/acme"

FLOW = """\
title: Agent
start: assistant
states:
  assistant:
    set: {name: Ada}
    agent:
      instructions: "You help {{ name }} with Acme orders. Be brief."
      welcome: Hi {{ name }}, this is Acme. How can I help?
      tools:
        order_status:
          description: Look up an order's status by its five-digit number.
          parameters: {order: {type: string, pattern: "^[0-9]{5}$", description: The order number}}
      ends:
        resolved: {description: The caller's question is answered.}
        operator: {description: The caller wants a person., values: {reason: "Why, in a few words."}}
      keys: {"0": operator}
      limits: {turns: 20, seconds: 600, silence: 20}
      save_as: handoff
      relay: {tts_provider: ElevenLabs, voice: UgBBYS2sOqTuMpoF3BR0, transcription_provider: Deepgram, language: en-US}
    routes: {resolved: goodbye, operator: operator, limit: operator, error: apology}
  order_status:
    http: {url: "https://api.example.com/orders/{{ args.order }}"}
    next: goodbye
  operator:
    say: "Connecting you. {{ handoff.reason }}"
    hangup: true
  goodbye:
    say: Goodbye.
    hangup: true
  apology:
    say: Sorry, something went wrong.
    hangup: true
"""


def load(text: str = FLOW):
    return load_flow_text(text, "agent.yaml", "agent")


def engine(text: str = FLOW, public: str = PUBLIC) -> Engine:
    return Engine(load(text), Urls(public))


def problems(text: str) -> str:
    with pytest.raises(FlowLoadError) as caught:
        load(text)
    return str(caught.value)


# -- the loader ------------------------------------------------------------------------------------


def test_the_agent_is_read_as_written():
    agent = load().states["assistant"].action
    assert [e.name for e in agent.ends] == ["resolved", "operator"]
    assert agent.ends[1].values == (("reason", "Why, in a few words."),)
    assert agent.keys == (("0", "operator"),)
    assert (agent.turns, agent.seconds, agent.silence, agent.save_as) == (20, 600, 20, "handoff")
    assert agent.tools[0].parameters == {
        "type": "object",
        "properties": {"order": {"type": "string", "pattern": "^[0-9]{5}$", "description": "The order number"}},
        "required": ["order"],
        "additionalProperties": False,
    }


def test_a_string_parameter_without_pattern_or_enum_is_length_limited():
    flow = load(FLOW.replace('pattern: "^[0-9]{5}$", ', ""))
    assert flow.states["assistant"].action.tools[0].parameters["properties"]["order"]["maxLength"] == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("      keys:", "      kyes:"),
         "agent.yaml:16:7: error: states.assistant.agent.kyes: unknown key (did you mean 'keys'?)"),
        (('keys: {"0": operator}', 'keys: {"0": operater}'),
         "agent.yaml:16:19: error: states.assistant.agent.keys.\"0\": unknown end 'operater' (did you mean "
         "'operator'?)"),
        (('keys: {"0": operator}', 'keys: {"00": operator}'),
         "agent.yaml:16:14: error: states.assistant.agent.keys.\"00\": expected one key: 0-9, * or #"),
        (("{order: {type: string,", "{order: {type: text,"),
         "agent.yaml:12:38: error: states.assistant.agent.tools.order_status.parameters.order.type: unknown type "
         "'text'; one of string, integer, number, boolean"),
        (("{order: {type: string,", "{order: {type: strng,"),
         "parameters.order.type: unknown type 'strng' (did you mean 'string'?)"),
        (('pattern: "^[0-9]{5}$"', 'pattern: "^[0-9"'),
         "agent.yaml:12:55: error: states.assistant.agent.tools.order_status.parameters.order.pattern: not a regular "
         "expression"),
        (('type: string, pattern: "^[0-9]{5}$"', "type: string, enum: []"),
         "states.assistant.agent.tools.order_status.parameters.order.enum: list the string values the argument may "
         "take, at least one"),
        (('type: string, pattern: "^[0-9]{5}$"', "type: integer, minimum: 5, maximum: 1"),
         "states.assistant.agent.tools.order_status.parameters.order: minimum 5 is above maximum 1: no value fits"),
        (('pattern: "^[0-9]{5}$"', "minimum: 1"),
         "agent.yaml:12:46: error: states.assistant.agent.tools.order_status.parameters.order.minimum: minimum is for "
         "an integer or number parameter"),
        (("        resolved: {", "        error: {"),
         "agent.yaml:14:9: error: states.assistant.agent.ends.error: 'error' is an outcome of every agent state"),
        (("        resolved: {", "        hangup: {"), "states.assistant.agent.ends.hangup: 'hangup' is an outcome"),
        (("        resolved: {", "        limit: {"), "states.assistant.agent.ends.limit: 'limit' is an outcome"),
        (("{description: The caller's question is answered.}", "{}"),
         "agent.yaml:14:19: error: states.assistant.agent.ends.resolved: missing key: description"),
        (('values: {reason: "Why, in a few words."}', "values: {reason: Why, in a few words.}"),
         "states.assistant.agent.ends.operator.values.\"in a few words.\": a value's name is a variable name: letters, "
         "digits, '_' (inside {...} a comma ends a value: put text with commas in quotes)"),
        (("      save_as: handoff\n", ""),
         "agent.yaml:15:9: error: states.assistant.agent.ends.operator.values: its values are kept in a variable: add "
         "agent.save_as: NAME"),
        (("limits: {turns: 20,", "limits: {turns: 0,"),
         "agent.yaml:17:23: error: states.assistant.agent.limits.turns: must be 1 to 200, got 0"),
        (("limits: {turns: 20,", "limits: {turn: 20,"),
         "states.assistant.agent.limits.turn: unknown key (did you mean 'turns'?)"),
        (("relay: {tts_provider:", "relay: {tts_provder:"),
         "agent.yaml:19:15: error: states.assistant.agent.relay.tts_provder: unknown ConversationRelay attribute (did "
         "you mean 'tts_provider'?)"),
        (("relay: {tts_provider:", "relay: {url: 'wss://elsewhere.example.com', tts_provider:"),
         "states.assistant.agent.relay.url: ivr sets url itself: the app's own /relay/<flow>/<state>, from "
         "IVR_PUBLIC_URL"),
        (("language: en-US}", "language: english}"), "states.assistant.agent.relay.language:"),
        (("relay: {tts_provider:", "relay: {hints: , tts_provider:"),
         "states.assistant.agent.relay.hints: give a value, or remove the key for Twilio's default"),
        (("relay: {tts_provider:", "relay: {interruptible: sometimes, tts_provider:"),
         "states.assistant.agent.relay.interruptible: expected one of none, dtmf, speech, any, true, false, got "
         "'sometimes'"),
        (('      instructions: "You help {{ name }} with Acme orders. Be brief."\n', ""),
         "agent.yaml:7:7: error: states.assistant.agent: missing key: instructions"),
        (("routes: {resolved: goodbye,", "routes: {resolvd: goodbye,"),
         "agent.yaml:20:14: error: states.assistant.routes.resolvd: not an end of this agent (did you mean "
         "'resolved'?)"),
        (("routes: {resolved: goodbye, operator: operator, limit: operator, error: apology}",
          "routes: {resolved: goodbye, operator: operator}"),
         "agent.yaml:7:7: error: states.assistant: outcomes limit, error have nowhere to go: route each under routes, "
         "or add next: STATE"),
        (("    routes: {resolved: goodbye,", "    no_input: Sorry.\n    routes: {resolved: goodbye,"),
         "states.assistant.no_input: retries apply only to a state with gather"),
        (("        order_status:\n", "        end_call:\n"),
         "states.assistant.agent.tools.end_call: tools named end_... are the ends': rename it"),
    ],
)  # fmt: skip
def test_an_agent_mistake_is_named_where_it_is_written(change, message):
    assert change[0] in FLOW
    assert message in problems(FLOW.replace(*change))


def test_next_catches_the_ends_routes_leave_out():
    text = FLOW.replace("routes: {resolved: goodbye, operator: operator, limit: operator, error: apology}",
                        "routes: {operator: operator}\n    next: goodbye")  # fmt: skip
    assert load(text).states["assistant"].next == "goodbye"


# -- tools and the setting the relay's URL comes from -----------------------------------------------


def test_a_tool_is_a_registered_hook_or_an_http_state_of_the_flow():
    assert unknown_names(load(), hooks=()) == []  # order_status is the flow's HTTP step
    text = FLOW.replace("        order_status:\n", "        lookup_order:\n")
    assert unknown_names(load(text), hooks=("lookup_order",)) == []
    [error] = unknown_names(load(text), hooks=("lookup_orders",))
    assert error.format() == (
        "agent.yaml:10:9: error: states.assistant.agent.tools.lookup_order: unknown tool 'lookup_order' (did you "
        "mean 'lookup_orders'?): a tool is a registered hook (@ivr.hook) or a state with http:"
    )
    [error] = unknown_names(load(FLOW.replace("        order_status:\n", "        goodbye:\n")), hooks=())
    assert "state 'goodbye' is no http: step" in error.format()


def _flows_dir(tmp_path: Path, text: str = FLOW) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "agent.yaml").write_text(text)
    return flows


def test_check_takes_an_agent_without_ivr_public_url_which_production_requires_anyway(tmp_path, monkeypatch):
    flows = _flows_dir(tmp_path)
    monkeypatch.delenv("IVR_PUBLIC_URL", raising=False)
    result = CliRunner().invoke(cli, ["check", str(flows / "agent.yaml")])
    assert "IVR_PUBLIC_URL" not in result.output, result.output
    assert relay_setting_errors(load_flow(flows / "agent.yaml"), "ftp://example.com")  # a URL no socket can use


def test_without_ivr_public_url_development_names_the_socket_root_relative(make_app, tmp_path):
    """Production refuses to start without IVR_PUBLIC_URL (ivr.settings): this is development or a test, where no
    Twilio connects and the phones reach the conversation by its flow and state."""
    flows = _flows_dir(tmp_path)
    app = make_app({"IVR_FLOWS_DIR": str(flows), "IVR_PUBLIC_URL": None})
    engine = services(app).flows.engine("agent")
    assert (
        'url="/relay/agent/assistant"'
        in engine.renderer.verbs("assistant", "enter", lambda: {"name": "Ada"})[0].to_xml()
    )
    production = load_settings({"IVR_ENV": "production", "IVR_PUBLIC_URL": None}, environ={})
    assert any(p.startswith("IVR_PUBLIC_URL is not set") for p in production_problems(production))


# -- the document ----------------------------------------------------------------------------------


def test_the_agent_document_is_exactly_the_golden_one_and_valid_twiml():
    step = engine().start(new_session("agent"), {"CallSid": "CA1"}, NOW)
    golden = (GOLDEN / "assistant.xml").read_text(encoding="utf-8").strip()
    assert step.twiml == golden.replace("VERSION", load().content_hash)
    schema = TwimlSchema.shared()
    assert schema.active, "set IVR_TWIML_XSD: the document must be checked against Twilio's schema"
    schema.check(step.twiml)


@pytest.mark.parametrize(("public", "relay"), [
    ("https://ivr.example.com", "wss://ivr.example.com/relay/agent/assistant"),
    ("http://127.0.0.1:5000/", "ws://127.0.0.1:5000/relay/agent/assistant"),
    ("https://ivr.example.com/acme/", "wss://ivr.example.com/acme/relay/agent/assistant"),
])  # fmt: skip
def test_the_relay_url_is_the_public_url_as_a_websocket(public, relay):
    assert f'url="{relay}"' in engine(public=public).start(new_session("agent"), {"CallSid": "CA1"}, NOW).twiml


def test_the_welcome_is_rendered_per_call_and_without_keys_no_dtmf_detection():
    text = FLOW.replace("set: {name: Ada}", "set: {name: '{{ call.From }}'}").replace(
        '      keys: {"0": operator}\n', ""
    )
    e = engine(text)
    assert not e.renderers and not e.renderer_for({}).is_static("assistant")
    first = e.start(new_session("agent"), {"CallSid": "CA1", "From": "+15551230001"}, NOW).twiml
    second = e.start(new_session("agent"), {"CallSid": "CA2", "From": "+15551230002"}, NOW).twiml
    assert 'welcomeGreeting="Hi +15551230001, this is Acme.' in first
    assert 'welcomeGreeting="Hi +15551230002, this is Acme.' in second
    assert "dtmfDetection" not in first
    TwimlSchema.shared().check(first)


def test_an_agent_without_welcome_or_templates_is_static():
    text = FLOW.replace("      welcome: Hi {{ name }}, this is Acme. How can I help?\n", "")
    assert engine(text).renderer_for({}).is_static("assistant")


# -- routing the action request ----------------------------------------------------------------------


def _resume(params: dict, event: str | None = None, text: str = FLOW):
    e = engine(text)
    session = e.start(new_session("agent"), {"CallSid": "CA1"}, NOW).session
    return e.resume("assistant", session, {"CallSid": "CA1", "CallStatus": "in-progress", **params}, NOW, event)


def _handoff(route: str, **values) -> dict:
    return {"HandoffData": json.dumps({"route": route, "values": values}), "SessionStatus": "ended"}


@pytest.mark.parametrize(
    ("params", "event", "outcome", "heard"),
    [
        (_handoff("resolved"), None, "resolved", "Goodbye."),
        (_handoff("operator", reason="billing question"), None, "operator", "Connecting you. billing question"),
        (_handoff("limit"), None, "limit", "Connecting you. "),
        (_handoff("error"), None, "error", "Sorry, something went wrong."),
        (_handoff("refund"), None, "error", "Sorry, something went wrong."),  # no such end
        ({"HandoffData": "not json", "SessionStatus": "ended"}, None, "error", "Sorry, something went wrong."),
        ({"HandoffData": '["resolved"]'}, None, "error", "Sorry, something went wrong."),
        ({}, None, "error", "Sorry, something went wrong."),  # no HandoffData at all
        ({**_handoff("resolved"), "SessionStatus": "failed"}, None, "error", "Sorry, something went wrong."),
        ({"SessionStatus": "error"}, None, "error", "Sorry, something went wrong."),
        ({**_handoff("resolved"), "CallStatus": "completed"}, None, "hangup", "Goodbye."),  # hung up: nothing heard
        ({}, "error", "error", "Sorry, something went wrong."),  # the Redirect after <Connect>
    ],
)  # fmt: skip
def test_every_kind_of_action_request_routes_the_call(params, event, outcome, heard):
    step = _resume(params, event)
    assert step.outcome == outcome
    assert heard in step.twiml


def test_a_hang_up_without_a_route_ends_the_call():
    assert _resume({"CallStatus": "completed"}).twiml.endswith("<Hangup /></Response>")


def test_a_hang_up_may_be_routed():
    text = FLOW.replace("error: apology}", "error: apology, hangup: apology}")
    assert "Sorry, something went wrong." in _resume({"CallStatus": "completed"}, text=text).twiml


def test_an_event_other_than_error_does_not_fit_an_agent():
    with pytest.raises(WebhookError, match="event 'no_input' does not fit state 'assistant'"):
        _resume({}, "no_input")


def test_handed_back_values_are_short_strings_without_xml_forbidden_characters():
    values = {"reason": "x\x01y\ud800 " + "z" * 500, "made_up": "dropped"}
    step = _resume(_handoff("operator", **values))
    assert step.session["vars"]["handoff"] == {"reason": ("xy " + "z" * 500)[:200]}
    TwimlSchema.shared().check(step.twiml)
    assert _resume(_handoff("operator", reason={"a": 1})).session["vars"]["handoff"] == {"reason": ""}
    assert _resume(_handoff("operator")).session["vars"]["handoff"] == {"reason": ""}
    assert _resume(_handoff("operator", reason=42)).session["vars"]["handoff"] == {"reason": "42"}


# -- the journal -----------------------------------------------------------------------------------


def test_the_journal_keeps_each_agent_outcome_and_a_hang_up_as_such(make_app, tmp_path):
    journal = tmp_path / "e.sqlite3"
    app = make_app({"IVR_FLOWS_DIR": str(_flows_dir(tmp_path)), "IVR_PUBLIC_URL": BASE,
                    "IVR_EVENTS": f"sqlite:///{journal}"})  # fmt: skip
    client = app.test_client()
    for sid, extra in (("CA" + "1" * 32, _handoff("operator", reason="a person")),
                       ("CA" + "2" * 32, {"CallStatus": "completed"})):  # fmt: skip
        params = caller_params(sid)
        url = f"{BASE}/voice/agent"
        response = client.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})
        assert b"<ConversationRelay" in response.data
        url = f"{BASE}/voice/agent/assistant"
        fields = {**params, **extra}
        assert client.post(url, data=fields, headers={"X-Twilio-Signature": sign(url, fields)}).status_code == 200
    writer = services(app).events
    writer.flush()
    rows = writer.database.query("SELECT kind, detail, input FROM events WHERE kind = 'agent' ORDER BY call_sid")
    writer.close()
    assert rows == [("agent", "operator", None), ("agent", "hangup", None)]


# -- voices, graph ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relay", "warning"),
    [
        ("{tts_provider: Amazon, voice: Polly.Joanna}", "relay.voice: 'Polly.Joanna' is a <Say> voice: "
         "ConversationRelay takes tts_provider: Amazon and the provider's own name (voice: Joanna-Neural)"),
        ("{voice: Google.en-US-Neural2-F}", "relay.voice: 'Google.en-US-Neural2-F' is a <Say> voice"),
        ("{tts_provider: Amazon, voice: Joana-Neural}", "relay.voice: unknown Amazon voice 'Joana-Neural' (did you "
         "mean 'Joanna'?)"),
        ("{tts_provider: Amazon, voice: Joanna-Turbo}", "engine 'Turbo' is not one of"),
        ("{tts_provider: Amazon, voice: Lea-Neural, language: en-US}", "voice 'Lea-Neural' speaks fr-FR, not the "
         "conversation's language en-US"),
        ("{tts_provider: ElevenLabs, voice: Rachel}", "ElevenLabs voices are named by id: voice: "
         "21m00Tcm4TlvDq8ikWAM (Rachel)"),
        ("{tts_provider: ElevenLabs, voice: nobody}", "'nobody' is not an ElevenLabs voice id"),
        ("{tts_provider: Google, voice: Journey-O}", "'Journey-O' is not a Google voice name"),
        ("{tts_provider: Googel}", "relay.tts_provider: unknown tts_provider 'Googel' (did you mean 'Google'?)"),
        ("{transcription_provider: Deepgrm}", "unknown transcription_provider 'Deepgrm' (did you mean 'Deepgram'?)"),
        ("{tts_provider: ElevenLabs, voice: UgBBYS2sOqTuMpoF3BR0-flash_v2_5-1.2_1.0_1.0}", None),
        ("{tts_provider: google, voice: en-US-Chirp3-HD-Aoede, language: en-US}", None),
        ("{tts_provider: Amazon, voice: Joanna-Generative}", None),
    ],
)  # fmt: skip
def test_a_conversation_relay_voice_is_checked_like_says(relay, warning):
    old = "relay: " + FLOW.split("      relay: ")[1].split("\n")[0]
    assert old in FLOW
    found = [w.format() for w in voice_warnings(load(FLOW.replace(old, f"relay: {relay}")))]
    if warning is None:
        assert found == []
    else:
        assert len(found) == 1 and warning in found[0] and ": warning: states.assistant.agent." in found[0], found


def test_the_graph_labels_the_agents_edges_with_its_ends():
    text = mermaid(load())
    assert "assistant --> goodbye: resolved" in text
    assert "assistant --> operator: operator, limit" in text
    assert "assistant --> apology: error" in text
    assert "assistant --> builtin_goodbye: hangup" in text
    kinds = {
        node["id"]: node["kind"]
        for node in graph_data(load(FLOW.replace("start: assistant", "start: goodbye")))["nodes"]
    }
    assert kinds["assistant"] == "agent"


# -- docs/agents.md ----------------------------------------------------------------------------------


def test_the_documented_agent_renders_the_documented_twiml():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "agents.md").read_text(encoding="utf-8")
    flow_text = doc.split("```yaml\n")[1].split("```")[0]
    documented = doc.split("```xml\n")[1].split("```")[0]
    flow = load_flow_text(flow_text, "support.yaml", "support")
    assert unknown_names(flow, hooks=()) == []
    step = Engine(flow, Urls(PUBLIC)).start(new_session("support"), {"CallSid": "CA1"}, NOW)
    expected = " ".join(documented.replace("CONTENT_HASH", flow.content_hash).split())
    expected = expected.replace("> <", "><").replace('"/>', '" />')
    assert step.twiml.removeprefix('<?xml version="1.0" encoding="UTF-8"?>') == expected


def test_check_reads_an_agent_flow_without_false_warnings(tmp_path, monkeypatch):
    """The tool state is reached by the agent; handoff is set by save_as; only the Say-style voice is warned."""
    text = FLOW.replace("voice: UgBBYS2sOqTuMpoF3BR0", "voice: Polly.Joanna")
    flows = _flows_dir(tmp_path, text)
    monkeypatch.setenv("IVR_PUBLIC_URL", PUBLIC)
    result = CliRunner().invoke(cli, ["check", str(flows / "agent.yaml")])
    lines = [line for line in result.output.splitlines() if ": warning: " in line or ": error: " in line]
    assert lines == [
        f"{flows / 'agent.yaml'}:19:48: warning: states.assistant.agent.relay.voice: 'Polly.Joanna' is a <Say> "
        "voice: ConversationRelay takes tts_provider: Amazon and the provider's own name (voice: Joanna-Neural)"
    ], result.output


def test_a_dial_target_built_from_what_the_model_handed_back_is_refused():
    text = FLOW.replace('    say: "Connecting you. {{ handoff.reason }}"\n    hangup: true\n',
                        '    dial: {number: "{{ handoff.reason }}"}\n    next: goodbye\n')  # fmt: skip
    with pytest.raises(FlowLoadError) as raised:
        load(text)
    assert "states.operator.dial.number: dial number built from what the model handed back (handoff)" in str(
        raised.value
    )


def test_a_dial_target_copied_by_set_from_the_models_values_is_refused_too():
    text = FLOW.replace('    say: "Connecting you. {{ handoff.reason }}"\n    hangup: true\n',
                        "    set: {target: \"{{ handoff.reason }}\", other: \"{{ handoff['reason'] }}\"}\n"
                        "    next: xfer\n"
                        "  xfer:\n    dial: {number: \"{{ target }}\"}\n    next: x2\n"
                        "  x2:\n    dial: {number: \"{{ other }}\"}\n    next: goodbye\n")  # fmt: skip
    with pytest.raises(FlowLoadError) as raised:
        load(text)
    assert "states.xfer.dial.number: dial number built from what the model handed back (target)" in str(raised.value)
    assert "states.x2.dial.number: dial number built from what the model handed back (other)" in str(raised.value)
