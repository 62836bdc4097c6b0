"""ConversationRelay's voices, checked the way Say's are (ivr.core.voice_checks): warnings, never errors.

ConversationRelay does not take Say's voices (`Polly.Joanna`, `Google.en-US-Neural2-F`): its `ttsProvider`
picks a provider (ElevenLabs, Google or Amazon) and `voice` names one of that provider's voices, as the
provider names it: an ElevenLabs voice id (optionally `-model-speed_stability_similarity`), a Google voice
name (`en-US-Journey-O`), an Amazon Polly voice with its engine (`Joanna-Neural`). Twilio's list:
https://www.twilio.com/docs/voice/conversationrelay/voice-configuration

The table here is an honest subset, not Twilio's inventory: the providers, the shape of each provider's voice
names, the Amazon voices most flows use with their languages, and a few ElevenLabs premade voices by name and
id. An ElevenLabs id ivr does not know is no warning (ids of cloned and library voices are the account's own);
a Google name of the right shape is none either. Anything else is a warning with a did-you-mean.
"""

from __future__ import annotations

import re

from ivr.core import flow as f
from ivr.core.agent import Agent
from ivr.core.hints import did_you_mean, path_join
from ivr.errors import FlowError

__all__ = ["AMAZON_VOICES", "ELEVENLABS_VOICES", "TRANSCRIPTION_PROVIDERS", "TTS_PROVIDERS", "relay_voice_warnings"]

TTS_PROVIDERS = ("ElevenLabs", "Google", "Amazon")
TRANSCRIPTION_PROVIDERS = ("Deepgram", "Google")
# A few ElevenLabs premade voices: name -> id (ConversationRelay takes the id).
ELEVENLABS_VOICES = {
    "Rachel": "21m00Tcm4TlvDq8ikWAM",
    "Adam": "pNInz6obpgDQGcFmaJgB",
    "Sarah": "EXAVITQu4vr4xnSDxMaL",
    "George": "JBFqnCBsd6RMkjVDRZzb",
}
# Amazon Polly voices -> their language (ConversationRelay writes NAME-ENGINE: Joanna-Neural, Matthew-Generative).
_US = ("Joanna", "Matthew", "Ruth", "Stephen", "Danielle", "Gregory", "Kevin", "Salli", "Kimberly", "Kendra", "Joey",
       "Ivy", "Justin")  # fmt: skip
AMAZON_VOICES = {
    **dict.fromkeys(_US, "en-US"),
    **dict.fromkeys(("Amy", "Brian", "Emma", "Arthur"), "en-GB"),
    "Olivia": "en-AU",
    **dict.fromkeys(("Lupe", "Pedro"), "es-US"),
    "Mia": "es-MX",
    **dict.fromkeys(("Lucia", "Sergio"), "es-ES"),
    **dict.fromkeys(("Lea", "Remi"), "fr-FR"),
    "Gabrielle": "fr-CA",
    **dict.fromkeys(("Vicki", "Daniel"), "de-DE"),
    **dict.fromkeys(("Bianca", "Adriano"), "it-IT"),
    **dict.fromkeys(("Camila", "Vitoria", "Thiago"), "pt-BR"),
}
AMAZON_ENGINES = ("Neural", "Generative", "Standard", "Long-Form")
_ELEVENLABS_ID = re.compile(r"[A-Za-z0-9]{20}(?:-[A-Za-z0-9_.]+(?:-[0-9.]+_[0-9.]+_[0-9.]+)?)?\Z")
_GOOGLE = re.compile(r"([a-z]{2,3}-[A-Z]{2})-[A-Za-z0-9]+(?:-HD)?-[A-Za-z0-9]+\Z")  # en-US-Chirp3-HD-Aoede
_SAY_STYLE = re.compile(r"(Polly|Google)\.(.+)\Z")


