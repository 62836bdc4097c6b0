"""The flow model: frozen dataclasses for a flow and its states, each keeping where it was written.

`ivr.core.loader` builds these from YAML; the engine and the TwiML renderer only read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.core.dial_model import (  # the dial model, re-exported: f.Dial, f.DIAL_OUTCOMES...
    ANSWERED_BY,
    DECLINED,
    DIAL_OUTCOMES,
    MACHINE,
    SCREEN_EVENTS,
    Dial,
    DialTarget,
    Screen,
    dial_outcomes,
    dial_outcomes_of,
)  # fmt: skip
from ivr.core.positions import Pos, Text
from ivr.core.speech import Speech

__all__ = [
    "ANSWERED_BY",
    "ANY_KEY",
    "APOLOGY",
    "BUILT_IN",
    "CONTEXT_NAMES",
    "DECLINED",
    "DIAL_OUTCOMES",
    "E164",
    "ENQUEUE_OUTCOMES",
    "GOODBYE",
    "HANGUP",
    "MACHINE",
    "RECORD_OUTCOMES",
    "REPORT_MARKS",
    "SCREEN_EVENTS",
    "VARIABLE_NAME",
    "Condition",
    "Defaults",
    "Dial",
    "DialTarget",
    "Enqueue",
    "Flow",
    "Gather",
    "Handler",
    "Hangup",
    "Pause",
    "Play",
    "Pos",
    "Record",
    "Redirect",
    "Reject",
    "Route",
    "Run",
    "Say",
    "Screen",
    "Sms",
    "State",
    "Target",
    "Text",
    "Variant",
    "dial_outcomes",
    "dial_outcomes_of",
    "is_digit_key",
    "variable_name_problem",
]

NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
# The machine's built-in states (names no flow state can have: they start with ~).
GOODBYE = "~goodbye"  # the built-in state a menu goes to when its retries run out and no on_max is set
APOLOGY = "~apology"  # where a failed hook goes when neither its state nor the flow says
BUILT_IN = (GOODBYE, APOLOGY)
HANGUP = "hangup"  # `on_max: hangup`: the built-in goodbye, whatever on_max the flow's defaults name
# A phone number as Twilio takes it: E.164, + country code and number.
E164 = re.compile(r"\+[1-9]\d{1,14}\Z")
# What templates and conditions see besides the call's variables (the engine's context): a variable
# may not take one of these names, which the context would shadow.
CONTEXT_NAMES = ("call", "input", "recording", "dial", "queue", "now", "vars", "flow", "state", "open")
VARIABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def variable_name_problem(name: object) -> str | None:
    """Why `name` cannot be a call variable (set:, save_as, an outbound call's variables), or None."""
    if not isinstance(name, str) or not VARIABLE_NAME.match(name):
        return "use letters, digits and _, starting with a letter (e.g. first_name)"
    if name in CONTEXT_NAMES:
        return f"'{name}' is reserved: templates see the call's {name} there"
    return None


DIGIT_KEY_RE = re.compile(r"[0-9*#]+\Z")

# Twilio's QueueResult values for <Enqueue action>.
ENQUEUE_OUTCOMES = ("bridged", "bridging-in-process", "queue-full", "error", "system-error", "hangup",
                    "redirected", "leave")  # fmt: skip
# A <Record> either requests its action with a recording, or falls through on an empty one.
RECORD_OUTCOMES = ("recorded", "no_recording")
# Events the engine fires itself; no route may be named after them.
RETRY_EVENTS = ("no_input", "no_match")
# `report:` marks: what reaching a state means for the report; a call that ends before any is abandoned.
REPORT_MARKS = ("contained", "transferred", "voicemail", "failed")
NEXT_EVENT = "next"
ERROR_EVENT = "error"  # a hook that failed or ran out of time
VALID_EVENT = "valid"  # collected input that matched the gather's pattern
# Route targets the engine understands itself: play the menu again, or return to the previous one.
ANY_KEY = "any"  # screen.key: whatever key the answering party presses accepts
REPEAT = "repeat"
BACK = "back"
SPECIAL_TARGETS = (REPEAT, BACK)


def is_digit_key(key: str) -> bool:
    """Whether a route key is pressed on the keypad (digits, * and #) rather than spoken."""
    return bool(DIGIT_KEY_RE.match(key))


@dataclass(frozen=True, slots=True)
class Say:
    text: Text  # the words said, templates in place (with parts: their words, joined)
    voice: str | None
    language: str | None
    loop: int | None
    pos: Pos
    parts: tuple = ()  # SSML parts (ivr.core.ssml.Part), when the text is written as a list
    barge_in: bool = True  # False: plays before the <Gather>, whole (ivr.core.speech.split_lead)


@dataclass(frozen=True, slots=True)
class Play:
    url: Text
    loop: int | None
    pos: Pos
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class Pause:
    length: int
    pos: Pos
    barge_in: bool = True


Prompt = Say | Play | Pause


@dataclass(frozen=True, slots=True)
class Gather:
    input: tuple[str, ...]
    num_digits: int | None
    timeout: int | None
    finish_on_key: str | None
    hints: str | None
    speech_timeout: str | None
    language: str | None
    speech: Speech | None  # its own recognition settings, over defaults.speech (ivr.core.speech)
    min_confidence: float | None
    pos: Pos
    save_as: str | None = None  # collected input: the variable that keeps what the caller entered
    pattern: object | None = field(default=None, compare=False)  # compiled regex the input must match
    pattern_source: str | None = None
    length: tuple[int, int] | None = None  # (fewest, most) digits accepted
    barge_in: bool | None = None  # False: speech does not cut the nested prompts (keys still do)
    action_on_empty_result: bool | None = None  # None: defaults.action_on_empty_result


@dataclass(frozen=True, slots=True)
class Record:
    max_length: int | None
    timeout: int | None
    finish_on_key: str | None
    play_beep: bool | None
    transcribe: bool | None
    trim: bool | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Enqueue:
    name: Text
    wait_url: Text | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Redirect:
    state: str | None
    flow: str | None
    url: Text | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Run:
    """Call a registered hook; its outcome routes the call."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Hangup:
    pos: Pos


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    pos: Pos


Action = Gather | Record | Dial | Enqueue | Redirect | Hangup | Reject | Run
WAITING_ACTIONS = (Gather, Record, Dial, Enqueue)
ENDING_ACTIONS = (Redirect, Hangup, Reject)


@dataclass(frozen=True, slots=True)
class Route:
    """An outcome (key, phrase or status) and the state it leads to."""

    outcome: str
    target: str
    synonyms: tuple[str, ...]
    pos: Pos
    target_pos: Pos
    inherited: bool = False  # from the flow's defaults.routes (a way out of every menu)
    words: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (language, synonyms) when they differ by language


@dataclass(frozen=True, slots=True)
class Condition:
    """One `when:` entry: a compiled expression and the state taken when it is true."""

    source: str
    test: object = field(compare=False, repr=False)
    target: str = ""
    pos: Pos | None = None
    target_pos: Pos | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """One `split:` entry: the state that `share` percent of callers go to, where its name is written."""

    target: str
    share: int
    pos: Pos


@dataclass(frozen=True, slots=True)
class Target:
    """A state named where the author wrote it: its position and key path."""

    name: str
    pos: Pos
    path: str


@dataclass(frozen=True, slots=True)
class Handler:
    """A retry handler (`no_input`, `no_match`): its message, how many failures, where to go then."""

    prompts: tuple[Prompt, ...]
    max: int
    on_max: Target | None  # None: the built-in goodbye
    pos: Pos | None


@dataclass(frozen=True, slots=True)
class Sms:
    """A text sent when the call enters the state: to the other party unless `to` says."""

    body: Text
    to: Text | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class State:
    name: str
    prompts: tuple[Prompt, ...]
    action: Action | None
    routes: tuple[Route, ...]
    next: str | None
    when: tuple[Condition, ...]
    no_input: Handler
    no_match: Handler
    reprompt: tuple[Prompt, ...] | None
    set: tuple[tuple[str, object, Pos], ...]
    sensitive: bool
    pos: Pos
    next_pos: Pos | None = None
    on_error: Target | None = None  # where a failed hook goes; else the flow's error state
    on_message: object | None = None  # hook name, or {"sms": number}: delivers a recorded message
    on_message_pos: Pos | None = None
    answered_by: tuple[Route, ...] = ()  # entering with AnsweredBy (machine detection): where to go first
    sms: Sms | None = None
    split: tuple[Variant, ...] = ()  # an A/B split: each caller goes on to one variant, by share
    split_pos: Pos | None = None  # where `split:` is written (set even when its variants could not be read)
    report: str | None = None  # what reaching the state means for the call's outcome (REPORT_MARKS)
    filler: object | None = None  # a run/http state's ivr.core.filler.Filler: heard while its work is slow
    language: Text | None = None  # `language:` the call goes on in this language (of those the flow offers)
    call_recording: object | None = None  # ivr.core.call_recording.CallRecording: start/pause/resume/stop
    announces_recording: bool = False  # its prompts tell the caller the call is recorded (consent, for `check`)
    todo: str | None = None  # work left to do on the state (an importer's marked state): `check` warns
    todo_pos: Pos | None = None

    @property
    def ends(self) -> bool:
        """Whether the state leaves this flow (hang-up, reject, redirect)."""
        return isinstance(self.action, ENDING_ACTIONS)


@dataclass(frozen=True, slots=True)
class Defaults:
    voice: str | None
    language: str | None
    timezone: str | None
    no_input: Handler
    no_match: Handler
    on_max: Target | None
    routes: tuple[Route, ...] = ()  # ways out of every menu: "0": operator, "*": repeat, "9": back
    on_message: object | None = None  # hook name, or {"sms": number}
    on_message_pos: Pos | None = None
    languages: tuple = ()  # the ivr.core.languages.Language each the flow offers; () in one language
    texts: dict = field(default_factory=dict, compare=False)  # a language view's "goodbye" and "apology" prompts
    hints: str | None = None  # a language's speech hints, added to every gather's
    speech: Speech | None = None  # every speech gather's recognition settings (ivr.core.speech)
    action_on_empty_result: bool | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    file: str
    title: str | None
    defaults: Defaults
    start: str
    error_state: str | None
    states: dict[str, State]
    content_hash: str
    pos: Pos
    start_pos: Pos | None = None
    error_state_pos: Pos | None = None
    schedules: dict = field(default_factory=dict)  # name -> ivr.core.schedules.Schedule
    inputs: tuple = ()  # a subflow's declared inputs (ivr.core.subflow.Input)
    returns: tuple[str, ...] = ()  # a subflow's outcomes (its return states'): declaring them makes it a subflow
    # language -> this flow's view in it (ivr.core.languages), the default first; {} for a flow in one language
    localized: dict = field(default_factory=dict, compare=False, repr=False)
    catalogs: tuple[str, ...] = ()  # the shared catalogs it names (`catalogs:`), besides its own
    messages: frozenset = frozenset()  # the catalog ids its `msg:` prompts (and built-in words) found, for `check`
