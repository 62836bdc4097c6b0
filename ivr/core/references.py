"""What a flow names outside itself: hooks (`run:`, `on_message:`), schedules (`open('name')`) and secrets.

One home for the rule, so that `create_app`, hot reload and `python -m ivr check` agree: a hook
nobody registered or a schedule nobody defined is an error at load, wherever the flow names it
(a `when:` condition, a Say text, a URL, a text message...), never an apology to a caller.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.agent_checks import tool_errors
from ivr.core.call_recording import ControlRecording
from ivr.core.hints import did_you_mean, path_join
from ivr.core.http_step import Http, http_texts
from ivr.core.pay import Pay, pay_prompts, pay_texts
from ivr.core.ssml import part_texts
from ivr.core.templates import open_names, parse_condition, parse_text
from ivr.errors import FlowError

__all__ = ["spoken_texts", "state_prompts", "state_templates", "state_texts", "unknown_names"]

_HOOK_HINT = " (register it with @ivr.hook in the IVR_HOOKS module)"
_SCHEDULE_HINT = " (add it under schedules:, or to IVR_SCHEDULES)"


def state_prompts(state: f.State) -> list:
    """Every prompt a state may play: its own, the reprompt, the retry messages and a screen's whisper."""
    screen = state.action.screen if isinstance(state.action, f.Dial) else None
    paid = pay_prompts(state.action) if isinstance(state.action, Pay) else []
    return [*state.prompts, *(state.reprompt or ()), *state.no_input.prompts, *state.no_match.prompts,
            *(screen.prompts if screen else ()), *paid]  # fmt: skip


def spoken_texts(state: f.State) -> list[f.Text]:
    """The texts of a state's documents that may carry a template: its prompts' and its action's."""
    out = []
    for p in state_prompts(state):  # a say written as parts: each part's text, at its own position
        out += (part_texts(p.parts) or [p.text]) if isinstance(p, f.Say) else [p.url] if isinstance(p, f.Play) else []
    action = state.action
    if isinstance(action, f.Dial):
        out += [t.value for t in action.targets] + [action.caller_id]
    elif isinstance(action, f.Enqueue):
        out += [action.name, action.wait_url, *task_texts(action.task)]
    elif isinstance(action, f.Redirect):
        out.append(action.url)
    elif isinstance(action, Pay):
        out += pay_texts(action)
    elif isinstance(action, Agent):  # its welcome greeting; its instructions go to the model, not in TwiML
        out.append(action.welcome)
    return [t for t in out if t is not None]


def task_texts(task: f.Task | None) -> list[f.Text]:
    """The texts among an enqueue task's attributes, nested ones included."""
    out: list[f.Text] = []

    def walk(value) -> None:
        if isinstance(value, f.Text):
            out.append(value)
        elif isinstance(value, tuple | list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(task.attributes if task else ())
    return out


def task_json(value, text):
    """An enqueue task's attributes as a JSON value: each text through `text` (its rendering)."""
    if isinstance(value, f.Text):
        return text(value)
    if isinstance(value, tuple | dict):
        pairs = value.items() if isinstance(value, dict) else value
        return {key: task_json(item, text) for key, item in pairs}
    if isinstance(value, list):
        return [task_json(item, text) for item in value]
    return value


def state_texts(state: f.State) -> list[f.Text]:
    """Every text of a state that may carry a template: what it says and does, what it sets and texts."""
    out = spoken_texts(state) + [value for _, value, _ in state.set if isinstance(value, f.Text)]
    if state.sms is not None:
        out += [t for t in (state.sms.body, state.sms.to) if t is not None]
    if isinstance(state.action, Http):
        out += http_texts(state.action)
    if isinstance(state.action, Agent):
        out.append(state.action.instructions)
    return out


def state_templates(state: f.State) -> Iterator[tuple[object, f.Pos, str]]:
    """(syntax tree, position, key path) of every template and `when:` condition of a state."""
    for text in state_texts(state):
        if text.template is not None:
            yield parse_text(text.source), text.pos, text.path
    when = path_join(path_join("states", state.name), "when")
    for i, cond in enumerate(state.when):
        yield parse_condition(cond.source), cond.pos, path_join(when, i) + ".if"


def unknown_names(
    flow: f.Flow, hooks: Collection[str], schedules: Collection[str] = (), secrets: Collection[str] = ()
) -> list[FlowError]:
    """Hooks not in `hooks`, schedules neither in `schedules` (IVR_SCHEDULES) nor the flow's own, and
    secrets of HTTP steps not in `secrets` (IVR_HTTP_SECRETS: what is not allowed is never sent)."""
    errors = []
    for state in flow.states.values():
        if isinstance(state.action, Http):
            for name, pos, path in state.action.secrets:
                if name not in secrets:
                    message = f"secret '{name}' is not in IVR_HTTP_SECRETS (add its name there to allow it)"
                    errors.append(FlowError(pos.file, pos.line, pos.column, path, message))
    for name, pos, path in _hooks_named(flow):
        if name not in hooks:
            hint = did_you_mean(name, hooks) or _HOOK_HINT
            errors.append(FlowError(pos.file, pos.line, pos.column, path, f"unknown hook '{name}'{hint}"))
    errors += tool_errors(flow, hooks)  # an agent's tools: hooks, or the flow's own HTTP steps
    known = set(schedules) | set(flow.schedules)
    for state in flow.states.values():
        for tree, pos, path in state_templates(state):
            for name in sorted(open_names(tree) - known):
                hint = did_you_mean(name, known) or _SCHEDULE_HINT
                errors.append(FlowError(pos.file, pos.line, pos.column, path, f"unknown schedule '{name}'{hint}"))
    return errors


def _hooks_named(flow: f.Flow) -> Iterator[tuple[str, f.Pos, str]]:
    # on_message may be {sms: NUMBER}: no hook to find there.
    if isinstance(flow.defaults.on_message, str):
        yield flow.defaults.on_message, flow.defaults.on_message_pos or flow.pos, "defaults.on_message"
    for state in flow.states.values():
        path = path_join("states", state.name)
        if isinstance(state.action, f.Run) and not isinstance(state.action, Http | ControlRecording):
            yield state.action.name, state.action.pos, path + ".run"
        if isinstance(state.on_message, str):
            yield state.on_message, state.on_message_pos or state.pos, path + ".on_message"
