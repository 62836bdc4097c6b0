"""A flow in several languages: the languages it offers, prompts looked up in catalogs, and one view of
the flow per language.

A flow that lists `defaults.languages` writes what callers hear as `msg: ID` prompts, looked up in its
catalogs (`ivr.core.loader.catalogs` reads them). At load each language gets a view of the flow: the
same states, routes and machine, with every `msg:` replaced by that language's prompts, and the
language's voice, speech-recognition language, hints and route words. The engine renders a call
with the view of the call's language (`Flow.localized`), so a bilingual flow costs a webhook what a
flow in one language does: every view's documents are prepared at load like any flow's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ivr.core import flow as f
from ivr.core.hints import did_you_mean
from ivr.core.pay import Pay
from ivr.core.positions import Pos

__all__ = [
    "BUILT_IN_TEXTS",
    "CatalogEntry",
    "Language",
    "Msg",
    "entry_language",
    "localize",
    "offered",
    "tag_problem",
]

# What the engine says itself, by catalog id: a catalog gives them in its language. English is built in.
BUILT_IN_TEXTS = {
    "no_input": "Sorry, I didn't hear anything.",
    "no_match": "Sorry, that's not an option.",
    "goodbye": "Sorry, we could not get your answer. Please call again later. Goodbye.",
    "apology": "We're sorry, something went wrong. Please call again later. Goodbye.",
}
_BUILT_IN_MEANING = {
    "no_input": "what a caller hears after pressing nothing",
    "no_match": "what a caller hears after a wrong key",
    "goodbye": "the goodbye when a menu's retries run out",
    "apology": "the apology when something goes wrong",
}


@dataclass(frozen=True, slots=True)
class Msg:
    """`msg: ID`: the prompts a catalog holds under ID, in the call's language."""

    id: str
    pos: Pos
    path: str = ""
    barge_in: bool = True  # False: its prompts play whole, before the gather listens (ivr.core.speech)


@dataclass(frozen=True, slots=True)
class Language:
    """One language a flow offers (`defaults.languages`): its voice, speech hints, and the numbers that
    answer in it."""

    tag: str  # BCP 47, as Twilio takes it: en-US, es-MX
    voice: str | None
    hints: str | None
    numbers: tuple[str, ...]
    pos: Pos
    speech: object | None = None  # speech-recognition settings for this language, when the flow pins them


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One catalog message in one language: its prompts, and where it is written."""

    prompts: tuple
    pos: Pos
    file: str


def tag_problem(tag: str) -> str | None:
    """What is wrong with a language tag as Twilio takes them (BCP 47: en-US, es-MX, cmn-CN, es-419), or None."""
    parts = tag.split("-")
    if "_" in tag:
        return f"a language tag joins its parts with '-', not '_': {tag.replace('_', '-')}"
    if not (2 <= len(parts[0]) <= 3 and parts[0].isascii() and parts[0].isalpha()):
        return "a language tag starts with its language's 2 or 3 letters: en-US, es-MX, fr-CA"
    if not all(p.isascii() and p.isalnum() for p in parts[1:]) or "" in parts:
        return "a language tag is letters and digits joined by '-': en-US, es-MX, fr-CA"
    canonical = "-".join([parts[0].lower(), *(p.upper() if len(p) == 2 and p.isalpha() else p for p in parts[1:])])
    if tag != canonical:
        return f"write it {canonical}: the language in small letters, a region in capitals"
    return None


def offered(flow: f.Flow) -> tuple[str, ...]:
    """The languages a flow offers, its default first; () for a flow in one language."""
    return tuple(flow.localized)


def entry_language(flow: f.Flow, params: dict) -> str | None:
    """The language a call starts in by the number it reached: the called number for an inbound call, the
    number calling out for an outbound one. None: the flow's default."""
    number = params.get("From") if str(params.get("Direction", "")).startswith("outbound") else params.get("To")
    if not number:
        return None
    for language in flow.defaults.languages:
        if number in language.numbers:
            return language.tag
    return None


