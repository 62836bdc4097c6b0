"""Converters of Studio's core widgets: trigger, say/play, gather input on call, set variables and
add TwiML redirect (the split lives in ivr/studio/split.py, calls and integrations in their own modules).

Studio's behaviour pinned here, from Twilio's widget library (twilio.com/docs/studio/widget-library):
- Say/Play speaks `say`, plays `play` or sends `digits` as tones, `loop` times (1 to 99, default 1);
  its message voice defaults to Alice and its language to en-US (the Gather Input on Call page's
  table, which the Say/Play one shares), not Twilio's <Say> default (man): the flow writes both.
- Gather Input on Call listens for keys and speech and fires `keypress`, `speech` or `timeout`;
  `timeout` (default 5 s) fires once: Studio does not ask again. Its TwiML defaults are Twilio's
  <Gather> ones: finishOnKey `#`, numDigits unlimited, speechTimeout as Twilio's; speech is heard
  in en-US unless `gather_language` says otherwise, whatever language the prompt is said in.
  "Stop gathering on keypress" off (`stop_gather: false`) gathers every key until the timeout or
  the number of digits: no finish key (`finish_on_key: ""`), as an empty finish key does.
"""

from __future__ import annotations

from typing import Any

from ivr.core.speech import MODELS, is_variant
from ivr.core.templates import number_or_text
from ivr.studio import liquid
from ivr.studio.model import Context, Piece, Widget, converts, flag, number, reads

__all__ = ["gather_state", "prompt"]

SUBFLOW_EVENT = "incomingParent"
STUDIO_VOICE, STUDIO_LANGUAGE = "alice", "en-US"  # Studio's message voice and language when none is chosen


def prompt(widget: Widget, ctx: Context, state: dict[str, Any]) -> None:
    """Say/play/digits of a say-play or gather widget into `state` (`say:` or `play:`)."""
    loop = number(widget.prop("loop", 1)) or 1
    if loop < 1 or loop > 100:
        ctx.report(widget, f"loop {widget.prop('loop')!r} is outside 1 to 100; played once")
        loop = 1
    said, played, digits = widget.prop("say"), widget.prop("play"), widget.prop("digits")
    for key, value in (("say", said), ("play", played)):
        if isinstance(value, (list, dict, bool)):  # Studio writes text here: never say a list's Python repr
            ctx.report(widget, f"{key} is {type(value).__name__}, not text; left out")
    said = said if isinstance(said, (str, int, float)) and not isinstance(said, bool) else None
    played = played if isinstance(played, str) else None
    if said:
        text = liquid.text(ctx, widget, str(said), "say")
        # Studio's defaults (Alice, en-US) written out; one voice for every say becomes the flow's defaults
        voice, language = widget.prop("voice", STUDIO_VOICE), widget.prop("language", STUDIO_LANGUAGE)
        say: dict[str, Any] = {"text": text, "voice": _voice(str(voice)), "language": str(language)}
        if loop != 1:
            say["loop"] = loop
        state["say"] = say
    elif played:
        url = liquid.text(ctx, widget, str(played), "play")
        state["play"] = {"url": url, "loop": loop} if loop != 1 else url
    if digits:
        ctx.report(widget, f"digits {digits!r}: the flow language cannot play DTMF tones to the caller; left out")


def _voice(voice: str) -> str:
    # Studio lists Twilio's basic voices in lower case and Polly/Google voices as Twilio names them.
    return voice.lower() if voice.lower() in ("alice", "man", "woman") else voice


