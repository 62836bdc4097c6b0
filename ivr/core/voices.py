"""The voices Twilio's <Say> speaks with: each voice's engine and languages, what SSML each engine
takes, and how long a <Say> may be (Twilio's warning 13521).

Where the facts come from (read in 2026): Twilio's "<Say>" and "Text-to-speech" pages and its
error 13521 page; Amazon Polly's "Available voices" and "Supported SSML tags" pages and its
<say-as> page; Google Cloud Text-to-Speech's voice list and SSML reference. The table is an honest
subset (the languages of docs/flows.md's "Voices" section, the voices known to exist there) and
can lag Twilio, which adds voices often: what it does not know is a warning of `check`, never an
error, and the voice is written into the TwiML as the flow says.
"""

from __future__ import annotations

import re
import urllib.parse

from ivr.core.hints import did_you_mean

__all__ = [
    "ENGINES",
    "VOICES",
    "engine_of",
    "is_known",
    "languages_of",
    "say_as_supported",
    "say_length_problem",
    "say_limit",
    "ssml_problem",
    "voice_problem",
]

ENGINES = ("basic", "polly-standard", "polly-neural", "polly-generative", "google-standard", "google-wavenet",
           "google-neural2", "google-chirp3-hd")  # fmt: skip

# Amazon Polly, by engine then language: the voice names Polly lists there.
_POLLY = {
    "polly-standard": {
        "en-US": "Ivy Joanna Kendra Kimberly Salli Joey Justin Kevin Matthew",
        "en-GB": "Amy Emma Brian",
        "en-AU": "Nicole Russell",
        "en-IN": "Aditi Raveena",
        "es-ES": "Conchita Lucia Enrique",
        "es-MX": "Mia",
        "es-US": "Lupe Penelope Miguel",
        "fr-FR": "Celine Lea Mathieu",
        "fr-CA": "Chantal",
        "de-DE": "Marlene Vicki Hans",
        "it-IT": "Carla Bianca Giorgio",
        "pt-BR": "Camila Vitoria Ricardo",
        "pt-PT": "Ines Cristiano",
        "ja-JP": "Mizuki Takumi",
        "nl-NL": "Lotte Ruben",
        "hi-IN": "Aditi",
    },
    "polly-neural": {
        "en-US": "Danielle Gregory Ivy Joanna Kendra Kimberly Salli Joey Justin Kevin Matthew Ruth Stephen",
        "en-GB": "Amy Emma Brian Arthur",
        "en-AU": "Olivia",
        "en-IN": "Kajal",
        "es-ES": "Lucia Sergio",
        "es-MX": "Mia Andres",
        "es-US": "Lupe Pedro",
        "fr-FR": "Lea Remi",
        "fr-CA": "Gabrielle Liam",
        "de-DE": "Vicki Daniel",
        "it-IT": "Bianca Adriano",
        "pt-BR": "Camila Vitoria Thiago",
        "pt-PT": "Ines",
        "ja-JP": "Takumi Kazuha Tomoko",
        "nl-NL": "Laura",
        "hi-IN": "Kajal",
    },
    "polly-generative": {
        "en-US": "Danielle Joanna Matthew Ruth Salli Stephen",
        "en-GB": "Amy Brian",
        "en-AU": "Olivia",
        "en-IN": "Kajal",
        "es-ES": "Lucia Sergio",
        "es-MX": "Mia Andres",
        "es-US": "Lupe Pedro",
        "fr-FR": "Lea Remi",
        "fr-CA": "Gabrielle Liam",
        "de-DE": "Vicki Daniel",
        "it-IT": "Bianca Adriano",
        "pt-BR": "Camila",
        "pt-PT": "Ines",
        "nl-NL": "Laura",
        "hi-IN": "Kajal",
    },
}
_POLLY_SUFFIX = {"polly-standard": "", "polly-neural": "-Neural", "polly-generative": "-Generative"}