def _is_english(tag: str) -> bool:
    return tag.lower() == "en" or tag.lower().startswith("en-")


class _Localizer:
    """Builds one language's view of a flow, noting each message its catalogs lack."""

    def __init__(self, flow: f.Flow, language: Language, entries: dict[str, CatalogEntry], catalog_file: str) -> None:
        self.flow = flow
        self.language = language
        self.entries = entries
        self.catalog_file = catalog_file
        self.problems: list[tuple[Pos, str, str]] = []  # (where, key path, message)
        self.voices = {lang.tag: lang.voice for lang in flow.defaults.languages if lang.voice}
        self.used: set[str] = set()
        self.quiet = False  # the catalogs could not be read: what they lack is not reported again

    def prompts(self, prompts: tuple | None) -> tuple | None:
        if prompts is None:
            return None
        out: list = []
        for prompt in prompts:
            if isinstance(prompt, Msg):
                said = self.message(prompt)
                out.extend(said if prompt.barge_in else (replace(p, barge_in=False) for p in said))
            else:
                out.append(prompt)
        return tuple(self.voiced(p) for p in out)

    def voiced(self, prompt):
        """A say in an offered language it names, without a voice: that language's voice speaks it."""
        if isinstance(prompt, f.Say) and prompt.voice is None and prompt.language in self.voices:
            return replace(prompt, voice=self.voices[prompt.language])
        return prompt

    def message(self, msg: Msg) -> tuple:
        entry = self.entries.get(msg.id)
        if entry is not None:
            self.used.add(msg.id)
            return entry.prompts
        tag = self.language.tag
        if self.quiet:
            return ()
        if msg.id in BUILT_IN_TEXTS and msg.pos.line == 0:  # the engine's own words, unless a catalog gives them
            if _is_english(tag):
                return (_built_in_say(msg.id, self.language.pos),)
            meaning = _BUILT_IN_MEANING[msg.id]
            self.problems.append(
                (
                    self.language.pos,
                    f"defaults.languages.{tag}",
                    f"{self.catalog_file} has no '{msg.id}' ({meaning}; the built-in one is English)",
                )
            )
            return (_built_in_say(msg.id, self.language.pos),)
        hint = did_you_mean(msg.id, [key for key, entry in self.entries.items() if entry.prompts])
        self.problems.append((msg.pos, msg.path, f"'{msg.id}' is missing in {tag} ({self.catalog_file}){hint}"))
        return ()

    def handler(self, handler: f.Handler) -> f.Handler:
        return replace(handler, prompts=self.prompts(handler.prompts))

    def state(self, state: f.State) -> f.State:
        changes: dict = {
            "prompts": self.prompts(state.prompts),
            "reprompt": self.prompts(state.reprompt),
            "no_input": self.handler(state.no_input),
            "no_match": self.handler(state.no_match),
        }
        action = state.action
        if isinstance(action, f.Gather):
            changes["routes"] = tuple(self.route(r) for r in state.routes)
            self.barge_in_order(state)
        if isinstance(action, f.Dial) and action.screen is not None:
            screen = action.screen
            screen = replace(
                screen,
                prompts=self.prompts(screen.prompts),
                on_timeout=self.prompts(screen.on_timeout),
                accepted=self.prompts(screen.accepted),
            )
            changes["action"] = replace(action, screen=screen)
        if state.filler is not None and isinstance(state.filler.prompt, f.Say):
            changes["filler"] = replace(state.filler, prompt=self.voiced(state.filler.prompt))
        if isinstance(action, Pay) and action.prompts:  # each step's prompts, in this language
            steps = tuple(replace(step, prompts=self.prompts(step.prompts)) for step in action.prompts)
            changes["action"] = replace(action, prompts=steps)
        if state.filler is not None and isinstance(state.filler.prompt, Msg):
            said = self.message(state.filler.prompt)
            if len(said) == 1 and isinstance(said[0], f.Say | f.Play):
                changes["filler"] = replace(state.filler, prompt=said[0])
            elif said:
                why = f"a filler is one say or play; '{state.filler.prompt.id}' in {self.language.tag} is {len(said)}"
                self.problems.append((state.filler.prompt.pos, state.filler.prompt.path, why))
        return replace(state, **changes)

    def barge_in_order(self, state: f.State) -> None:
        """Prompts that play whole before the gather come first, as the loader checks in the flow file: a
        message's prompts written `barge_in: false` in a catalog too."""
        heard_open = False
        for written in state.prompts:
            said = self.message(written) if isinstance(written, Msg) else (written,)
            said = said if getattr(written, "barge_in", True) else [replace(p, barge_in=False) for p in said]
            for prompt in said:
                if prompt.barge_in:
                    heard_open = True
                elif heard_open:
                    where = f"'{written.id}' in {self.language.tag}" if isinstance(written, Msg) else "this prompt"
                    why = (f"{where} holds a prompt with barge_in: false after one the caller can interrupt: it would"
                           " play inside the gather; put the uninterruptible prompts first")  # fmt: skip
                    self.problems.append((written.pos, getattr(written, "path", "") or f"states.{state.name}", why))
                    return

    def route(self, route: f.Route) -> f.Route:
        words = dict(route.words)
        if self.language.tag in words:
            return replace(route, synonyms=words[self.language.tag])
        return route

    def view(self) -> f.Flow:
        flow = self.flow
        defaults = flow.defaults
        tag = self.language.tag
        texts = {key: self.message(Msg(key, Pos(flow.file, 0, 0))) for key in ("goodbye", "apology")}
        view_defaults = replace(
            defaults,
            voice=self.language.voice if self.language.voice is not None else defaults.voice,
            language=tag,
            hints=self.language.hints,
            speech=_merged(defaults.speech, self.language.speech),
            no_input=self.handler(defaults.no_input),
            no_match=self.handler(defaults.no_match),
            texts=texts,
        )
        states = {name: self.state(state) for name, state in flow.states.items()}
        return replace(flow, defaults=view_defaults, states=states, localized={})