@converts("trigger")
def trigger(widget: Widget, ctx: Context) -> Piece:
    """The trigger starts the flow: incoming call, else REST API (an outbound call), else a subflow's parent."""
    call, request, parent = (widget.next(e) for e in ("incomingCall", "incomingRequest", SUBFLOW_EVENT))
    if widget.next("incomingMessage") or widget.next("incomingConversationMessage"):
        ctx.report(widget, "incoming messages are not a call: that branch of the flow is left out (texts use sms:)")
    notes = []
    if call:
        ctx.extras["start"], ctx.extras["entry"] = ctx.target(widget, "incomingCall"), "call"
        if request and request != call:
            ctx.report(
                widget,
                f"REST API executions start at {request!r}, calls at {call!r}: only the call's branch is "
                "imported, and outbound calls enter the flow at its start too; the REST API branch is left out",
            )
    elif request:
        ctx.extras["start"], ctx.extras["entry"] = ctx.target(widget, "incomingRequest"), "rest"
        notes.append("Studio started this flow by REST API: place calls into it with python -m ivr call.")
    elif parent:
        ctx.extras["start"] = ctx.target(widget, SUBFLOW_EVENT)
        ctx.extras["returns"] = ["completed", "failed"]
        notes.append("A Studio subflow: its end is `return: completed`, a failure `return: failed`.")
    data = sorted({p.split(".", 2)[2] for w in ctx.definition.widgets for p in _paths(w) if p.startswith("flow.data.")})
    if data and (request or parent) and not call:
        if parent:
            ctx.extras["inputs"] = {name: {"default": ""} for name in data}
        else:
            notes.append("Its REST API parameters are variables: " + ", ".join(data) + ".")
    ctx.extras.setdefault("notes", []).extend(notes)
    return Piece()


def _paths(widget: Widget) -> set[str]:
    from ivr.studio.liquid import paths

    return paths(widget)


@converts("say-play")
def say_play(widget: Widget, ctx: Context) -> Piece:
    state: dict[str, Any] = {}
    prompt(widget, ctx, state)
    state["next"] = ctx.target(widget, "audioComplete")
    return Piece().add(ctx.state(widget), state)


def _count(widget: Widget, ctx: Context, key: str, low: int, high: int, instead: str) -> int | None:
    """A whole-number property within [low, high]; None (reported, when it was written) otherwise."""
    raw = widget.prop(key)
    value = number(raw)
    if raw is not None and (value is None or not low <= value <= high):
        ctx.report(widget, f"{key} {raw!r} is not a whole number from {low} to {high}; {instead}, as Twilio's default")
        return None
    return value


def gather_state(widget: Widget, ctx: Context) -> dict[str, Any]:
    """The prompt and `gather:` of a gather-input-on-call widget, and its timeout (no routing)."""
    state: dict[str, Any] = {}
    prompt(widget, ctx, state)
    gather: dict[str, Any] = {}
    speech = widget.next("speech") is not None
    gather["input"] = ["dtmf", "speech"] if speech else "dtmf"
    digits = _count(widget, ctx, "number_of_digits", 1, 99, "any number of keys")
    if digits is not None:
        gather["num_digits"] = digits
    timeout = _count(widget, ctx, "timeout", 1, 60, "5 seconds")
    if timeout is not None and timeout != 5:
        gather["timeout"] = timeout
    finish = widget.properties.get("finish_on_key")  # "" is no finish key, not the default
    if finish == "" or flag(widget.prop("stop_gather"), True) is False:
        gather["finish_on_key"] = ""
    elif finish is not None and str(finish) != "#":
        gather["finish_on_key"] = str(finish)[:1]
    if speech:
        _speech(widget, ctx, gather)
    state["gather"] = gather
    # Studio's timeout fires once (no retry): one silence goes where its `timeout` transition leads.
    state["no_input"] = {"max": 1, "on_max": ctx.target(widget, "timeout")}
    return state


def _speech(widget: Widget, ctx: Context, gather: dict[str, Any]) -> None:
    hints = widget.prop("hints")
    if hints:
        gather["hints"] = liquid.text(ctx, widget, str(hints), "hints")
    gather["language"] = str(widget.prop("gather_language", STUDIO_LANGUAGE))  # never the prompt's language
    speech_timeout = widget.prop("speech_timeout")
    if speech_timeout is not None:
        seconds = number(speech_timeout)
        gather["speech_timeout"] = "auto" if str(speech_timeout).strip() == "auto" else seconds
        if gather["speech_timeout"] is None:
            del gather["speech_timeout"]
    recognition: dict[str, Any] = {}
    model = widget.prop("speech_model")
    if model:
        if str(model) in MODELS or is_variant(str(model)):
            recognition["model"] = str(model)
        else:
            ctx.report(widget, f"speech model {model!r} is not one Twilio offers; the project's pinned model is used")
    if widget.prop("profanity_filter") is not None:
        recognition["profanity_filter"] = flag(widget.prop("profanity_filter"), True)
    if flag(widget.prop("enhanced"), False):
        recognition["enhanced"] = True
    if recognition:
        gather["speech"] = recognition


