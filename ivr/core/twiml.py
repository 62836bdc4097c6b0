"""States -> TwiML verbs, through the twilio library's VoiceResponse builders only.

What does not depend on the call (a state without templates) is built once and reused; a
document whose every part is static is serialised once and cached by its chain of states.
"""

from __future__ import annotations

import json
import re

from twilio.twiml.voice_response import (
    Client,
    Conference,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Number,
    Pause,
    Play,
    Queue,
    Record,
    Redirect,
    Reject,
    Say,
    Sip,
    Start,
    VoiceResponse,
)

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.agent_relay import agent_verbs
from ivr.core.flow import BUILT_IN, GOODBYE
from ivr.core.languages import BUILT_IN_TEXTS
from ivr.core.outcomes import expected_digits
from ivr.core.pay import Pay, pay_verbs
from ivr.core.references import spoken_texts, task_json
from ivr.core.speech import Speech, gather_prompts, resolve, speech_attrs
from ivr.core.ssml import build_say, fitted
from ivr.core.subflow import Call, Return
from ivr.core.templates import render
from ivr.core.urls import CALLBACK_OVERRIDES, Urls
from ivr.core.voices import engine_of

__all__ = ["CALLBACK_OVERRIDES", "GOODBYE_TEXT", "Renderer", "Urls", "apology_document", "empty_document"]

GOODBYE_TEXT = BUILT_IN_TEXTS["goodbye"]
APOLOGY_TEXT = BUILT_IN_TEXTS["apology"]


def apology_document(voice: str | None = None, language: str | None = None, text: str = APOLOGY_TEXT) -> str:
    """A complete document that apologises and hangs up; the last resort of every error."""
    response = VoiceResponse()
    response.say(text, voice=voice, language=language)
    response.hangup()
    return response.to_xml()


def empty_document() -> str:
    """`<Response/>`: the answer to callbacks whose body Twilio ignores."""
    return VoiceResponse().to_xml()


# Documents serialised at load (`Renderer.prepare`): every one of a flow of up to 500 menus, and each
# state's own document of a bigger flow.
PREPARED_DOCUMENTS = 2000
# The variants a menu's document is rendered in: entered, repeated, and after no input or a wrong key.
_GATHER_VARIANTS = ("enter", "repeat", "no_input", "no_match")


def _is_static(state: f.State) -> bool:
    # No template in what the state's document says or does: its TwiML is the same for every call.
    return all(t.template is None for t in spoken_texts(state))