# Google, by language: the variants of Standard, WaveNet and Neural2 voices (one letter each).
_GOOGLE = {
    "en-US": ("ABCDEFGHIJ", "ABCDEFGHIJ", "ACDEFGHIJ"),
    "en-GB": ("ABCDF", "ABCDF", "ABCDF"),
    "en-AU": ("ABCD", "ABCD", "ABCD"),
    "en-IN": ("ABCD", "ABCD", "ABCD"),
    "es-ES": ("ABCD", "BCD", "ABCDEF"),
    "es-US": ("ABC", "ABC", "ABC"),
    "fr-FR": ("ABCDE", "ABCDE", "ABCDE"),
    "fr-CA": ("ABCD", "ABCD", "ABCD"),
    "de-DE": ("ABCDEF", "ABCDEF", "ABCDF"),
    "it-IT": ("ABCD", "ABCD", "AC"),
    "pt-BR": ("ABC", "ABC", "ABC"),
    "pt-PT": ("ABCD", "ABCD", ""),
    "ja-JP": ("ABCD", "ABCD", "BCD"),
    "nl-NL": ("ABCDE", "ABCDE", ""),
    "hi-IN": ("ABCD", "ABCD", "ABCD"),
}
# Chirp 3: HD voices are named, and each speaks these languages.
_CHIRP_NAMES = "Aoede Charon Fenrir Kore Leda Orus Puck Zephyr"
_CHIRP_LANGUAGES = "en-US en-GB en-AU en-IN es-ES es-US fr-FR fr-CA de-DE it-IT pt-BR ja-JP nl-NL hi-IN"

# Twilio's basic voices: man and woman speak five languages; alice many locales.
_BASIC = {
    "man": "en en-gb es fr de",
    "woman": "en en-gb es fr de",
    "alice": "da-DK de-DE en-AU en-CA en-GB en-IN en-US ca-ES es-ES es-MX fi-FI fr-CA fr-FR it-IT ja-JP ko-KR nb-NO"
    " nl-NL pl-PL pt-BR pt-PT ru-RU sv-SE zh-CN zh-HK zh-TW",
}


def _table() -> dict[str, tuple[str, frozenset[str]]]:
    """voice -> (engine, its languages), every name exactly as <Say voice> takes it."""
    out: dict[str, tuple[str, set[str]]] = {name: ("basic", set(langs.split())) for name, langs in _BASIC.items()}
    for engine, by_language in _POLLY.items():
        for language, names in by_language.items():
            for name in names.split():
                out.setdefault(f"Polly.{name}{_POLLY_SUFFIX[engine]}", (engine, set()))[1].add(language)
    for language, letters in _GOOGLE.items():
        kinds = (("Standard", "google-standard"), ("Wavenet", "google-wavenet"), ("Neural2", "google-neural2"))
        for (kind, engine), variants in zip(kinds, letters, strict=True):
            for letter in variants:
                out[f"Google.{language}-{kind}-{letter}"] = (engine, {language})
    for language in _CHIRP_LANGUAGES.split():
        for name in _CHIRP_NAMES.split():
            out[f"Google.{language}-Chirp3-HD-{name}"] = ("google-chirp3-hd", {language})
    return {voice: (engine, frozenset(langs)) for voice, (engine, langs) in out.items()}


VOICES = _table()
_LOWER = {voice.lower(): voice for voice in VOICES}
_GOOGLE_FORM = re.compile(r"Google\.([a-z]{2,3}-[A-Z]{2})-(Standard|Wavenet|Neural2|Chirp3-HD|Chirp-HD|Studio|News)-")
_GOOGLE_ENGINES = {"Standard": "google-standard", "Wavenet": "google-wavenet", "Neural2": "google-neural2",
                   "Chirp3-HD": "google-chirp3-hd"}  # fmt: skip


def is_known(voice: str) -> bool:
    """Whether the table knows the voice (names are case-sensitive, as Twilio takes them)."""
    return voice in VOICES


def engine_of(voice: str | None) -> str | None:
    """The engine that speaks a voice (one of ENGINES), also for voices the table lacks but whose form
    says it (Polly.X-Neural, Google.xx-YY-Wavenet-Z); None when nothing says."""
    if not voice:
        return None
    if voice in VOICES:
        return VOICES[voice][0]
    if voice.lower() in _BASIC:
        return "basic"
    if voice.startswith("Polly."):
        return "polly-generative" if voice.endswith("-Generative") else (
            "polly-neural" if voice.endswith("-Neural") else "polly-standard")  # fmt: skip
    if match := _GOOGLE_FORM.match(voice):
        return _GOOGLE_ENGINES.get(match.group(2), "google-standard")
    return None


def languages_of(voice: str) -> frozenset[str]:
    """The languages a known voice speaks (empty for a voice the table does not know)."""
    return VOICES[voice][1] if voice in VOICES else frozenset()