@converts("gather-input-on-call")
def gather_input(widget: Widget, ctx: Context) -> Piece:
    """A gather: keys and speech each lead where Studio's transitions do; a split reading the
    digits, reached only from here, becomes the gather's routes (ivr/studio/split.py)."""
    from ivr.studio.split import absorb_key_split

    state = gather_state(widget, ctx)
    keys_to, speech_to = widget.next("keypress"), widget.next("speech")
    comments = []
    routes = absorb_key_split(widget, ctx)
    if routes is not None:
        state["routes"], nomatch = routes
        comments.append("Studio's split on the keys is these routes; a key no route takes goes to next,")
        comments.append("as Studio's No Match did (it does not ask again).")
        state_next = nomatch
        if "num_digits" not in state["gather"]:
            comments.append("Studio set no number of digits: each key waits for # or the timeout, as there;")
            comments.append("num_digits: 1 would answer at the first key (check suggests it).")
    else:
        state_next = ctx.target(widget, "keypress")
    if speech_to and speech_to != keys_to:
        state["when"] = [{"if": "input.speech", "next": ctx.target(widget, "speech")}]
    elif not speech_to:
        comments.append("Studio's speech transition led nowhere (speech would end the call): keys only here.")
    if widget.next("timeout") == widget.name:
        comments.append("Studio asked again on every silence, without end (check warns): give on_max a way out.")
        ctx.report(widget, "its timeout asks again without end, as in Studio; check warns that a silent caller "
                   "is never let go: give no_input.on_max a way out")  # fmt: skip
    state["next"] = state_next
    return Piece().add(ctx.state(widget), state, *comments)


@reads("gather-input-on-call")
def gather_output(widget: Widget, path: str, ctx: Context) -> str | None:
    return {"Digits": "input.digits", "SpeechResult": "input.speech", "Confidence": "input.confidence"}.get(path)


@converts("set-variables")
def set_variables(widget: Widget, ctx: Context) -> Piece:
    """Each variable is `flow.variables.NAME` in Studio and NAME in the flow."""
    values: dict[str, Any] = {}
    cleared: list[str] = []
    for item in widget.prop("variables", []) or []:
        key, value = str(item.get("key") or ""), item.get("value")
        name = liquid.variable_name(key)
        if name is None:
            ctx.report(widget, f"variable {key!r} cannot be a flow variable name; left out")
            continue
        written = liquid.text(ctx, widget, "" if value is None else str(value), f"variables.{key}")
        ctx.extras.setdefault("variables", {})[key] = name  # a subflow returns them to its parent
        if not written.strip():  # Studio clears a variable with an empty value; set: takes no empty text
            values[name], cleared = EMPTY_TEXT, [*cleared, name]
            continue
        values[name] = number_or_text(written) if "{" not in written else written  # "3" is the number 3
    state: dict[str, Any] = {"set": values} if values else {}
    state["next"] = ctx.target(widget, "next")
    comments = [f"{', '.join(cleared)}: emptied, as Studio's empty value does."] if cleared else []
    return Piece().add(ctx.state(widget), state, *comments)


EMPTY_TEXT = "{{ '' }}"  # a template that renders empty text: set: refuses an empty value written as such


@converts("add-twiml-redirect")
def twiml_redirect(widget: Widget, ctx: Context) -> Piece:
    """Studio hands the call to other TwiML and may get it back on `return`; the flow's redirect does not."""
    url = liquid.text(ctx, widget, str(widget.prop("url", "")), "url")
    comments = []
    if widget.next("return"):
        ctx.extras.setdefault("entries", []).append(ctx.target(widget, "return"))
        ctx.report(
            widget,
            "the call leaves the flow at the redirect; Studio's return (to "
            f"{widget.next('return')!r}) needs that TwiML to redirect back to /voice/{ctx.extras.get('flow_id')}"
            f"?state={ctx.target(widget, 'return')}",
        )
    if str(widget.prop("method", "POST")).upper() != "POST":
        comments.append("Studio fetched this URL with GET; the redirect uses POST, as Twilio's <Redirect> does.")
    if not url:
        return ctx.todo(widget, "no URL to redirect to", "fail", todo="Studio's TwiML redirect has no URL")
    return Piece().add(ctx.state(widget), {"redirect": {"url": url}}, *comments)