def relay_voice_warnings(flow: f.Flow, where: dict[str, f.Pos] | None = None) -> list[FlowError]:
    """Every agent state's provider and voice that ConversationRelay may not take, with a did-you-mean."""
    where = where or {}
    out = []
    for state in flow.states.values():
        if not isinstance(state.action, Agent):
            continue
        relay = dict(state.action.relay)
        base = path_join(path_join(path_join("states", state.name), "agent"), "relay")
        language = str(relay.get("language") or relay.get("tts_language") or flow.defaults.language or "")
        for key, message in _problems(relay, language):
            path = path_join(base, key)
            pos = where.get(path, state.action.pos)
            out.append(FlowError(pos.file, pos.line, pos.column, path, message, "warning"))
    return out


def _problems(relay: dict, language: str):
    provider = relay.get("tts_provider")
    known = {p.lower(): p for p in TTS_PROVIDERS}
    if provider is not None and str(provider).lower() not in known:
        hint = did_you_mean(str(provider), TTS_PROVIDERS)
        yield "tts_provider", f"unknown tts_provider '{provider}'{hint}; one of {', '.join(TTS_PROVIDERS)}"
    heard = relay.get("transcription_provider")
    if heard is not None and str(heard).lower() not in {p.lower() for p in TRANSCRIPTION_PROVIDERS}:
        yield "transcription_provider", (f"unknown transcription_provider '{heard}'"
                                         f"{did_you_mean(str(heard), TRANSCRIPTION_PROVIDERS)}; one of "
                                         f"{', '.join(TRANSCRIPTION_PROVIDERS)}")  # fmt: skip
    voice = relay.get("voice")
    if voice is None:
        return
    voice = str(voice)
    said = _SAY_STYLE.match(voice)
    if said:  # Say's form: ConversationRelay takes the provider's own name, and the provider apart
        name, kind = said.group(2), "Amazon" if said.group(1) == "Polly" else "Google"
        own = f"{name.split('-')[0]}-Neural" if kind == "Amazon" else name.removesuffix("-Standard")
        yield "voice", (f"'{voice}' is a <Say> voice: ConversationRelay takes tts_provider: {kind} and the "
                        f"provider's own name (voice: {own})")  # fmt: skip
        return
    problem = _voice_problem(known.get(str(provider).lower()) if provider is not None else None, voice, language)
    if problem:
        yield "voice", problem


def _voice_problem(provider: str | None, voice: str, language: str) -> str | None:
    if provider == "ElevenLabs" or (provider is None and _ELEVENLABS_ID.match(voice)):
        if voice in ELEVENLABS_VOICES:
            return f"ElevenLabs voices are named by id: voice: {ELEVENLABS_VOICES[voice]} ({voice})"
        if not _ELEVENLABS_ID.match(voice):
            return (f"'{voice}' is not an ElevenLabs voice id (20 letters and digits, optionally "
                    "-model-speed_stability_similarity)")  # fmt: skip
        return None
    if provider == "Google" or (provider is None and _GOOGLE.match(voice)):
        found = _GOOGLE.match(voice)
        if found is None:
            return f"'{voice}' is not a Google voice name such as en-US-Journey-O or en-US-Chirp3-HD-Aoede"
        return _language(voice, found.group(1), language)
    if provider == "Amazon":
        name, _, engine = voice.partition("-")
        if name not in AMAZON_VOICES:
            hint = did_you_mean(name, AMAZON_VOICES) or " (ivr's table is a subset: check Twilio's list)"
            return f"unknown Amazon voice '{voice}'{hint}"
        if engine and engine not in AMAZON_ENGINES:
            return f"Amazon voice '{voice}': engine '{engine}' is not one of {', '.join(AMAZON_ENGINES)}"
        return _language(voice, AMAZON_VOICES[name], language)
    return None


def _language(voice: str, speaks: str, language: str) -> str | None:
    if language and speaks.lower().split("-")[0] != language.lower().split("-")[0]:
        return f"voice '{voice}' speaks {speaks}, not the conversation's language {language}"
    return None