class Renderer:
    """Renders one flow's states; built once per flow and URL base."""

    def __init__(self, flow: f.Flow, urls: Urls) -> None:
        self.flow = flow
        self.urls = urls
        self.static = {name: _is_static(state) for name, state in flow.states.items()}
        self._verbs: dict[tuple[str, str], list] = {}  # prebuilt verbs of static states
        self._documents: dict[tuple, str] = {}  # serialised documents of all-static chains
        self._gather_defaults = {
            name: self._gather_attrs(state) for name, state in flow.states.items() if isinstance(state.action, f.Gather)
        }

    # -- documents ---------------------------------------------------------------------------

    def prepare(self, budget: int | None = None) -> int:
        """Serialise, before any call, the documents without templates the flow can answer with: each
        state's own as a call enters it, with each chain of input-less states that can lead into it,
        then each menu's in its other variants (repeated, after no input, after a wrong key). Done at
        load, in gunicorn's master before it forks its workers, so that no webhook serialises one and
        the workers share them. At most `budget` documents (a serialisation costs about 0.07 ms; by
        default one per state and PREPARED_DOCUMENTS more, or PREPARED_DOCUMENTS in all if that is
        more): where `when:` branches multiply, the rest are built on first use. Returns how many
        were built."""
        if budget is None:
            budget = max(PREPARED_DOCUMENTS, len(self.flow.states) + PREPARED_DOCUMENTS // 2)
        left = [budget]
        for variant in _GATHER_VARIANTS:
            for name, state in self.flow.states.items():
                if left[0] <= 0:
                    return budget
                if variant == "enter" or isinstance(state.action, f.Gather):
                    self._prepare_chain([(name, variant)], left)
        return budget - left[0]

    def _prepare_chain(self, segments: list[tuple[str, str]], left: list[int]) -> None:
        name = segments[-1][0]
        if left[0] <= 0 or not self.is_static(name):
            return
        state = self.flow.states.get(name)  # None: a built-in end (goodbye, apology)
        if state is not None and isinstance(state.action, f.Run | Call | Return):
            return  # a hook's (a subflow's) outcome decides what follows: its document is built when a call gets there
        if state is None or state.action is not None:  # it waits for the caller, or ends the call
            if tuple(segments) not in self._documents:
                left[0] -= 1
                self.document(segments, [None] * len(segments))
            return
        passed = {n for n, _ in segments}
        for target in dict.fromkeys([*(c.target for c in state.when), *(v.target for v in state.split), state.next]):
            if target is not None and target not in passed:  # validation refuses cycles; never loop here
                self._prepare_chain([*segments, (target, "enter")], left)

    def is_static(self, name: str) -> bool:
        """Whether a state's verbs are the same for every call (no templates)."""
        return name in BUILT_IN or self.static[name]

    def document(self, segments: list[tuple[str, str]], rendered: list[list | None], prefix=(), crossed=None) -> str:
        """Serialise a chain of (state, variant) segments; `rendered` holds the verbs of templated ones,
        `prefix` the verbs other flows rendered before them (a document that crossed into or out of a subflow),
        `crossed` their key when none of them is templated (`ivr.core.subflow.crossing_key`).

        Templated states are rendered by the engine as it walks the chain, so each sees the
        variables as they were when the call passed through it.
        """
        static = (not prefix or crossed is not None) and all(verbs is None for verbs in rendered)
        key = (*crossed, *segments) if prefix and static else tuple(segments)
        if static:
            cached = self._documents.get(key)
            if cached is not None:
                return cached
        response = VoiceResponse()
        for verbs in prefix:
            for verb in verbs:
                response.append(verb)
        for (name, variant), verbs in zip(segments, rendered, strict=True):
            for verb in self.verbs(name, variant, None) if verbs is None else verbs:
                response.append(verb)
        xml = response.to_xml()
        if static and len(self._documents) < 100_000:
            self._documents[key] = xml
        return xml

    def whisper_document(self, state: f.State, context) -> str:
        """What the answering party of a screened dial hears; no key falls through to a decline."""
        screen: f.Screen = state.action.screen
        ctx = self._screen_context(screen.prompts, context)
        response = VoiceResponse()
        answer = self.urls.action(self.flow.id, state.name, "screened")
        # No finish key: with numDigits 1 the first key submits, so # can accept (or be "any key") too.
        gather = Gather(action=answer, method="POST", num_digits=1, timeout=screen.timeout, input="dtmf",
                        finish_on_key="")  # fmt: skip
        for prompt in screen.prompts:
            gather.append(self._prompt(prompt, ctx))
        response.append(gather)
        response.append(Redirect(answer, method="POST"))
        return response.to_xml()

    def screen_told(self, state: f.State, outcome: str, context) -> list:
        """What the answering party hears after the whisper: `accepted` prompts on outcome accepted, `on_timeout`
        on timeout, nothing when declined with another key."""
        screen: f.Screen = state.action.screen
        told = {"accepted": screen.accepted, "timeout": screen.on_timeout}.get(outcome, ())
        ctx = self._screen_context(told, context)
        return [self._prompt(prompt, ctx) for prompt in told]

    @staticmethod
    def screened_document(accepted: bool, told=()) -> str:
        """Accepted: the document ends after `told`, and Twilio connects the caller. Else this leg hangs up."""
        response = VoiceResponse()
        for verb in told:
            response.append(verb)
        if not accepted:
            response.hangup()
        return response.to_xml()

    @staticmethod
    def _screen_context(prompts, context) -> dict | None:
        templated = any(isinstance(p, f.Say | f.Play) and (p.text if isinstance(p, f.Say) else p.url).template
                        for p in prompts)  # fmt: skip
        return context() if templated else None

    def redirect_document(self, flow_id: str, state: str) -> str:
        """A document that sends the call to a state of another flow (its `back` menu)."""
        response = VoiceResponse()
        response.append(Redirect(self.urls.entry(flow_id, state), method="POST"))
        return response.to_xml()

    def verbs(self, name: str, variant: str, context) -> list:
        """The verbs of one state: variant is 'enter', 'no_input' or 'no_match' (a retry)."""
        if name in BUILT_IN:
            said = self.flow.defaults.texts.get("goodbye" if name == GOODBYE else "apology")  # a language's own
            if said:
                return [*(self._prompt(p, None) for p in said), Hangup()]
            text = GOODBYE_TEXT if name == GOODBYE else APOLOGY_TEXT
            return [Say(text, voice=self.flow.defaults.voice, language=self.flow.defaults.language), Hangup()]
        if self.static[name]:
            key = (name, variant)
            verbs = self._verbs.get(key)
            if verbs is None:
                verbs = self._verbs[key] = self._build(self.flow.states[name], variant, None)
            return verbs
        return self._build(self.flow.states[name], variant, context())

    # -- building ----------------------------------------------------------------------------

    def _build(self, state: f.State, variant: str, ctx: dict | None) -> list:
        action = state.action
        head = self._start_recording(state) if variant == "enter" else []  # a retry must not start a second one
        if isinstance(action, f.Gather):
            lead, prompts = gather_prompts(state, variant)  # the lead plays whole, before the caller is heard
            gather = Gather(
                action=self.urls.action(self.flow.id, state.name), method="POST", **self._gather_defaults[state.name]
            )
            for prompt in prompts:
                gather.append(self._prompt(prompt, ctx))
            # Twilio falls through a Gather that got nothing; the server counts that retry.
            return [
                *head,
                *(self._prompt(p, ctx) for p in lead),
                gather,
                Redirect(self.urls.action(self.flow.id, state.name, "no_input"), method="POST"),
            ]
        verbs = [*head, *(self._prompt(p, ctx) for p in state.prompts)]
        if action is None:
            return verbs
        return verbs + self._action(state, action, ctx)

    def _start_recording(self, state: f.State) -> list:
        """`<Start><Recording>` for a state that starts recording the whole call; [] for any other."""
        rec = state.call_recording
        if rec is None or rec.op != "start":
            return []
        start = Start()
        start.recording(
            recording_status_callback=self.urls.callback("recording", self.flow.id, state.name, "call"),
            recording_status_callback_method="POST",
            recording_status_callback_event="in-progress completed absent",
            channels=rec.channels,
            track=rec.track,
            trim=None if rec.trim is None else ("trim-silence" if rec.trim else "do-not-trim"),
        )
        return [start]

    def _action(self, state: f.State, action, ctx) -> list:
        flow_id = self.flow.id
        if isinstance(action, f.Record):
            record = Record(
                action=self.urls.action(flow_id, state.name),
                method="POST",
                max_length=action.max_length,
                timeout=action.timeout,
                finish_on_key=action.finish_on_key,
                play_beep=action.play_beep,
                transcribe=None if self.urls.pci_mode else action.transcribe,  # PCI mode: none would come
                transcribe_callback=self.urls.callback("transcription", flow_id, state.name)
                if action.transcribe and not self.urls.pci_mode
                else None,
                recording_status_callback=self.urls.callback("recording", flow_id, state.name),
                recording_status_callback_method="POST",
                trim=None if action.trim is None else ("trim-silence" if action.trim else "do-not-trim"),
            )
            # An empty recording falls through without a request: route it as no_recording.
            return [record, Redirect(self.urls.action(flow_id, state.name, "no_recording"), method="POST")]
        if isinstance(action, f.Dial):
            dial = Dial(
                action=self.urls.action(flow_id, state.name),
                method="POST",
                timeout=action.timeout,
                caller_id=self._text(action.caller_id, ctx),
                record=action.record,
                time_limit=action.time_limit,
                hangup_on_star=action.hangup_on_star,
            )
            screen = None
            if action.screen is not None:  # the answering party's leg asks us what to whisper
                screen = {"url": self.urls.action(flow_id, state.name, "screen"), "method": "POST"}
            for target in action.targets:
                value = self._text(target.value, ctx)
                noun = {"number": Number, "client": Client, "sip": Sip, "conference": Conference, "queue": Queue}
                dial.append(noun[target.kind](value, **(screen or {})))
            return [dial]
        if isinstance(action, f.Enqueue):
            enqueue = Enqueue(
                self._text(action.name, ctx),
                action=self.urls.action(flow_id, state.name),
                method="POST",
                wait_url=self._text(action.wait_url, ctx),
                workflow_sid=action.workflow,
            )
            if action.task is not None:  # TaskRouter's task: its attributes as JSON, each text rendered
                task = action.task
                body = json.dumps(task_json(task.attributes, lambda t: self._text(t, ctx)), ensure_ascii=False)
                enqueue.task(body, priority=task.priority, timeout=task.timeout)
            return [enqueue]
        if isinstance(action, f.Redirect):
            if action.url is not None:
                return [Redirect(self._text(action.url, ctx), method="POST")]
            return [Redirect(self.urls.entry(action.flow or flow_id, action.state), method="POST")]
        if isinstance(action, f.Hangup):
            return [Hangup()]
        if isinstance(action, f.Reject):
            return [Reject(reason=action.reason)]
        if isinstance(action, Pay):
            prompt, text = (lambda p: self._prompt(p, ctx)), (lambda t: self._text(t, ctx))
            return pay_verbs(action, self.urls, flow_id, state.name, self.flow.defaults.language, prompt, text)
        if isinstance(action, Agent):
            return agent_verbs(action, self.urls, self.flow, state.name, lambda t: self._text(t, ctx))
        if isinstance(action, f.Run | Call | Return):
            return []  # the hook (subflow) runs on the server; what it chooses follows in the same document
        raise TypeError(f"unknown action {action!r}")

    def prompt_verb(self, prompt) -> Say | Play | Pause:
        """One prompt without templates (a filler) as its verb."""
        return self._prompt(prompt, None)

    def _prompt(self, prompt, ctx):
        if isinstance(prompt, f.Say):
            # voice "" (written `voice: ""`) drops the flow's default: Twilio's own default voice, no attribute.
            voice = (self.flow.defaults.voice if prompt.voice is None else prompt.voice) or None
            attrs = {"voice": voice, "language": prompt.language or self.flow.defaults.language, "loop": prompt.loop}
            if prompt.parts:
                say = build_say(prompt.parts, engine_of(voice), lambda t: self._text(t, ctx), **attrs)
            else:
                say = Say(self._text(prompt.text, ctx), **attrs)
            return say if prompt.text.template is None else fitted(say, prompt, voice, ctx, self._text, attrs)
        if isinstance(prompt, f.Play):
            return Play(self._text(prompt.url, ctx), loop=prompt.loop)
        return Pause(length=prompt.length)

    @staticmethod
    def _text(text: f.Text | None, ctx: dict | None) -> str | None:
        if text is None:
            return None
        if text.template is None:
            return _xml_text(text.source)
        # Text from callers and hooks may hold characters XML 1.0 forbids: Twilio would refuse the document.
        return _xml_text(render(text.template, ctx, str(text.pos)))

    def _gather_attrs(self, state: f.State) -> dict:
        gather: f.Gather = state.action
        words = [
            w for r in state.routes for w in (r.synonyms if f.is_digit_key(r.outcome) else (r.outcome, *r.synonyms))
        ]
        inputs = gather.input or (("dtmf", "speech") if words else ("dtmf",))
        num_digits, _ = expected_digits(state)  # each key waits out the timeout unless Twilio knows how many
        speech = "speech" in inputs
        hints = gather.hints if gather.hints is not None else (", ".join(dict.fromkeys(words)) or None)
        if self.flow.defaults.hints:  # the call's language's own (defaults.languages), each word once
            said = [w.strip() for w in f"{hints or ''},{self.flow.defaults.hints}".split(",") if w.strip()]
            hints = ", ".join(dict.fromkeys(said))
        hints = None if hints is None else _xml_text(hints)  # YAML escapes ("\ud800") can write anything
        return {
            "input": " ".join(inputs),
            "num_digits": num_digits,
            "timeout": gather.timeout,
            "finish_on_key": gather.finish_on_key,
            "hints": hints if speech else None,
            "speech_timeout": gather.speech_timeout if speech else None,
            "language": (gather.language or self.flow.defaults.language) if speech else None,
            **speech_attrs(resolve(self.flow.defaults.speech, gather.speech) if speech else Speech()),
            "barge_in": False if speech and gather.barge_in is False else None,  # keys cut nested prompts anyway
            "action_on_empty_result": _first(gather.action_on_empty_result, self.flow.defaults.action_on_empty_result)
            or None,
        }


# Every character outside XML 1.0's Char production. Lone surrogates (a hook's bytes decoded with
# surrogateescape, a bad JSON escape) cannot be encoded: ElementTree writes them as &#55296;, which no parser accepts.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _first(*values):
    return next((v for v in values if v is not None), None)


def _xml_text(text: str) -> str:
    """Text with the characters XML 1.0 cannot hold removed: every text that enters a document passes here."""
    return _NOT_XML.sub("", text)
