"""An agent's tools as the model sees them, and what the model hands back, checked as caller input.

The model gets one OpenAI function per tool (its JSON Schema as the flow declares it) and one `end_<route>`
function per end (its values as string parameters). Its arguments are caller input: `check_arguments`
holds them to the tool's schema (types, patterns, enums, bounds; a string without a pattern or an enum is
still length-limited) before any hook or request sees them; a refusal goes back to the model as the
tool's error. `run_tool` carries a tool out under the hooks' budgets and bulkheads (`ivr.hooks.HookRunner`):
a registered hook with the arguments as its input, or the `http:` state of the same name with the
arguments as variables `args.X`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ivr.core import flow as f
from ivr.core.agent import Agent, AgentEnd, AgentTool
from ivr.core.effects import HookCall, HookResult
from ivr.core.http_step import Http, http_call
from ivr.errors import ToolRefused as Refused
from ivr.hooks import HookRunner

__all__ = ["END_PREFIX", "MAX_TEXT", "Refused", "check_arguments", "end_values", "run_tool", "tool_specs"]

END_PREFIX = "end_"
MAX_TEXT = 200  # characters of a string argument or end value without a pattern or an enum
# What XML 1.0 cannot carry (handoff values end up in TwiML and logs): control characters but tab and newlines.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def tool_specs(agent: Agent) -> list[dict]:
    """The functions the model may call: the agent's tools, then `end_<route>` for each of its ends."""
    specs = [_function(tool.name, tool.description, tool.parameters) for tool in agent.tools]
    for end in agent.ends:
        properties = {name: {"type": "string", "maxLength": MAX_TEXT, "description": text} for name, text in end.values}
        schema = {"type": "object", "properties": properties, "required": list(properties),
                  "additionalProperties": False}  # fmt: skip
        specs.append(_function(END_PREFIX + end.name, f"End the conversation: {end.description}", schema))
    return specs


def _function(name: str, description: str, parameters: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def _parsed(arguments: str) -> dict:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        raise Refused("the arguments are not JSON") from None
    if not isinstance(value, dict):
        raise Refused("the arguments must be a JSON object")
    return value


def check_arguments(tool: AgentTool, arguments: str) -> dict:
    """The model's arguments (JSON text) for `tool`, checked against its parameters; Refused says why not."""
    value = _parsed(arguments)
    schema = tool.parameters or {}
    properties = schema.get("properties", {})
    unknown = sorted(set(value) - set(properties))
    if unknown:
        raise Refused(f"unknown arguments: {', '.join(unknown)}")
    missing = [name for name in schema.get("required", list(properties)) if name not in value]
    if missing:
        raise Refused(f"missing arguments: {', '.join(missing)}")
    for name, given in value.items():
        _check_one(name, given, properties[name])
    return value


def _check_one(name: str, value, schema: dict) -> None:
    kind = schema.get("type", "string")
    expected = _TYPES.get(kind)
    if expected is None or not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
        raise Refused(f"{name}: expected {kind}")
    if "enum" in schema and value not in schema["enum"]:
        raise Refused(f"{name}: must be one of {', '.join(map(str, schema['enum']))}")
    if kind == "string":
        limit = schema.get("maxLength", MAX_TEXT)
        if len(value) > limit:
            raise Refused(f"{name}: longer than {limit} characters")
        if _FORBIDDEN.search(value) or "\n" in value or "\r" in value:  # ("12345\n" would pass $ in Python)
            raise Refused(f"{name}: holds control characters")
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            raise Refused(f"{name}: does not match {pattern}")
    elif kind in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            raise Refused(f"{name}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise Refused(f"{name}: above {schema['maximum']}")


def end_values(end: AgentEnd, arguments: str) -> dict[str, str]:
    """The values the model hands back with `end`: strings, at most MAX_TEXT characters, XML-safe; extra
    names dropped, missing ones empty. Refused when the arguments are not a JSON object."""
    value = _parsed(arguments)
    out = {}
    for name, _ in end.values:
        given = value.get(name, "")
        text = given if isinstance(given, str) else json.dumps(given)
        out[name] = _FORBIDDEN.sub("", text)[:MAX_TEXT]
    return out


@dataclass(frozen=True, slots=True)
class ToolCallContext:
    """Who calls: the call, its variables, and where in the flow (a hook's context is built from it)."""

    call_sid: str
    flow_id: str
    state: str
    call: dict
    vars: dict


def run_tool(runner: HookRunner, flow: f.Flow | None, tool: AgentTool, args: dict, who: ToolCallContext,
             key: str) -> HookResult:  # fmt: skip
    """Carry out `tool` with checked `args`: the `http:` state of its name when the flow has one, else the
    registered hook; within the hooks' timeout and bulkheads. Never raises: failures are results."""
    state = flow.states.get(tool.name) if flow is not None else None
    if state is not None and isinstance(state.action, Http):
        values = {**who.vars, "vars": who.vars, "args": args, "call": who.call, "flow": who.flow_id, "state": who.state}
        try:
            call = http_call(state.action, who.flow_id, tool.name, values, who.call_sid, key)
        except Exception as exc:  # a template that fails on these arguments
            return HookResult("error", error=f"{type(exc).__name__}: {exc}")
        return runner.run(call)[0]
    context = {"call_sid": who.call_sid, "key": key, "flow": who.flow_id, "state": who.state,
               "call": dict(who.call), "vars": {**who.vars, "args": args}, "input": dict(args),
               "recording": {}, "dial": {}, "now": None}  # fmt: skip
    return runner.run(HookCall(tool.name, who.flow_id, who.state, context))[0]
