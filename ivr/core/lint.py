"""The checks of `python -m ivr check`: every load-time error, and warnings about what the loader lets through.

Warnings, each at the key it is about: states no call reaches; states after which a call can
never end; menus whose prompt and keys disagree; keys num_digits cuts off; retries without end;
dial targets and Play URLs Twilio refuses; dial targets and URLs built from caller input that no
pattern limits (`caller_input`); prompts over 30 s before the caller can act; template variables
nothing sets; voices Twilio may not know, and SSML their engine does not speak (`voice_checks`).
Unknown hooks and schedules are errors, as when the app starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.agent_checks import relay_setting_errors
from ivr.core.caller_input import CallerInput, built_from_input
from ivr.core.flow import Pos
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader import find_flow_files, key_paths, load_schedules_file, read_directory
from ivr.core.loader.catalog_checks import catalog_warnings, language_warnings
from ivr.core.outcomes import expected_digits, one_key_menu
from ivr.core.pay import Pay
from ivr.core.recording_checks import pay_errors, recording_warnings, transcription_warnings
from ivr.core.references import state_prompts, state_templates, unknown_names
from ivr.core.subflow import Call as SubflowCall
from ivr.core.subflow import Return
from ivr.core.templates import unknown_variables
from ivr.core.validate import validate_flow
from ivr.core.voice_checks import voice_warnings
from ivr.errors import FlowError, FlowLoadError

__all__ = ["MAX_WAIT", "Report", "run_checks"]

MAX_WAIT = 30  # seconds a caller may listen before being able to press a key or answer
WORDS_PER_SECOND = 150 / 60
_TARGETS = {
    "number": (
        f.E164.pattern.removesuffix(r"\Z"),
        "an E.164 number (+, country code and number, no spaces: +15551230100)",
    ),
    "client": (r"[^\s\x00-\x1f<>#%\"{}|\\^\[\]`]{1,256}", 'a client identity (no spaces or <>#%"{}|\\^[]`)'),
    "sip": (r"(?i:sips?):[^@\s]+@[^@\s]+", "a SIP URI (sip:user@host)"),
}
_HTTP = re.compile(r"https?://\S+\Z", re.IGNORECASE)
_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_KEY_WORDS = {w: str(i) for i, w in enumerate(_DIGITS)} | {"star": "*", "pound": "#", "hash": "#"}
_KEY = r"(?:the\s+)?(\d+|[*#]|" + "|".join(_KEY_WORDS) + r")(?:\s+(?:key|sign|button))?(?!\w)"
# "press 2" in the languages flows most often offer: oprima/marque 2, appuyez sur 2, drücken Sie die 2, prema 2.
_VERBS = (r"press|dial|oprima|pulse|presione|marque|appuyez\s+sur|tapez|composez|drücken\s+sie(?:\s+die)?|premi|prema"
          r"|digite")  # fmt: skip
_PRESS = re.compile(r"\b(?:" + _VERBS + r")\s+" + _KEY)
_MORE = re.compile(r"\s*" + _KEY + r"\s*(?:(?:for|to)\b.*)?\Z", re.DOTALL)  # "..., 2 for support, or 3"
_UNREACHABLE = "no call can reach this state: nothing leads here from start, error_state or a redirect"
_NO_END = "a call that comes here can never end: no path leads to a hangup, reject, redirect out or menu goodbye"
_MIXED = " beside one-key routes turns off the one-key default: every choice waits for the timeout;"
_CATCH_ALL = (
    "next: as a catch-all turns off the one-key default (numDigits 1): each key waits out the timeout;"
    " set gather.num_digits: 1 to keep it"
)
_LONG = ", at 150 words a minute); shorten them, or move them into a menu's prompt, which a key interrupts"
_CALLER_CHOOSES = "a caller could choose {}; limit it with gather.pattern (and save_as), or use a fixed value"


@dataclass
class Report:
    """What `check` found: every problem in file:line:col order, and how many flows it read."""

    problems: list[FlowError]
    flows: int

    def count(self, severity: str) -> int:
        """How many problems are of a severity: "error" or "warning"."""
        return sum(p.severity == severity for p in self.problems)

    def failed(self, strict: bool = False) -> bool:
        """Whether the check fails: any error, or with strict any warning too."""
        return bool(self.count("error") or (strict and self.problems))

    def summary(self) -> str:
        """`2 errors, 3 warnings in 4 flows`, or `no problems in 3 flows`."""
        counts = f"{self._plural(self.count('error'), 'error')}, {self._plural(self.count('warning'), 'warning')}"
        return f"{counts if self.problems else 'no problems'} in {self._plural(self.flows, 'flow')}"

    def as_json(self) -> str:
        """The problems as a JSON list of {file, line, column, severity, path, message}."""
        keys = ("file", "line", "column", "severity", "path", "message")
        return json.dumps([{k: getattr(p, k) for k in keys} for p in self.problems], indent=2)

    @staticmethod
    def _plural(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"


def run_checks(
    targets=(),
    *,
    flows_dir="flows",
    hooks: Callable[[Path], Collection[str]] = lambda directory: (),
    schedules: str | None = None,
    secrets: Collection[str] = (),
    pci_mode: bool = False,
    public_url: str | None = None,
) -> Report:
    """Check flows (ids in flows_dir, or paths to .yaml files; none: every flow in flows_dir).

    `hooks(directory)` gives the hook names registered for the flows of a directory (the CLI
    imports the module the app would import for them); `schedules` is IVR_SCHEDULES's file;
    `secrets` the names IVR_HTTP_SECRETS allows; `pci_mode` IVR_PCI_MODE's value; `public_url` IVR_PUBLIC_URL's.
    """
    files, problems = find_flow_files(targets, flows_dir)
    try:
        shared = load_schedules_file(schedules) if schedules else {}
    except FlowLoadError as exc:
        shared, problems = {}, problems + exc.errors
    for directory in dict.fromkeys(path.parent for path in files):
        problems += _check_directory(directory, files, shared, hooks(directory), secrets, pci_mode, public_url)
    unique = {p.format(): p for p in problems}
    return Report(sorted(unique.values(), key=FlowError.sort_key), len(files))


def _check_directory(
    directory: Path,
    chosen: list[Path],
    shared: dict,
    hooks: Collection[str],
    secrets: Collection[str] = (),
    pci_mode: bool = False,
    public_url: str | None = None,
) -> list[FlowError]:
    """Read every flow of a directory (redirects may name them); check the chosen ones."""
    problems, flows, checked = [], {}, []
    for read in read_directory(directory):
        mine = read.path.resolve() in chosen
        problems += read.problems if mine else []
        if read.flow is not None:
            flows[read.flow.id] = read.flow
            checked += [read] if mine else []  # a file's reading mistakes do not hide what they did to its graph
    for read in checked:
        errors = validate_flow(read.flow, flows)
        problems += errors + unknown_names(read.flow, hooks, shared, secrets)
        problems += relay_setting_errors(read.flow, public_url)  # an agent's wss:// URL is built from it
        if not read.problems and not any(e.severity == "error" for e in errors):  # else they would echo its errors
            problems += _FlowChecks(read.flow, flows, key_paths(read.text, read.file)).warnings()
            problems += language_warnings(read.flow, flows) + recording_warnings(read.flow, flows)
            problems += pay_errors(read.flow, flows)  # a payment under a recording: refused (PCI DSS)
            problems += transcription_warnings(read.flow) if pci_mode else []
    names = {name for read in checked for name in (read.flow.id, *read.flow.catalogs)}
    every = len(checked) == len(flows)  # a catalog no flow reads is reported when every flow is checked
    problems += [p for p in catalog_warnings(directory, flows)
                 if every or Path(p.file).name.partition(".")[0] in names]  # fmt: skip
    return problems


def _reach(starts, step) -> dict[str, None]:
    """Every name reached from `starts` by `step(name)`, in the order found."""
    seen = dict.fromkeys(starts)
    todo = list(seen)
    while todo:
        for name in step(todo.pop()):
            if name not in seen:
                seen[name] = None
                todo.append(name)
    return seen


def _announced(text: str) -> set[str]:
    """The keys a prompt tells the caller to press: "press 1", "dial 0", "press star", "1, 2 or 3"."""
    keys = set()
    for sentence in re.split(r"[.!?;:]", _MARKUP.sub(" x ", text).lower()):
        pressed = False
        for clause in re.split(r",|\bor\b|\band\b", sentence):
            found = [_KEY_WORDS.get(m.group(1), m.group(1)) for m in _PRESS.finditer(clause)]
            if pressed and not found and (more := _MORE.match(clause)):
                found = [_KEY_WORDS.get(more.group(1), more.group(1))]
            pressed = pressed or bool(found)
            keys.update(found)
    return keys


def _seconds(prompts) -> float:
    """How long prompts take: speech at 150 words a minute, plus pauses; a Play's length is unknown."""
    words = sum(len(_MARKUP.sub(" x ", p.text.source).split()) * (p.loop or 1) for p in prompts if isinstance(p, f.Say))
    return words / WORDS_PER_SECOND + sum(p.length for p in prompts if isinstance(p, f.Pause))


