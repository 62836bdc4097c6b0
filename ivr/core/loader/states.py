"""Reading a flow's nodes into the model: the flow, its defaults, states, prompts, routes and conditions."""

from __future__ import annotations

from dataclasses import replace

import yaml

from ivr.core import flow as f
from ivr.core.flow import Pos
from ivr.core.hints import path_join
from ivr.core.http_step import Http
from ivr.core.languages import BUILT_IN_TEXTS, Msg
from ivr.core.loader.call_recording import CallRecordingReader
from ivr.core.loader.catalogs import LanguagesReader
from ivr.core.loader.extras import StateExtrasReader
from ivr.core.loader.filler import FillerReader
from ivr.core.loader.schedules import read_schedules
from ivr.core.loader.subflows import SubflowReader
from ivr.core.pay import Pay
from ivr.core.templates import compile_condition
from ivr.errors import TemplateProblem

__all__ = ["FlowReader"]

FLOW_KEYS = ("title", "description", "defaults", "catalogs", "start", "error_state", "schedules", "inputs", "returns",
             "states")  # fmt: skip
DEFAULTS_KEYS = ("voice", "language", "languages", "timezone", "no_input", "no_match", "on_max", "routes", "on_message")
PROMPT_KEYS = ("say", "play", "pause", "msg", "prompts")
DEFAULTS_KEYS += ("speech", "action_on_empty_result")
ACTION_KEYS = (
    "gather",
    "record",
    "dial",
    "enqueue",
    "redirect",
    "hangup",
    "reject",
    "run",
    "http",
    "pay",
    "agent",
    "subflow",
    "return",
)
STATE_KEYS = (
    ("description", "todo", "sensitive", "set", "report", "language")
    + PROMPT_KEYS
    + ACTION_KEYS
    + ("routes", "next", "when", "reprompt", "no_input", "no_match", "on_max", "on_error", "on_message")
    + ("answered_by", "sms", "split", "filler", "call_recording", "announces_recording")
)
HANDLER_KEYS = PROMPT_KEYS + ("max", "on_max")
ROUTE_KEYS = ("to", "synonyms")
WHEN_KEYS = ("if", "next")
DEFAULT_MAX = 3
DEFAULT_NO_INPUT = BUILT_IN_TEXTS["no_input"]
DEFAULT_NO_MATCH = BUILT_IN_TEXTS["no_match"]