def _merged(flow_speech, language_speech):
    """A language's speech settings over the flow's: each field the language sets wins."""
    if language_speech is None or flow_speech is None:
        return language_speech or flow_speech
    given = {name: value for name in language_speech.__dataclass_fields__
             if (value := getattr(language_speech, name)) is not None}  # fmt: skip
    return replace(flow_speech, **given)


def _built_in_say(key: str, pos: Pos) -> f.Say:
    return f.Say(f.Text(BUILT_IN_TEXTS[key], pos), None, None, None, pos)


def localize(flow: f.Flow, catalogs: dict[str, dict[str, CatalogEntry]], files: dict[str, str], quiet=()):
    """Every language view of a flow read with `msg:` prompts: (the default language's view carrying all
    views in `localized`, the problems as (pos, path, message), the catalog ids used in each language).

    `catalogs`: language -> id -> entry, the flow's catalogs merged; `files`: language -> the catalog file
    a missing message belongs in (for the messages); `quiet`: languages whose catalogs could not be read (their
    problems are reported already), whose missing messages are not."""
    languages = flow.defaults.languages
    default = flow.defaults.language or languages[0].tag
    problems: list = []
    views: dict[str, f.Flow] = {}
    used: dict[str, set[str]] = {}
    for language in sorted(languages, key=lambda lang: lang.tag != default):  # the default first
        localizer = _Localizer(flow, language, catalogs.get(language.tag, {}), files[language.tag])
        localizer.quiet = language.tag in quiet
        views[language.tag] = localizer.view()
        problems.extend(p for p in localizer.problems if p not in problems)
        used[language.tag] = localizer.used
    found = frozenset().union(*used.values())
    views = {tag: replace(view, messages=found) for tag, view in views.items()}
    base = replace(views[default], localized=views)
    views[default] = base
    return base, problems, used
