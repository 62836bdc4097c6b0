"""`python -m ivr check`: every load-time error, and warnings about what the loader lets through.

Warnings, each at the key it is about: states no call reaches; states after which a call can
never end (no path to a hangup, a reject, a redirect out of the flow or a menu's goodbye); menus
whose prompt and keys disagree; key routes num_digits cuts off; retries that never end; dial
targets and Play URLs Twilio refuses; prompts over 30 s before the caller can act; template
variables nothing sets. Unknown hooks and schedules are errors, as at app start.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import click
import yaml
from jinja2 import meta, nodes

from ivr import flow as f
from ivr.errors import FlowError, FlowLoadError, IvrError
from ivr.hooks import load_hooks, registry
from ivr.loader import display_path, flow_files, read_flow
from ivr.schedules import load_schedules_file
from ivr.source import Pos, compose, did_you_mean, path_join
from ivr.templates import _env
from ivr.validate import validate_flow

__all__ = ["CONTEXT_NAMES", "MAX_WAIT", "Report", "check_command", "run_checks"]

CONTEXT_NAMES = ("call", "input", "recording", "dial", "queue", "now", "vars", "flow", "state", "open")
MAX_WAIT = 30  # seconds a caller may listen before being able to press a key or answer
WORDS_PER_SECOND = 150 / 60
_E164 = re.compile(r"\+[1-9]\d{1,14}\Z")
_CLIENT = re.compile(r"[A-Za-z0-9_]{1,121}\Z")  # Twilio: alphanumerics and underscore
_SIP = re.compile(r"sips?:[^@\s]+@[^@\s]+\Z", re.IGNORECASE)
_HTTP = re.compile(r"https?://\S+\Z", re.IGNORECASE)
_MARKUP = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_KEY_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6"}
_KEY_WORDS |= {"seven": "7", "eight": "8", "nine": "9", "star": "*", "pound": "#", "hash": "#"}
_KEY = r"(?:the\s+)?(\d+|[*#]|" + "|".join(_KEY_WORDS) + r")(?:\s+(?:key|sign|button))?(?!\w)"
_PRESS = re.compile(r"\b(?:press|dial)\s+" + _KEY)
_MORE = re.compile(r"\s*" + _KEY + r"\s*(?:(?:for|to)\b.*)?\Z", re.DOTALL)  # "..., 2 for support, or 3"


@dataclass
class Report:
    """What `check` found: every problem in file:line:col order, and how many flows it read."""

    problems: list[FlowError]
    flows: int

    @property
    def errors(self) -> int:
        """How many problems are errors."""
        return sum(p.severity == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        """How many problems are warnings."""
        return len(self.problems) - self.errors

    def failed(self, strict: bool = False) -> bool:
        """Whether the check fails: any error, or with strict any warning too."""
        return bool(self.errors or (strict and self.warnings))

    def summary(self) -> str:
        """`2 errors, 3 warnings in 4 flows`, or `no problems in 3 flows`."""
        flows = _plural(self.flows, "flow")
        if not self.problems:
            return f"no problems in {flows}"
        return f"{_plural(self.errors, 'error')}, {_plural(self.warnings, 'warning')} in {flows}"

    def as_json(self) -> str:
        """The problems as a JSON list of {file, line, column, severity, path, message}."""
        keys = ("file", "line", "column", "severity", "path", "message")
        return json.dumps([{k: getattr(p, k) for k in keys} for p in self.problems], indent=2)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def run_checks(targets=(), *, flows_dir="flows", hooks: str | None = None, schedules: str | None = None) -> Report:
    """Check flows (ids in flows_dir or paths to .yaml files; none: every flow in flows_dir)."""
    problems: list[FlowError] = []
    files = _resolve(targets, Path(flows_dir), problems)
    shared: dict = {}
    if schedules:
        try:
            shared = load_schedules_file(schedules)
        except FlowLoadError as exc:
            problems += exc.errors
    by_dir: dict[Path, list[Path]] = {}
    for path in files:
        by_dir.setdefault(path.parent, []).append(path)
    for directory, chosen in by_dir.items():
        load_hooks(hooks, directory)  # the module the app would import for these flows
        problems += _check_directory(directory, chosen, shared, registry.names())
    unique = {p.format(): p for p in problems}
    return Report(sorted(unique.values(), key=FlowError.sort_key), len(files))


def _resolve(targets, flows_dir: Path, problems: list) -> list[Path]:
    """The flow files named by ids and paths; what cannot be found goes to `problems`."""
    if not targets:
        if flows_dir.is_dir():
            return [p.resolve() for p in flow_files(flows_dir)]
        problems.append(FlowError(str(flows_dir), 1, 1, "", "flows directory not found (set IVR_FLOWS_DIR)"))
        return []
    files = []
    for target in dict.fromkeys(targets):
        if target.endswith((".yaml", ".yml")) or os.sep in target or "/" in target:
            path, missing = Path(target), f"no flow file {target}"
        else:
            found = [flows_dir / f"{target}{ext}" for ext in (".yaml", ".yml")]
            path = next((p for p in found if p.is_file()), found[0])
            known = [p.stem for p in flow_files(flows_dir)] if flows_dir.is_dir() else []
            missing = f"no flow '{target}' in {display_path(flows_dir)}{did_you_mean(target, known)}"
        if path.suffix not in (".yaml", ".yml"):
            missing = f"{target} is not a flow file (*.yaml or *.yml)"
        elif path.is_file():
            files.append(path.resolve())
            continue
        problems.append(FlowError(display_path(path), 1, 1, "", missing))
    return list(dict.fromkeys(files))


def _check_directory(directory: Path, chosen: list[Path], shared: dict, hooks: set[str]) -> list[FlowError]:
    """Read every flow of a directory (redirects may name them); check the chosen ones."""
    problems: list[FlowError] = []
    flows: dict[str, f.Flow] = {}
    checked = []
    for path in flow_files(directory):
        mine = path.resolve() in chosen
        file = display_path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems += [FlowError(file, 1, 1, "", f"cannot read the flow file: {exc}")] if mine else []
            continue
        flow, errors = read_flow(text, file, path.stem)
        problems += errors if mine else []
        if flow is None:
            continue
        if flow.id in flows:
            if mine:
                problems.append(FlowError(file, 1, 1, "", f"flow id '{flow.id}' is also used by {flows[flow.id].file}"))
            continue
        flows[flow.id] = flow
        if mine and not errors:
            checked.append((flow, text))
    for flow, text in checked:
        errors = validate_flow(flow, flows)
        checks = _FlowChecks(flow, flows, compose(text, flow.file))
        problems += errors + checks.names(shared, hooks)
        if not any(e.severity == "error" for e in errors):  # a broken graph would only echo its errors
            problems += checks.warnings()
    return problems


def _node_paths(root) -> dict[tuple[int, int], str]:
    """The key path of every value in a YAML document, by its line and column."""
    out: dict[tuple[int, int], str] = {}
    todo, seen = [(root, "")], set()
    while todo:
        node, path = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [(v, path_join(path, k.value)) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            children = [(v, path_join(path, i)) for i, v in enumerate(node.value)]
        else:
            continue
        for child, sub in children:
            out.setdefault((child.start_mark.line + 1, child.start_mark.column + 1), sub)
            todo.append((child, sub))
    return out


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


def _strip(text: str) -> str:
    return _MARKUP.sub(" x ", text)


def _announced(text: str) -> set[str]:
    """The keys a prompt tells the caller to press: "press 1", "dial 0", "press star", "1, 2 or 3"."""
    keys = set()
    for sentence in re.split(r"[.!?;:]", _strip(text).lower()):
        pressed = False
        for clause in re.split(r",|\bor\b|\band\b", sentence):
            found = [_KEY_WORDS.get(m.group(1), m.group(1)) for m in _PRESS.finditer(clause)]
            if found:
                pressed = True
                keys.update(found)
            elif pressed and (more := _MORE.match(clause)):
                keys.add(_KEY_WORDS.get(more.group(1), more.group(1)))
    return keys


def _seconds(prompts) -> float:
    """How long prompts take to play: speech at 150 words a minute plus pauses; Play is unknown (0)."""
    total = 0.0
    for prompt in prompts:
        if isinstance(prompt, f.Say):
            total += len(_strip(prompt.text.source).split()) / WORDS_PER_SECOND * (prompt.loop or 1)
        elif isinstance(prompt, f.Pause):
            total += prompt.length
    return total


def _prompts(state: f.State) -> list:
    out = [*state.prompts, *(state.reprompt or ()), *state.no_input.prompts, *state.no_match.prompts]
    if isinstance(state.action, f.Dial) and state.action.screen is not None:
        out += state.action.screen.prompts
    return out


def _texts(state: f.State) -> list[f.Text]:
    """Every text of a state that may carry a template."""
    out = [p.text if isinstance(p, f.Say) else p.url for p in _prompts(state) if not isinstance(p, f.Pause)]
    out += [value for _, value, _ in state.set if isinstance(value, f.Text)]
    action = state.action
    if isinstance(action, f.Dial):
        out += [t.value for t in action.targets] + [action.caller_id]
    elif isinstance(action, f.Enqueue):
        out += [action.name, action.wait_url]
    elif isinstance(action, f.Redirect):
        out.append(action.url)
    return [t for t in out if t is not None]


def _set_names(flow: f.Flow) -> set[str]:
    names = {var for s in flow.states.values() for var, _, _ in s.set}
    saved = {s.action.save_as for s in flow.states.values() if isinstance(s.action, f.Gather)}
    return names | (saved - {None})


class _FlowChecks:
    """The checks of one flow that loads without errors; `flows` are those of its directory."""

    def __init__(self, flow: f.Flow, flows: dict[str, f.Flow], root) -> None:
        self.flow, self.states, self.out = flow, flow.states, []
        self.paths = _node_paths(root)
        self.where = {path: Pos(flow.file, *at) for at, path in self.paths.items()}
        actions = [(other, s.action) for other in flows.values() for s in other.states.values()]
        inbound = [o for o, a in actions if isinstance(a, f.Redirect) and a.flow == flow.id and o.id != flow.id]
        entries = [a.state for o, a in actions if o in inbound and isinstance(a, f.Redirect) and a.flow == flow.id]
        roots = [flow.start, flow.error_state, *entries]
        self.roots = [n for n in dict.fromkeys(roots) if n in self.states]
        # Variables live as long as the call: flows that hand calls over may have set them.
        self.set_names = _set_names(flow).union(*map(_set_names, inbound))
        self.succ, self.ends = {}, set()
        for state in self.states.values():
            self.succ[state.name], ends = self._edges(state)
            self.ends |= {state.name} if ends else set()

    def add(self, pos: Pos | None, message: str, path: str | None = None, severity: str = "warning") -> None:
        pos = pos or self.flow.pos
        path = self.paths.get((pos.line, pos.column), "") if path is None else path
        self.out.append(FlowError(pos.file, pos.line, pos.column, path, message, severity))

    # -- the graph ---------------------------------------------------------------------------

    def _edges(self, state: f.State) -> tuple[list[str], bool]:
        """The states a state may lead to, and whether it may end the call or leave the flow."""
        names = [r.target for r in state.routes if r.target not in f.SPECIAL_TARGETS]
        names += [c.target for c in state.when] + ([state.next] if state.next else [])
        action, ends = state.action, isinstance(state.action, (f.Hangup, f.Reject))
        if isinstance(action, f.Gather):
            for handler in (state.no_input, state.no_match):
                names += [handler.on_max.name] if handler.on_max else []
                ends |= handler.on_max is None  # the built-in goodbye
        elif isinstance(action, f.Run):
            failed = state.on_error.name if state.on_error else self.flow.error_state
            names += [failed] if failed else []
            ends |= failed is None  # the built-in apology
        elif isinstance(action, f.Redirect):
            inside = action.url is None and action.flow in (None, self.flow.id)
            names += [action.state or self.flow.start] if inside else []
            ends |= not inside
        return [n for n in dict.fromkeys(names) if n in self.states], ends

    def silent(self, name: str) -> list[str]:
        """The states a call goes on to from `name` without waiting for anyone."""
        action = self.states[name].action
        return self.succ[name] if action is None or isinstance(action, (f.Run, f.Redirect)) else []

    def warnings(self) -> list[FlowError]:
        """The graph checks; every result a warning."""
        reached = _reach(self.roots, self.succ.__getitem__)
        preds: dict[str, list[str]] = {n: [] for n in self.states}
        for name, names in self.succ.items():
            for succ in names:
                preds[succ].append(name)
        can_end = _reach(self.ends, preds.__getitem__)
        runs = {n for n, s in self.states.items() if isinstance(s.action, f.Run)}
        hook_free = _reach(self.roots, lambda n: [] if n in runs else self.succ[n])
        for name, state in self.states.items():
            if name not in reached:
                self.add(state.pos, UNREACHABLE, path_join("states", name))
            elif name not in can_end and (name in self.roots or any(p in can_end for p in preds[name])):
                self.add(state.pos, NO_END, path_join("states", name))
            if isinstance(state.action, f.Gather):
                self.menu_keys(state)
                self.digits(state)
                self.retries(state)
            elif isinstance(state.action, f.Dial):
                self.dial(state.action)
            for prompt in _prompts(state):
                url = prompt.url if isinstance(prompt, f.Play) else None
                if url is not None and url.template is None and not _HTTP.match(url.source):
                    self.add(url.pos, f"Play needs an http(s) URL Twilio can fetch, got '{url.source}'")
        self.long_prompts()
        self.variables(hook_free, bool(runs))
        return self.out

    # -- menus -------------------------------------------------------------------------------

    def menu_keys(self, state: f.State) -> None:
        gather: f.Gather = state.action
        if gather.save_as is not None or (gather.input and "dtmf" not in gather.input):
            return  # collected input is data; a spoken menu has no keys
        spoken = [*state.prompts, *(state.reprompt or ())]
        texts = [p.text for p in spoken if isinstance(p, f.Say)]
        heard: set[str] = set()
        for text in texts:
            keys = _announced(text.source)
            heard |= keys
            for key in sorted(keys - {r.outcome for r in state.routes}) if state.next is None else ():
                self.add(text.pos, f'the prompt announces key "{key}" but no route takes it{_ADD_ROUTE.format(key)}')
        if not texts or any(isinstance(p, f.Play) for p in spoken):
            return  # audio may announce what the text does not
        for route in state.routes:
            if not route.inherited and f.is_digit_key(route.outcome) and route.outcome not in heard:
                message = f'key "{route.outcome}" has a route but the prompt never announces it'
                self.add(route.pos, message + f' (say "press {route.outcome}" or remove the route)', _route(state, route))

    def digits(self, state: f.State) -> None:
        gather: f.Gather = state.action
        keys = [r.outcome for r in state.routes if f.is_digit_key(r.outcome)]
        limit, why = gather.num_digits, "gather.num_digits is"
        # numDigits as Renderer._gather_attrs derives it
        if limit is None and gather.save_as is not None:
            if gather.length is not None and gather.length[0] == gather.length[1]:
                limit, why = gather.length[0], "gather.length is"
        elif limit is None and keys and all(len(k) == 1 for k in keys) and state.next is None:
            limit = 1
        for route in state.routes:
            key = route.outcome
            if route.inherited or not f.is_digit_key(key) or len(key) == 1:
                continue
            if limit is not None and len(key) > limit:
                message = f'route "{key}" needs {len(key)} keys but {why} {limit}: callers can never enter it'
                self.add(route.pos, message, _route(state, route))
            elif limit is None and any(len(k) == 1 for k in keys):
                self.add(route.pos, f'route "{key}"{MIXED_KEYS}', _route(state, route))

    def retries(self, state: f.State) -> None:
        for target in dict.fromkeys(h.on_max for h in (state.no_input, state.no_match) if h.on_max):
            parents: dict[str, str | None] = {target.name: None}
            todo = [target.name]
            while todo and state.name not in parents:
                for succ in self.silent(todo.pop(0)):
                    parents.setdefault(succ, todo.append(succ))  # type: ignore[func-returns-value]
            if state.name in parents:
                chain = [state.name]
                while chain[-1] != target.name or len(chain) == 1:
                    chain.append(parents[chain[-1]] or target.name)
                    if chain[-1] == target.name:
                        break
                shown = " -> ".join([state.name, *reversed(chain)])
                self.add(target.pos, f"menu '{state.name}' never lets a silent caller go: on_max leads back to it"
                         f" ({shown}); send on_max to a state that ends the call", target.path)  # fmt: skip
REST@click.command("check")
@click.argument("flows", nargs=-1)
@click.option("--strict", is_flag=True, help="Warnings count as errors (exit status 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check_command(flows: tuple[str, ...], strict: bool, fmt: str) -> None:
    """Find mistakes in flows before callers do: every load error, and warnings about the call graph.

    FLOWS are flow ids (in IVR_FLOWS_DIR, default flows/) or paths to .yaml files; none: every
    flow. Exit status 1 on errors (with --strict, on warnings too).
    """
    env = os.environ
    try:
        report = run_checks(
            flows,
            flows_dir=env.get("IVR_FLOWS_DIR") or "flows",
            hooks=env.get("IVR_HOOKS") or None,
            schedules=env.get("IVR_SCHEDULES") or None,
        )
    except IvrError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(report.as_json())
    else:
        for problem in report.problems:
            click.echo(problem.format())
        click.echo(report.summary())
    if report.failed(strict):
        raise click.exceptions.Exit(1)