def _set_names(flow: f.Flow) -> set[str]:
    names = {var for s in flow.states.values() for var, _, _ in s.set}
    return names | {
        s.action.save_as for s in flow.states.values() if isinstance(s.action, f.Gather | Agent | Pay | SubflowCall)
    } - {None}


class _FlowChecks:
    """The checks of one flow that reads without errors; `flows` are those of its directory."""

    def __init__(self, flow: f.Flow, flows: dict[str, f.Flow], paths: dict[tuple[int, int], str]) -> None:
        self.flow, self.states, self.out = flow, flow.states, []
        self.paths = paths
        self.where = {path: Pos(flow.file, *at) for at, path in self.paths.items()}
        actions = [(other, s.action) for other in flows.values() for s in other.states.values()]
        inbound = [(o, a) for o, a in actions if isinstance(a, f.Redirect) and a.flow == flow.id and o.id != flow.id]
        roots = [flow.start, flow.error_state, *(a.state for _, a in inbound)]
        self.roots = [n for n in dict.fromkeys(roots) if n in self.states]
        # Variables live as long as the call: flows that hand calls over may have set them.
        self.set_names = _set_names(flow).union(*(_set_names(o) for o, _ in inbound))
        self.succ = {name: self._edges(state) for name, state in self.states.items()}

    def add(self, pos: Pos | None, message: str, path: str | None = None, severity: str = "warning") -> None:
        pos = pos or self.flow.pos
        path = self.paths.get((pos.line, pos.column), "") if path is None else path
        self.out.append(FlowError(pos.file, pos.line, pos.column, path, message, severity))

    def _edges(self, state: f.State) -> list[str | None]:
        """The states a state may lead to; None where it may end the call or leave the flow."""
        names = [r.target for r in state.routes if r.target not in f.SPECIAL_TARGETS]
        names += [c.target for c in state.when] + [v.target for v in state.split] + [state.next] * bool(state.next)
        names += [r.target for r in state.answered_by]
        action = state.action
        if isinstance(action, f.Hangup | f.Reject | Return):  # a subflow's return leaves it for its caller
            names.append(None)
        elif isinstance(action, f.Gather):  # None: the built-in goodbye
            names += [h.on_max.name if h.on_max and h.on_max.name in self.states else None
                      for h in (state.no_input, state.no_match)]  # fmt: skip
        elif isinstance(action, f.Run):  # None: the built-in apology
            names.append(state.on_error.name if state.on_error else self.flow.error_state)
        elif isinstance(action, f.Redirect):
            inside = action.url is None and action.flow in (None, self.flow.id)
            names.append(action.state or self.flow.start if inside else None)
        return [n for n in dict.fromkeys(names) if n is None or n in self.states]

    def leads_to(self, name: str) -> list[str]:
        """The states of this flow that `name` may lead to."""
        return [n for n in self.succ[name] if n is not None]

    def silent(self, name: str) -> list[str]:
        """The states a call goes on to from `name` without waiting for anyone."""
        action = self.states[name].action
        return self.leads_to(name) if action is None or isinstance(action, f.Run | f.Redirect) else []

    def warnings(self) -> list[FlowError]:
        """The graph checks; every result a warning."""
        reached = _reach(self.roots, self.leads_to)
        # An agent's tools that are HTTP steps of the flow run during the conversation: reached from the agent.
        agents = [self.states[n].action for n in reached if isinstance(self.states[n].action, Agent)]
        tools = [t.name for agent in agents for t in agent.tools]
        reached |= _reach([t for t in tools if t in self.states], self.leads_to)
        preds: dict[str, list[str]] = {n: [] for n in self.states}
        for name in self.states:
            for succ in self.leads_to(name):
                preds[succ].append(name)
        can_end = _reach([n for n, succ in self.succ.items() if None in succ], preds.__getitem__)
        runs = {n for n, s in self.states.items() if isinstance(s.action, f.Run)}
        hook_free = _reach(self.roots, lambda n: [] if n in runs else self.leads_to(n))
        caller = CallerInput(self.flow, preds.__getitem__)
        for name, state in self.states.items():
            if state.todo is not None:
                self.add(state.todo_pos, f"todo: {state.todo}", path_join(path_join("states", name), "todo"))
            if name not in reached:
                self.add(state.pos, _UNREACHABLE, path_join("states", name))
            elif name not in can_end and (name in self.roots or any(p in can_end for p in preds[name])):
                self.add(state.pos, _NO_END, path_join("states", name))
            if isinstance(state.action, f.Gather):
                for tag, view in self.flow.localized.items() or ((None, self.flow),):  # each language's prompts
                    self.menu_keys(view.states[name], None if tag == self.flow.defaults.language else tag)
                self.digits(state)
                self.retries(state)
            for target in state.action.targets if isinstance(state.action, f.Dial) else ():
                pattern, what = _TARGETS.get(target.kind, (".*", ""))
                if target.value.template is None and not re.fullmatch(pattern, target.value.source):
                    self.add(target.pos, f"'{target.value.source}' is not {what}")
            for url in (p.url for p in state_prompts(state) if isinstance(p, f.Play)):
                if url.template is None and not _HTTP.match(url.source):
                    self.add(url.pos, f"Play needs an http(s) URL Twilio can fetch, got '{url.source}'")
            for text, what in built_from_input(state):
                if sources := caller.unlimited(state, text):
                    chooses = _CALLER_CHOOSES.format("the number called" if what.startswith("dial") else "the URL")
                    self.add(text.pos, f"{what} built from caller input ({', '.join(sources)}); {chooses}", text.path)
        self.long_prompts()
        self.variables(hook_free, bool(runs))
        return self.out + voice_warnings(self.flow, self.where)

    def menu_keys(self, state: f.State, language: str | None = None) -> None:
        gather: f.Gather = state.action
        if gather.save_as is not None or (gather.input and "dtmf" not in gather.input):
            return  # collected input is data; a spoken menu has no keys
        spoken = [*state.prompts, *(state.reprompt or ())]
        texts = [p.text for p in spoken if isinstance(p, f.Say)]
        heard: set[str] = set()
        for text in texts:
            keys = _announced(text.source)
            heard |= keys
            finish = "#" if gather.finish_on_key is None else gather.finish_on_key  # it only submits
            for key in sorted(keys - {r.outcome for r in state.routes} - {finish}) if state.next is None else ():
                message = f'the prompt announces key "{key}" but no route takes it'
                self.add(text.pos, f'{message} (add routes."{key}" or reword the prompt)', text.path or None)
        if not texts or any(isinstance(p, f.Play) for p in spoken):
            return  # audio may announce what the text does not
        for route in state.routes:
            key = route.outcome
            if not route.inherited and f.is_digit_key(key) and key not in heard:
                message = f'key "{key}" has a route but the prompt never announces it'
                message += f" in {language}" if language else ""
                self.add(route.pos, f'{message} (say "press {key}" or remove the route)', self._route_path(state, key))

    def digits(self, state: f.State) -> None:
        keys = [r.outcome for r in state.routes if f.is_digit_key(r.outcome)]
        limit, source = expected_digits(state)  # numDigits as the rendered Gather has it
        keyed = state.action.save_as is None and (not state.action.input or "dtmf" in state.action.input)
        if limit is None and state.next and state.next_pos and keyed and one_key_menu(state):
            self.add(state.next_pos, _CATCH_ALL, path_join(path_join("states", state.name), "next"))
        why = f"{source} is"
        for route in state.routes:
            key = route.outcome
            if route.inherited or not f.is_digit_key(key) or len(key) == 1:
                continue
            if limit is not None and len(key) > limit:
                message = f'route "{key}" needs {len(key)} keys but {why} {limit}: callers can never enter it'
                self.add(route.pos, message, self._route_path(state, key))
            elif limit is None and any(len(k) == 1 for k in keys):
                message = f'route "{key}"{_MIXED} set gather.num_digits or use one-key routes'
                self.add(route.pos, message, self._route_path(state, key))

    def retries(self, state: f.State) -> None:
        for target in dict.fromkeys(h.on_max for h in (state.no_input, state.no_match) if h.on_max):
            if target.name in f.BUILT_IN:
                continue  # `on_max: hangup` ends the call
            paths = {target.name: [target.name]}
            for name in _reach([target.name], self.silent):  # any path back proves the loop
                for succ in self.silent(name):
                    paths.setdefault(succ, [*paths[name], succ])
            if state.name in paths:
                shown = " -> ".join([state.name, *paths[state.name]])
                message = f"menu '{state.name}' never lets a silent caller go: on_max leads back to it ({shown})"
                self.add(target.pos, message + "; send on_max to a state that ends the call", target.path)

    def long_prompts(self) -> None:
        memo: dict[str, tuple[float, str] | None] = {}

        def wait(name: str) -> tuple[float, str] | None:
            # Seconds of prompts from here until the caller can act, and the state where they can.
            if name not in memo:
                memo[name] = None  # loops of silent states are load errors; this only guards
                action, own = self.states[name].action, _seconds(self.states[name].prompts)
                if isinstance(action, f.Gather):
                    memo[name] = (0.0, name)  # a key interrupts the gather's own prompts
                elif isinstance(action, f.WAITING_ACTIONS):
                    memo[name] = (own, name)
                elif after := [w for n in self.silent(name) if (w := wait(n))]:
                    seconds, until = max(after)
                    memo[name] = (own + seconds, until)
            return memo[name]

        slow = {n: w for n in self.states if (w := wait(n)) and w[0] > MAX_WAIT}
        inside = {succ for name in slow for succ in self.silent(name)}
        for name, (seconds, until) in slow.items():
            if name not in inside:
                message = f"callers hear about {round(seconds)} s of prompts before they can act (from here to"
                self.add(self.states[name].pos, f"{message} '{until}'{_LONG}", path_join("states", name))

    def variables(self, hook_free, hooks: bool) -> None:
        known = set(f.CONTEXT_NAMES) | self.set_names | {i.name for i in self.flow.inputs}
        known.add("secrets")  # an HTTP step's `{{ secrets.NAME }}`, checked against IVR_HTTP_SECRETS elsewhere
        known.add("language")  # the call's language, for a flow that offers several
        why = "(unless a hook sets it)" if hooks else "and is not part of the call's context"
        if any(s.answered_by for s in self.states.values()):  # an outbound flow: calls bring --var values
            why = "(unless an outbound call brings it with --var or a hook sets it)"
        done = set()
        for state in self.states.values():
            if state.name not in hook_free:
                continue  # reached only after a hook ran, which may have set anything
            for tree, pos, path in state_templates(state):
                for name in sorted(unknown_variables(tree, known)):
                    if (pos, name) not in done:
                        done.add((pos, name))
                        message = f"variable '{name}' is never set by set: or gather.save_as {why}"
                        self.add(pos, message + did_you_mean(name, known), path)

    @staticmethod
    def _route_path(state: f.State, key: str) -> str:
        return path_join(path_join(path_join("states", state.name), "routes"), key)