class FlowReader(LanguagesReader, FillerReader, SubflowReader, StateExtrasReader, CallRecordingReader):
    """Turns the nodes of one flow file into the flow model."""

    # -- the file ----------------------------------------------------------------------------

    def flow(self, root: yaml.Node, flow_id: str, digest: str) -> f.Flow | None:
        """The flow from its root node; None when it is unusable (the problems are in `errors`)."""
        items = self.mapping(root, "")
        if items is None:
            return None
        self.known_keys(items, FLOW_KEYS, "")
        title = self._opt(items, "title", "", self.string)
        self._opt(items, "description", "", self.string)
        defaults = self.defaults(items["defaults"][1] if "defaults" in items else None)
        start = start_pos = None
        if "start" not in items:
            self.error(Pos(self.file, 1, 1), "start", "missing key: name the state a call starts in")
        else:
            start = self.name(items["start"][1], "start", "state")
            start_pos = self.pos(items["start"][1])
        error_state = self._opt(items, "error_state", "", lambda n, p: self.name(n, p, "state"))
        schedules = {}
        if "schedules" in items:
            zone = defaults.timezone if defaults else None
            schedules = read_schedules(self, items["schedules"][1], "schedules", default_timezone=zone)
        error_pos = self.pos(items["error_state"][1]) if "error_state" in items else None
        states: dict[str, f.State] = {}
        if "states" not in items:
            self.error(Pos(self.file, 1, 1), "states", "missing key: a flow needs states")
        else:
            state_items = self.mapping(items["states"][1], "states") or {}
            if not state_items and isinstance(items["states"][1], yaml.MappingNode):
                self.error(items["states"][1], "states", "a flow needs at least one state")
            for name, (key_node, value_node) in state_items.items():
                path = path_join("states", name)
                if not f.NAME_RE.match(name):
                    self.error(key_node, path, "state names may use only letters, digits, '_' and '-'")
                    continue
                if name in STATE_KEYS and not isinstance(value_node, yaml.MappingNode):
                    self.error(key_node, path, self._dedented(name, key_node, state_items))
                    continue
                if name in (*f.SPECIAL_TARGETS, f.HANGUP):
                    self.error(key_node, path, f"'{name}' is a target the engine understands itself; rename the state")
                    continue
                state = self.state(name, value_node, path, defaults)
                if state is not None:
                    states[name] = state
        if defaults is None or start is None:
            return None
        return f.Flow(
            id=flow_id,
            file=self.file,
            title=title,
            defaults=defaults,
            start=start,
            error_state=error_state,
            states=states,
            content_hash=digest,
            pos=self.pos(root),
            start_pos=start_pos,
            error_state_pos=error_pos,
            schedules=schedules,
            inputs=self.flow_inputs(items),
            returns=self.flow_returns(items),
            catalogs=self._opt(items, "catalogs", "", self._catalog_names) or (),
        )

    def _catalog_names(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        """`catalogs:` the shared catalogs a flow looks messages up in, after its own."""
        if not self.offered:
            why = "catalogs hold the prompts of the languages a flow offers"
            self.error(node, path, f"{why}: list them in defaults.languages")
        names = [self.name(n, path, "catalog") for n in self.sequence(node, path) or ()]
        return tuple(n for n in names if n)

    def defaults(self, node: yaml.Node | None) -> f.Defaults | None:
        """The `defaults:` mapping: voice, language, time zone, retry handlers, ways out, delivery."""
        if node is None:
            return f.Defaults(None, None, None, *self._builtin_handlers(), None)
        items = self.mapping(node, "defaults")
        if items is None:
            return None
        self.known_keys(items, DEFAULTS_KEYS, "defaults")
        languages = self.languages(items, "defaults")
        language = self.default_language(items, languages, self._opt(items, "language", "defaults", self.language_tag))
        self.offered = tuple(sorted((lang.tag for lang in languages), key=lambda tag: tag != language))
        builtin_input, builtin_match = self._builtin_handlers()
        on_max = self.target(items, "on_max", "defaults")
        voice = self._opt(items, "voice", "defaults", self.string)
        voices = (None, None) if languages else (voice, language)  # in several languages: each view says them
        return f.Defaults(
            voice=voice,
            language=language,
            timezone=self._opt(items, "timezone", "defaults", self.timezone),
            no_input=self._handler(items, "no_input", "defaults", builtin_input, on_max, voices),
            no_match=self._handler(items, "no_match", "defaults", builtin_match, on_max, voices),
            on_max=on_max,
            routes=self.routes(items, "defaults", None),
            on_message=self._opt(items, "on_message", "defaults", self.delivery),
            on_message_pos=self.pos(items["on_message"][1]) if "on_message" in items else None,
            languages=languages,
            speech=self._opt(items, "speech", "defaults", self.flow_speech),
            action_on_empty_result=self._opt(items, "action_on_empty_result", "defaults", self.boolean),
        )

    def _builtin_handlers(self) -> tuple[f.Handler, f.Handler]:
        """The retry messages a flow gets when it writes none: built in, or its catalogs' in each language."""
        if self.offered:  # line 0: the engine's own words (ivr.core.languages), in each language's catalog
            said = [(Msg(key, Pos(self.file, 0, 0), f"defaults.{key}"),) for key in ("no_input", "no_match")]
        else:
            said = [(self._builtin_say(DEFAULT_NO_INPUT),), (self._builtin_say(DEFAULT_NO_MATCH),)]
        return f.Handler(said[0], DEFAULT_MAX, None, None), f.Handler(said[1], DEFAULT_MAX, None, None)

    # -- states ------------------------------------------------------------------------------

    def _dedented(self, key: str, key_node: yaml.Node, state_items: dict) -> str:
        """What to say of a state's key written at the indentation of state names."""
        spaces = key_node.start_mark.column
        message = f"'{key}' is a key of a state, not a state: line {key_node.start_mark.line + 1} is indented {spaces}"
        message += " spaces, as state names are"
        above = [(name, v) for name, (k, v) in state_items.items() if k.start_mark.line < key_node.start_mark.line]
        if above and isinstance(above[-1][1], yaml.MappingNode) and above[-1][1].value:
            name, value = above[-1]
            return f"{message}; indent it as the keys of '{name}' above it ({value.start_mark.column} spaces)"
        return message

    def state(self, name: str, node: yaml.Node, path: str, defaults: f.Defaults | None) -> f.State | None:
        """One state: its prompts, its action, where each outcome goes, its retries and conditions."""
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, STATE_KEYS, path)
        self._opt(items, "description", path, self.string)
        todo = self._opt(items, "todo", path, self.string)  # work left to do: `check` warns
        voice = defaults.voice if defaults and not defaults.languages else None  # else each language's view says
        language = defaults.language if defaults and not defaults.languages else None
        prompts = self.prompts(items, path, voice, language)
        actions = [k for k in ACTION_KEYS if k in items]
        for extra in actions[1:]:
            self.error(
                items[extra][0],
                path_join(path, extra),
                f"a state does one thing; it already has '{actions[0]}' (split it into two states)",
            )
        action = self.action(actions[0], items[actions[0]][1], path_join(path, actions[0])) if actions else None
        recording = self.call_recording(items, path)
        action = self.recording_action(recording, action, items, path)  # pause/resume/stop: a REST request
        routes = self.routes(items, path, action)
        if (
            isinstance(action, f.Gather)
            and action.barge_in is False
            and not action.input
            and not any(r.synonyms or not f.is_digit_key(r.outcome) for r in routes)
        ):  # its input is keys only by default (no spoken route): speech, which barge_in concerns, is off
            self.keys_only_barge_in(action.pos, path_join(path_join(path, "gather"), "barge_in"))
        if isinstance(action, f.Gather) and defaults is not None:
            # The flow's ways out apply to every menu, unless the menu routes that key itself.
            own = {r.outcome for r in routes}
            routes += tuple(replace(r, inherited=True) for r in defaults.routes if r.outcome not in own)
        next_ = self._opt(items, "next", path, lambda n, p: self.name(n, p, "state"))
        next_pos = self.pos(items["next"][1]) if "next" in items else None
        when = self.when(items["when"][1], path_join(path, "when")) if "when" in items else ()
        split = self.split(items, path, [k for k in (*actions, "routes", "next", "when") if k in items])
        on_max = self.target(items, "on_max", path)
        base_input = defaults.no_input if defaults else f.Handler((), DEFAULT_MAX, None, None)
        base_match = defaults.no_match if defaults else f.Handler((), DEFAULT_MAX, None, None)
        reprompt = None
        if "reprompt" in items:
            reprompt = self.prompt_value(items["reprompt"][1], path_join(path, "reprompt"), voice, language)
        if action is not None and not isinstance(action, f.Gather):
            why = "Twilio retries each step of a payment itself: use pay.max_attempts" if isinstance(action, Pay) else (
                "retries apply only to a state with gather")  # fmt: skip
            for key in ("reprompt", "no_input", "no_match", "on_max"):
                if key in items:
                    self.error(items[key][0], path_join(path, key), why)
        sensitive = self._opt(items, "sensitive", path, self.boolean)
        if sensitive is False and isinstance(action, Pay):  # never stored, never recorded in clear
            self.error(items["sensitive"][1], path_join(path, "sensitive"), "a payment state is always sensitive")
        sensitive = bool(sensitive) or isinstance(action, Pay)
        report = self._opt(items, "report", path, self.report_mark)
        on_error = self.target(items, "on_error", path)
        if isinstance(action, Http):  # its `routes: {error: X}` is its on_error
            routes, on_error = self.http_routes(routes, on_error, path)
        if on_error is not None and not isinstance(action, f.Run):
            message = "on_error is where a failed hook goes: use it with run or http"
            self.error(items["on_error"][0], on_error.path, message)
        on_message = self._opt(items, "on_message", path, self.delivery)
        if on_message is not None and not isinstance(action, f.Record):
            self.error(
                items["on_message"][0],
                path_join(path, "on_message"),
                "on_message delivers a recording: use it with record",
            )
        return f.State(
            name=name,
            prompts=prompts,
            action=action,
            routes=routes,
            next=next_,
            when=when,
            no_input=self._handler(items, "no_input", path, base_input, on_max, (voice, language)),
            no_match=self._handler(items, "no_match", path, base_match, on_max, (voice, language)),
            reprompt=reprompt,
            set=self.set_vars(items, path),
            sensitive=sensitive,
            pos=self.pos(node),
            next_pos=next_pos,
            on_error=on_error,
            on_message=on_message,
            on_message_pos=self.pos(items["on_message"][1]) if "on_message" in items else None,
            answered_by=self.answered_by(items, path),
            sms=self._opt(items, "sms", path, self.sms),
            split=split or (),
            split_pos=self.pos(items["split"][0]) if split is not None else None,
            report=report,
            filler=self.filler(items, path, action, voice, language),
            language=self.state_language(items, path),
            call_recording=recording,
            announces_recording=self.announces(items, path),
            todo=todo,
            todo_pos=self.pos(items["todo"][1]) if todo is not None else None,
        )

    def set_vars(self, items: dict, path: str) -> tuple:
        """A state's `set:` mapping: (variable, value or text template, position) triples."""
        return self.values(items, "set", path)  # read as a subflow's inputs and return values are

    # -- actions -----------------------------------------------------------------------------

    # -- routing -----------------------------------------------------------------------------

    def routes(self, items: dict, path: str, action) -> tuple:
        """A state's `routes:`, keys read as the author wrote them, plus the flow's ways out."""
        if "routes" not in items:
            return ()
        routes_path = path_join(path, "routes")
        out = []
        for key, (key_node, value_node) in (self.mapping(items["routes"][1], routes_path) or {}).items():
            key_path = path_join(routes_path, key)
            synonyms: tuple[str, ...] = ()
            words: tuple = ()
            if isinstance(value_node, yaml.MappingNode):
                entry = self.mapping(value_node, key_path) or {}
                self.known_keys(entry, ROUTE_KEYS, key_path)
                if "to" not in entry:
                    self.error(value_node, key_path, "missing key: to (the state this route leads to)")
                    continue
                target_node = entry["to"][1]
                if "synonyms" in entry and isinstance(entry["synonyms"][1], yaml.MappingNode):
                    synonyms, words = self.synonyms_by_language(entry["synonyms"][1], path_join(key_path, "synonyms"))
                elif "synonyms" in entry:
                    syn_path = path_join(key_path, "synonyms")
                    said = [self.string(n, syn_path) for n in self.sequence(entry["synonyms"][1], syn_path) or ()]
                    synonyms = tuple(w for w in said if w)
            else:
                target_node = value_node
            target = self.name(target_node, key_path, "state")
            if target is not None:
                out.append(f.Route(key, target, synonyms, self.pos(key_node), self.pos(target_node), words=words))
        return tuple(out)

    def when(self, node: yaml.Node, path: str) -> tuple:
        """A state's `when:` list: conditions compiled at load, each with the state it leads to."""
        out = []
        for item, item_path, entry in self.mappings(node, path):
            self.known_keys(entry, WHEN_KEYS, item_path)
            if "if" not in entry or "next" not in entry:
                self.error(item, item_path, "each condition needs if: (an expression) and next: (a state)")
                continue
            source = self.string(entry["if"][1], path_join(item_path, "if"))
            target = self.name(entry["next"][1], path_join(item_path, "next"), "state")
            if source is None or target is None:
                continue
            try:
                test = compile_condition(source)
            except TemplateProblem as exc:
                self.error(entry["if"][1], path_join(item_path, "if"), str(exc))
                continue
            out.append(f.Condition(source, test, target, self.pos(entry["if"][1]), self.pos(entry["next"][1])))
        return tuple(out)

    def split(self, items: dict, path: str, others: list[str]) -> tuple | None:
        """A state's `split:` mapping, variant state -> share in percent: at least two, adding up to 100,
        and nothing else that decides where the call goes. None when the state has no usable split."""
        if "split" not in items:
            return None
        split_path = path_join(path, "split")
        key_node, node = items["split"]
        if others:
            why = "a split sends each caller on to one of its variants and decides nothing else"
            self.error(key_node, split_path, f"{why}: remove {', '.join(others)}")
            return None
        entries = self.mapping(node, split_path)
        if entries is None:
            return ()
        out = []
        for name, (name_node, share_node) in entries.items():
            variant_path = path_join(split_path, name)
            target = self.name(name_node, variant_path, "state")
            share = self.number(share_node, variant_path, minimum=1, maximum=99)
            if target is not None and share is not None:
                out.append(f.Variant(target, share, self.pos(name_node)))
        complete = len(out) == len(entries)  # else what could not be read is reported already
        if complete and len(out) < 2:
            self.error(
                node, split_path, "a split needs at least two variants, each a state and its share: {a: 50, b: 50}"
            )
        elif complete and sum(v.share for v in out) != 100:
            shares = " + ".join(str(v.share) for v in out)
            self.error(node, split_path, f"the shares must add up to 100 (percent of callers), not {shares}")
        return tuple(out)

    def _handler(self, items, key, path, base: f.Handler, on_max: f.Target | None, voices) -> f.Handler:
        """A retry handler, inheriting what it leaves out from `base` (the flow's defaults)."""
        fallback = on_max or base.on_max
        if key not in items:
            return f.Handler(base.prompts, base.max, fallback, base.pos)
        node = items[key][1]
        hpath = path_join(path, key)
        voice, language = voices
        if not isinstance(node, yaml.MappingNode):
            return f.Handler(self.prompt_value(node, hpath, voice, language), base.max, fallback, self.pos(node))
        entry = self.mapping(node, hpath) or {}
        self.known_keys(entry, HANDLER_KEYS, hpath)
        has_prompts = any(k in entry for k in PROMPT_KEYS)
        prompts = self.prompts(entry, hpath, voice, language) if has_prompts else base.prompts
        max_ = self._opt(entry, "max", hpath, lambda n, p: self.number(n, p, minimum=1, maximum=10))
        own = self.target(entry, "on_max", hpath)
        return f.Handler(prompts, max_ or base.max, own or fallback, self.pos(node))

    def target(self, items: dict, key: str, path: str) -> f.Target | None:
        """An optional state name, kept with where it was written."""
        if key not in items:
            return None
        key_path = path_join(path, key)
        name = self.name(items[key][1], key_path, "state")
        if key == "on_max" and name == f.HANGUP:  # "hang up on silence" needs no state of its own
            name = f.GOODBYE
        return f.Target(name, self.pos(items[key][1]), key_path) if name else None