def voice_problem(voice: str, language: str | None) -> str | None:
    """Why `voice` (speaking `language`, when given) may not work on Twilio, or None: a warning (the table can lag)."""
    if voice not in VOICES:
        if voice.lower() in _LOWER:
            return f"unknown voice '{voice}' (voice names are case-sensitive: '{_LOWER[voice.lower()]}')"
        base = re.sub(r"-(Neural|Generative)\Z", "", voice)
        if voice.startswith("Polly.") and base != voice:
            forms = [_POLLY_SUFFIX[e].strip("-").lower() or "standard" for e in _POLLY_SUFFIX
                     if base + _POLLY_SUFFIX[e] in VOICES]  # fmt: skip
            if forms:
                return f"{base} has no {voice[len(base) + 1 :].lower()} form (it has: {', '.join(forms)})"
        hint = did_you_mean(voice, VOICES) or " (Twilio's text-to-speech page lists its voices; this table may lag it)"
        return f"unknown voice '{voice}'{hint}"
    spoken = VOICES[voice][1]
    if language and language.lower() not in {s.lower() for s in spoken}:
        return f"{voice} does not speak {language} (it speaks {', '.join(sorted(spoken))})"
    return None


# -- SSML: what each engine takes -----------------------------------------------------------------

# Elements each engine speaks. Basic voices take no SSML; Polly's neural and generative engines no
# <emphasis>; Google's Chirp 3: HD voices take no SSML markup.
_ALL = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"})
_TAGS = {
    "basic": frozenset(),
    "polly-standard": _ALL,
    "polly-neural": _ALL - {"emphasis"},
    "polly-generative": _ALL - {"emphasis"},
    "google-standard": _ALL,
    "google-wavenet": _ALL,
    "google-neural2": _ALL,
    "google-chirp3-hd": frozenset(),
}
# <say-as interpret-as> values: Polly has no currency; Google no digits (it spells them with characters).
_POLLY_SAY_AS = frozenset({"characters", "spell-out", "cardinal", "number", "ordinal", "digits", "fraction", "unit",
                           "date", "time", "address", "expletive", "telephone"})  # fmt: skip
_GOOGLE_SAY_AS = frozenset({"currency", "telephone", "verbatim", "spell-out", "characters", "cardinal", "ordinal",
                            "fraction", "expletive", "bleep", "unit", "date", "time"})  # fmt: skip


def say_as_supported(engine: str | None, interpret_as: str) -> bool:
    """Whether an engine reads <say-as interpret-as=...>; unknown engines are given the benefit of the doubt."""
    if engine is None:
        return True
    if engine.startswith("polly"):
        return interpret_as in _POLLY_SAY_AS
    if engine.startswith("google"):
        return interpret_as in _GOOGLE_SAY_AS and engine != "google-chirp3-hd"
    return False


def ssml_problem(engine: str | None, tag: str, attrs: dict | None = None) -> str | None:
    """Why an engine would not speak an SSML element as written, or None."""
    if engine is None:
        return None
    if engine == "basic":
        return "basic voices (man, woman, alice) take no SSML: choose a Polly or Google voice"
    if tag not in _TAGS[engine]:
        if engine == "google-chirp3-hd":
            return "Google's Chirp 3: HD voices take no SSML markup"
        return f"{engine} voices do not support <{tag}>"
    if tag == "prosody" and engine in ("polly-neural", "polly-generative") and (attrs or {}).get("pitch"):
        return f"{engine} voices ignore prosody pitch (rate and volume work)"
    return None


# -- lengths (Twilio's 13521) ---------------------------------------------------------------------

URL_ENCODED_LIMIT = 4500


def say_limit(voice: str | None) -> int:
    """Twilio's <Say> text limit for a voice, in UTF-8 bytes: Polly 3,000, Google 5,000, basic voices 4,096."""
    engine = engine_of(voice) or ""
    return 3000 if engine.startswith("polly") else 5000 if engine.startswith("google") else 4096


def say_length_problem(voice: str | None, spoken: str, markup: str) -> str | None:
    """Why a <Say> is over Twilio's limits (warning 13521), or None. `spoken` is its text without SSML
    tags, `markup` its content as serialised (tags, newlines and spaces included): Polly counts the
    first, Google the second, basic voices the text; no text may pass 4,500 characters URL-encoded."""
    engine = engine_of(voice) or ""
    counted = markup if engine.startswith("google") else spoken
    size, limit = len(counted.encode("utf-8")), say_limit(voice)
    what = " with its SSML tags" if engine.startswith("google") and markup != spoken else ""
    if size > limit:
        return f"Say text is {size} bytes{what}; Twilio's limit for voice {voice or 'default'} is {limit}"
    # The text, not its tags: were tags counted here too, Google's 5,000 (tags included) could never be reached.
    encoded = len(urllib.parse.quote_plus(spoken))
    if encoded > URL_ENCODED_LIMIT:
        return f"Say text is {encoded} characters URL-encoded; Twilio's limit is {URL_ENCODED_LIMIT}"
    return None
