"""An agent's tools: the functions the model sees, its arguments checked as caller input, hooks and HTTP steps run."""

from __future__ import annotations

from dataclasses import replace

import pytest
from agent_helpers import POS, make_agent, with_agent

from ivr.agent.tools import Refused, ToolCallContext, check_arguments, end_values, run_tool, tool_specs
from ivr.core import flow as f
from ivr.core.agent import AgentTool
from ivr.core.effects import HookResult
from ivr.core.http_step import Http
from ivr.core.templates import compile_text
from ivr.hooks import HookRunner, registry

TOOL = AgentTool("t", "a tool", {"type": "object", "additionalProperties": False, "required": ["order", "n", "ok"],
                                 "properties": {"order": {"type": "string", "pattern": "^[0-9]{5}$"},
                                                "n": {"type": "integer", "minimum": 1, "maximum": 9},
                                                "ok": {"type": "boolean"},
                                                "color": {"type": "string", "enum": ["red", "blue"]},
                                                "note": {"type": "string"}}}, POS)  # fmt: skip
GOOD = '{"order": "12345", "n": 3, "ok": true}'
WHO = ToolCallContext("CA" + "3" * 32, "main", "assistant", {"CallSid": "CA" + "3" * 32, "From": "+1555"}, {"x": 1})


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        ("not json", "not JSON"),
        ("[1]", "a JSON object"),
        ('{"order": "12345", "n": 3}', "missing arguments: ok"),
        ('{"order": "12345", "n": 3, "ok": true, "url": "http://evil"}', "unknown arguments: url"),
        ('{"order": "1234x", "n": 3, "ok": true}', "order: does not match"),
        ('{"order": 12345, "n": 3, "ok": true}', "order: expected string"),
        ('{"order": "12345", "n": 10, "ok": true}', "n: above 9"),
        ('{"order": "12345", "n": 0, "ok": true}', "n: below 1"),
        ('{"order": "12345", "n": true, "ok": true}', "n: expected integer"),
        ('{"order": "12345", "n": 3, "ok": "yes"}', "ok: expected boolean"),
        ('{"order": "12345", "n": 3, "ok": true, "color": "green"}', "color: must be one of red, blue"),
        ('{"order": "12345", "n": 3, "ok": true, "note": "' + "a" * 201 + '"}', "note: longer than 200"),
        ('{"order": "12345", "n": 3, "ok": true, "note": "a\\u0000b"}', "note: holds control characters"),
        ('{"order": "12345\\n", "n": 3, "ok": true}', "order: holds control characters"),  # Python's $ takes "\n"
    ],
)
def test_arguments_that_break_the_schema_are_refused_saying_why(arguments, why):
    with pytest.raises(Refused, match=why):
        check_arguments(TOOL, arguments)


def test_arguments_that_keep_to_the_schema_pass():
    assert check_arguments(TOOL, GOOD) == {"order": "12345", "n": 3, "ok": True}


def test_the_model_sees_each_tool_and_one_end_function_per_route():
    specs = tool_specs(make_agent())
    assert [s["function"]["name"] for s in specs] == ["order_status", "end_resolved", "end_operator"]
    operator = specs[2]["function"]
    assert operator["parameters"]["required"] == ["reason"]
    assert "The caller wants a person." in operator["description"]


def test_end_values_are_strings_of_the_ends_names_only():
    end = make_agent().ends[1]
    assert end_values(end, '{"reason": 42, "other": "x"}') == {"reason": "42"}
    assert end_values(end, "{}") == {"reason": ""}


def test_a_hook_tool_gets_the_arguments_as_its_input_and_the_calls_variables():
    seen = []

    def lookup(ctx):
        seen.append(ctx)
        return {"outcome": "found", "vars": {"status": "shipped"}}

    with registry.override("order_status", lookup):
        result = run_tool(HookRunner(registry, 2.0), None, make_agent().tools[0], {"order": "12345"}, WHO, "k1")
    assert result == HookResult("found", {"status": "shipped"})
    assert (seen[0].input, seen[0].vars, seen[0].key) == (
        {"order": "12345"},
        {"x": 1, "args": {"order": "12345"}},
        "k1",
    )


def test_an_http_tool_sends_its_states_request_with_the_arguments_as_args():
    sent = []

    class Sender:
        def send(self, call, timeout):
            sent.append(call)
            return HookResult("200", {"status": "shipped"})

    action = Http("http:api", POS, origin="https://api.example.com", path=f.Text(
        "/orders/{{ args.order }}", POS, compile_text("/orders/{{ args.order }}", url=True)))  # fmt: skip
    flow = f.Flow("main", "main.yaml", None, None, "s", None, {}, "h", POS)
    flow = with_agent(replace(flow, states={"s": _state("s")}), "assistant", make_agent())
    flow = replace(flow, states={**flow.states, "order_status": replace(_state("order_status"), action=action)})
    result = run_tool(HookRunner(registry, 2.0, http=Sender()), flow, make_agent().tools[0], {"order": "12345"}, WHO,
                      "k2")  # fmt: skip
    assert result.outcome == "200" and result.vars == {"status": "shipped"}
    assert sent[0].url == "https://api.example.com/orders/12345"


def _state(name: str) -> f.State:
    return f.State(name, (), None, (), None, (), None, None, None, (), False, POS)
