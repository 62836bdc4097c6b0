"""Warnings about the voices a flow names and the SSML it asks them to speak: an unknown voice (with a
did-you-mean), a voice that does not speak the say's language, a Polly voice in a form it lacks
(Polly.Celine-Neural), SSML the voice's engine ignores or does not take; an agent's ConversationRelay voice.

Warnings, never errors: the voice table (`ivr.core.voices`) can lag Twilio. `check` shows them at
file:line:col with its other warnings; the app logs them once when it loads a version of a flow.
"""

from __future__ import annotations

from dataclasses import replace

from ivr.core import flow as f
from ivr.core.references import state_prompts
from ivr.core.relay_voices import relay_voice_warnings
from ivr.core.speech import MODELS, resolve
from ivr.core.ssml import CONTAINERS, SAY_AS, walk
from ivr.core.voices import engine_of, ssml_problem, voice_problem
from ivr.errors import FlowError

__all__ = ["voice_warnings"]

_PLAIN = {"basic": "basic voices (man, woman, alice)", "google-chirp3-hd": "Google's Chirp 3: HD voices"}


def voice_warnings(flow: f.Flow, where: dict[str, f.Pos] | None = None) -> list[FlowError]:
    """Every voice and SSML warning of a flow; `where` maps key paths to positions (`check` knows them)."""
    where = where or {}
    out: dict[tuple, FlowError] = {}

    def add(pos: f.Pos, path: str, message: str) -> None:
        out.setdefault((pos, path, message), FlowError(pos.file, pos.line, pos.column, path, message, "warning"))

    defaults = flow.defaults
    if defaults.voice and not defaults.languages and (problem := voice_problem(defaults.voice, defaults.language)):
        add(where.get("defaults.voice", flow.pos), "defaults.voice", problem)
    for language in defaults.languages:  # each offered language's own voice (ivr.core.languages)
        if language.voice and (problem := voice_problem(language.voice, language.tag)):
            add(language.pos, f"defaults.languages.{language.tag}.voice", problem)
    for view in flow.localized.values() or (flow,):  # a flow in several languages: each language's prompts
        _view_warnings(view, add, where)
    for view in flow.localized.values() or (flow,):  # a speech model of a named provider ivr does not know
        for state in view.states.values():
            if isinstance(state.action, f.Gather) and "speech" in (state.action.input or ("speech",)):
                model = resolve(view.defaults.speech, state.action.speech).model
                if model not in MODELS:
                    why = f"speech model '{model}' is not one ivr knows: Twilio warns 13334 if it does not exist"
                    add(state.action.pos, f"states.{state.name}.gather", why)
    for warning in relay_voice_warnings(flow, where):  # an agent's ConversationRelay voice (ivr.core.relay_voices)
        out.setdefault((warning.format(),), warning)
    return sorted(out.values(), key=FlowError.sort_key)


def _view_warnings(flow: f.Flow, add, where: dict[str, f.Pos]) -> None:
    defaults = flow.defaults
    for state in flow.states.values():
        filler = [state.filler.prompt] if state.filler is not None else []
        for say in [p for p in [*state_prompts(state), *filler] if isinstance(p, f.Say)]:
            path = say.text.path.removesuffix(".text")
            language = say.language or defaults.language
            voice = defaults.voice if say.voice is None and flow.defaults.languages else say.voice
            inherited = voice == defaults.voice and language == defaults.language
            if voice and not inherited and (problem := voice_problem(voice, language)):
                add(where.get(path + ".voice", say.pos), path + ".voice", problem)
            _ssml(say, engine_of(voice or None), path, add, voice)


def _ssml(say: f.Say, engine: str | None, path: str, add, voice: str | None = None) -> None:
    """What the voice's engine makes of the say's parts."""
    say = say if voice is None or say.voice == voice else replace(say, voice=voice)
    if not say.parts or engine is None:
        return
    if engine in _PLAIN:
        add(say.pos, path, f"{_PLAIN[engine]} take no SSML: {say.voice} says these parts as plain text")
        return
    family = engine.split("-")[0]
    for part in walk(say.parts):
        if part.kind == "text":
            continue
        if part.kind in SAY_AS:
            interpret_as = SAY_AS[part.kind][family]
            if interpret_as is None:
                continue  # said as written, by design (Polly's currency, Google's address)
            if part.kind == "spell" and engine == "polly-neural":
                add(
                    part.pos,
                    path,
                    f"Polly's neural voices say a sentence with spell: in the standard voice ({say.voice})",
                )
            tag = "say-as"
        else:
            tag = CONTAINERS.get(part.kind, part.kind)
        if problem := ssml_problem(engine, tag, dict(part.attrs)):
            add(part.pos, path, f"{problem} ({say.voice}); the caller hears the words without it")
