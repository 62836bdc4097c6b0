"""Speech recognition settings a <Gather> is pinned to, and which prompts a caller can interrupt.

Twilio moved <Gather> speech recognition to new providers between March and June 2025: a gather that
names no `speechModel` gets whatever provider and model Twilio picks that day, so the same flow could
start hearing callers differently without a line of it changing. Every gather that listens for
speech therefore carries an explicit model and profanity filter: the flow's (`defaults.speech`), the
gather's own (`gather.speech`), or else PINNED, the project's choice (docs/flows.md, "Pinned speech
recognition").
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = [
    "ENHANCED_MODEL",
    "MODELS",
    "PINNED",
    "PROVIDER_PREFIXES",
    "Speech",
    "gather_prompts",
    "is_variant",
    "resolve",
    "speech_attrs",
    "split_lead",
]

# speechModel values Twilio's <Gather> documents, and who recognises the speech. The generic names
# (Google STT V1's models until 2025) are mapped by Twilio to a provider it chooses; the provider
# names (googlev2_*, deepgram_*) pin one provider and model.
MODELS = {
    "default": "generic (Twilio chooses the provider)",
    "numbers_and_commands": "generic (Twilio chooses the provider)",
    "phone_call": "generic (Twilio chooses the provider; Google STT V1 phone_call with enhanced)",
    "experimental_conversations": "generic (Twilio chooses the provider)",
    "experimental_utterances": "generic (Twilio chooses the provider)",
    "googlev2_long": "Google STT V2",
    "googlev2_short": "Google STT V2",
    "googlev2_telephony": "Google STT V2",
    "googlev2_telephony_short": "Google STT V2",
    "deepgram_nova-2": "Deepgram",
    "deepgram_nova-3": "Deepgram",
}
# A variant of a named provider's model that the table does not list yet (deepgram_nova-3-general) is
# taken, as Twilio adds them; `check` warns of it, and Twilio answers warning 13334 if it does not exist.
PROVIDER_PREFIXES = ("googlev2_", "deepgram_")


def is_variant(model: str) -> bool:
    """Whether `model` extends a named provider's model of the table: deepgram_nova-3-general."""
    return any(model.startswith(f"{known}-") for known in MODELS if known.startswith(PROVIDER_PREFIXES))


# Twilio's `enhanced` (deprecated) applies to this model only (Twilio warning 13339).
ENHANCED_MODEL = "phone_call"


@dataclass(frozen=True, slots=True)
class Speech:
    """How a gather's speech is recognised; None: not said here (an outer layer, or PINNED, decides)."""

    model: str | None = None
    enhanced: bool | None = None
    profanity_filter: bool | None = None


# The project's choice: Google STT V2's telephony model, a named provider and model that Twilio's
# defaults cannot move; Twilio's own default for the profanity filter (on: profanities come back as
# asterisks); enhanced unset, as it means nothing outside phone_call.
PINNED = Speech(model="googlev2_telephony", enhanced=None, profanity_filter=True)


def resolve(*layers: Speech | None) -> Speech:
    """The settings in force: each field from the last layer that says it (flow, then gather), over PINNED."""
    values = {f.name: getattr(PINNED, f.name) for f in fields(Speech)}
    for layer in layers:
        if layer is None:
            continue
        for f in fields(Speech):
            value = getattr(layer, f.name)
            if value is not None:
                values[f.name] = value
    return Speech(**values)


def speech_attrs(speech: Speech) -> dict:
    """The <Gather> attributes (twilio builder keywords) of resolved settings: enhanced only with phone_call."""
    return {
        "speech_model": speech.model,
        "enhanced": (bool(speech.enhanced) if speech.model == ENHANCED_MODEL else None),
        "profanity_filter": speech.profanity_filter,
    }


def split_lead(prompts: tuple) -> tuple[tuple, tuple]:
    """(the leading prompts written `barge_in: false`, the rest): the lead plays before the <Gather>, where
    neither a key nor speech cuts it; the rest plays inside it."""
    count = 0
    for prompt in prompts:
        if getattr(prompt, "barge_in", True):
            break
        count += 1
    return prompts[:count], prompts[count:]


def gather_prompts(state, variant: str) -> tuple[tuple, tuple]:
    """What a gather state plays before its <Gather> and inside it, in `variant` ('enter', 'repeat', 'no_input',
    'no_match'). A retry plays the handler's message, then the reprompt, or else the state's prompts without
    their `barge_in: false` lead: that was heard whole when the call entered the state."""
    if variant in ("enter", "repeat"):
        return split_lead(state.prompts)
    handler = state.no_input if variant == "no_input" else state.no_match
    again = state.reprompt if state.reprompt is not None else split_lead(state.prompts)[1]
    return split_lead(handler.prompts + again)
