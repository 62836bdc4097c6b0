"""Checks of agent states that the loader alone cannot make: where each end goes (with the flow's states known),
what each tool names (with the registered hooks known) and the setting the relay's URL comes from.

Each rule has one home here: `validate` (routes), `unknown_names` (tools; the app and `check`), and
`relay_setting_errors` (IVR_PUBLIC_URL; the app's registry and `check`, which read the settings).
"""

from __future__ import annotations

from collections.abc import Collection

from ivr.core import flow as f
from ivr.core.agent import AGENT_OUTCOMES, HANGUP_OUTCOME, Agent
from ivr.core.hints import did_you_mean, path_join
from ivr.core.http_step import Http
from ivr.errors import FlowError

__all__ = ["agent_route_errors", "relay_setting_errors", "tool_errors"]


def _error(pos: f.Pos, path: str, message: str) -> FlowError:
    return FlowError(pos.file, pos.line, pos.column, path, message)


def agent_route_errors(state: f.State, path: str) -> list[FlowError]:
    """Routes that are no outcome of the agent, and ends (plus limit and error) with nowhere to go and no next."""
    action: Agent = state.action
    ends = [e.name for e in action.ends]
    outcomes = (*ends, *AGENT_OUTCOMES)
    errors = []
    for route in state.routes:
        if route.outcome not in outcomes:
            hint = did_you_mean(route.outcome, outcomes)
            message = f"not an end of this agent{hint}; outcomes: {', '.join(outcomes)}"
            errors.append(_error(route.pos, path_join(path_join(path, "routes"), route.outcome), message))
    routed = {r.outcome for r in state.routes}
    missing = [o for o in outcomes if o != HANGUP_OUTCOME and o not in routed]  # after a hang-up nothing is heard
    if missing and state.next is None:
        many = len(missing) > 1
        message = (f"outcome{'s' if many else ''} {', '.join(missing)} {'have' if many else 'has'} nowhere to go: "
                   "route each under routes, or add next: STATE")  # fmt: skip
        errors.append(_error(action.pos, path, message))
    return errors


def tool_errors(flow: f.Flow, hooks: Collection[str]) -> list[FlowError]:
    """Tools that are neither a registered hook nor a state of this flow with an `http:` action."""
    steps = [name for name, s in flow.states.items() if isinstance(s.action, Http)]
    errors = []
    for state in flow.states.values():
        if not isinstance(state.action, Agent):
            continue
        tools_path = path_join(path_join(path_join("states", state.name), "agent"), "tools")
        for tool in state.action.tools:
            if tool.name in hooks or tool.name in steps:
                continue
            if tool.name in flow.states:
                why = f"state '{tool.name}' is no http: step; a tool is a registered hook or a state with http:"
            else:
                hint = did_you_mean(tool.name, [*hooks, *steps])
                why = f"unknown tool '{tool.name}'{hint}: a tool is a registered hook (@ivr.hook) or a state with http:"
            errors.append(_error(tool.pos, path_join(tools_path, tool.name), why))
    return errors


def relay_setting_errors(flow: f.Flow, public_url: str | None) -> list[FlowError]:
    """An agent state's wss:// URL is built from IVR_PUBLIC_URL: one that is not an http(s) URL is refused here
    (the settings refuse it first when the app starts). Unset is allowed: production refuses to start without
    IVR_PUBLIC_URL at all (ivr.settings), so this is development or a test, where no Twilio connects and the
    phones reach a conversation by its flow and state; the document then names the root-relative /relay/F/S,
    as every URL it writes without IVR_PUBLIC_URL."""
    if not public_url or public_url.startswith(("https://", "http://")):
        return []
    why = f"an agent state needs IVR_PUBLIC_URL to start with https:// (or http://), got '{public_url}'"
    agents = [s for s in flow.states.values() if isinstance(s.action, Agent)]
    return [_error(s.action.pos, path_join(path_join("states", s.name), "agent"), why) for s in agents]
