"""What a caller typed or said, traced to the dial targets and URLs a flow builds from it (toll fraud).

A caller's input reaches a template as `input.*`, `call.Digits`, `call.SpeechResult`, a
`gather.save_as` variable, or a variable that `set:` copies from one of them. Put into a dial
target or a URL, it lets a caller choose the number called or the TwiML fetched, unless a gather's
`pattern` limits it: a `save_as` variable is set only when the input matches its gather's pattern;
`input.*` is limited when every gather whose input can reach the state has a pattern (the state's
own gather included: its retries play with the input it refused).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jinja2 import nodes

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.references import state_prompts
from ivr.core.templates import parse_text
from ivr.errors import FlowError

__all__ = ["CallerInput", "built_from_input", "model_input_errors"]

_RAW_CALL = ("Digits", "SpeechResult", "UnstableSpeechResult")


def built_from_input(state: f.State) -> list[tuple[f.Text, str]]:
    """The texts of a state that choose where the call goes or what it fetches, with what each is."""
    out = [(p.url, "Play URL") for p in state_prompts(state) if isinstance(p, f.Play)]
    action = state.action
    if isinstance(action, f.Dial):
        out += [(t.value, f"dial {t.kind}") for t in action.targets]
    elif isinstance(action, f.Enqueue) and action.wait_url is not None:
        out.append((action.wait_url, "enqueue wait_url"))
    elif isinstance(action, f.Redirect) and action.url is not None:
        out.append((action.url, "redirect URL"))
    return out


def _reads(tree: nodes.Template) -> set[str]:
    """What a template reads: `input`, `call.Digits`, variable names (bare or as vars.NAME)."""
    found = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name) and node.ctx == "load":
            found.add(node.name)
        elif isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
            key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if node.node.name in ("call", "vars", "input") and isinstance(key, str):
                found.add(f"{node.node.name}.{key}")
    if any(r.startswith("input.") for r in found):
        found.discard("input")  # named more precisely
    return found


class CallerInput:
    """The caller's input in one flow: which variables carry it unlimited, and where raw input is limited."""

    def __init__(self, flow: f.Flow, preds: Callable[[str], Iterable[str]]) -> None:
        self.flow, self.preds = flow, preds
        gathers = [s.action for s in flow.states.values() if isinstance(s.action, f.Gather) and s.action.save_as]
        self.tainted = {g.save_as for g in gathers if g.pattern is None}
        sets = [(var, value) for s in flow.states.values() for var, value, _ in s.set if isinstance(value, f.Text)]
        sets = [(var, parse_text(value.source)) for var, value in sets if value.template is not None]
        grew = True
        while grew:  # a variable copied from unlimited input is unlimited input too
            before = len(self.tainted)
            self.tainted |= {var for var, tree in sets if self._unlimited(_reads(tree), None)}
            grew = len(self.tainted) > before

    def unlimited(self, state: f.State, text: f.Text) -> list[str]:
        """The caller input a text reads that no pattern limits, as the author would write it."""
        return sorted(self._unlimited(_reads(parse_text(text.source)), state)) if text.template is not None else []

    def _unlimited(self, reads: set[str], state: f.State | None) -> set[str]:
        raw = {r for r in reads if r.partition(".")[0] == "input" or r in {f"call.{k}" for k in _RAW_CALL}}
        if raw and state is not None and self._patterned_before(state.name):
            raw = set()
        variables = {r for r in reads - raw if r.removeprefix("vars.") in self.tainted}
        return raw | variables

    def _patterned_before(self, name: str) -> bool:
        """Whether every gather whose input can reach state `name` has a pattern (and there is one)."""
        seen, todo, gathers = {name}, [name], []
        while todo:
            current = todo.pop()
            state = self.flow.states[current]
            if isinstance(state.action, f.Gather):
                gathers.append(state.action)
                if current != name:
                    continue  # an earlier gather's input is replaced by this one's
            for pred in self.preds(current):
                if pred not in seen:
                    seen.add(pred)
                    todo.append(pred)
        return bool(gathers) and all(g.pattern is not None for g in gathers)


def _names(tree: nodes.Template) -> set[str]:
    """The variables a template reads, by their first name: handoff.number, handoff['number'], vars.target."""
    names = {r.removeprefix("vars.").partition(".")[0] for r in _reads(tree)}
    for node in tree.find_all(nodes.Getitem):  # handoff['number']: the variable is the subscripted name
        if isinstance(node.node, nodes.Name):
            names.add(node.node.name)
    return names


def model_input_errors(flow: f.Flow) -> list[FlowError]:
    """What a language model handed back (an agent state's `save_as` values) put into a dial target or a URL: the
    model, led by what the caller says, would choose the number called or the TwiML fetched. Refused: an end's
    values take no pattern, so nothing limits them (a tool's arguments reach only its HTTP step's path, on an
    origin the flow writes out, each value percent-encoded)."""
    saved = {s.action.save_as for s in flow.states.values() if isinstance(s.action, Agent) and s.action.save_as}
    if not saved:
        return []
    sets = [(var, value) for s in flow.states.values() for var, value, _ in s.set if isinstance(value, f.Text)]
    sets = [(var, _names(parse_text(value.source))) for var, value in sets if value.template is not None]
    grew = True
    while grew:  # a variable `set:` copies from the model's values carries them too
        before = len(saved)
        saved |= {var for var, names in sets if names & saved}
        grew = len(saved) > before
    errors = []
    for name, state in flow.states.items():
        for text, what in built_from_input(state):
            if text.template is None:
                continue
            for var in sorted(_names(parse_text(text.source)) & saved):
                why = (f"{what} built from what the model handed back ({var}): a caller could talk the model into "
                       "choosing it; take the number or URL from the flow, a hook or a patterned gather")  # fmt: skip
                errors.append(FlowError(text.pos.file, text.pos.line, text.pos.column, text.path or f"states.{name}",
                                        why))  # fmt: skip
    return errors
