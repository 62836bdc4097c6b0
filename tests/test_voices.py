"""The voice table (engines, languages) and the warnings `check` gives about voices and the SSML they speak."""

from __future__ import annotations

import pytest

from ivr.core import voices
from ivr.core.lint import run_checks

LANGUAGES = "en-US en-GB en-AU en-IN es-ES es-MX es-US fr-FR fr-CA de-DE it-IT pt-BR pt-PT ja-JP nl-NL hi-IN"


@pytest.mark.parametrize(
    ("voice", "engine", "language"),
    [
        ("Polly.Joanna", "polly-standard", "en-US"),
        ("Polly.Joanna-Neural", "polly-neural", "en-US"),
        ("Polly.Joanna-Generative", "polly-generative", "en-US"),
        ("Polly.Mia-Neural", "polly-neural", "es-MX"),
        ("Polly.Aditi", "polly-standard", "hi-IN"),
        ("Google.en-US-Standard-C", "google-standard", "en-US"),
        ("Google.en-US-Wavenet-D", "google-wavenet", "en-US"),
        ("Google.en-US-Neural2-F", "google-neural2", "en-US"),
        ("Google.en-US-Chirp3-HD-Aoede", "google-chirp3-hd", "en-US"),
        ("alice", "basic", "ja-JP"),
        ("man", "basic", "en-gb"),
    ],
)
def test_the_table_knows_each_voices_engine_and_languages(voice, engine, language):
    assert voices.is_known(voice)
    assert voices.engine_of(voice) == engine
    assert language in voices.languages_of(voice)


@pytest.mark.parametrize("language", LANGUAGES.split())
def test_every_listed_language_has_polly_and_a_basic_voice(language):
    speakers = {voices.engine_of(v) for v, (_, langs) in voices.VOICES.items() if language in langs}
    assert "polly-standard" in speakers or "polly-neural" in speakers
    assert speakers & {"google-standard", "google-wavenet"} or language == "es-MX"  # Google speaks es-US there


def test_an_unknown_voice_of_a_known_form_still_has_an_engine():
    assert voices.engine_of("Polly.Newvoice-Generative") == "polly-generative"
    assert voices.engine_of("Google.sv-SE-Wavenet-A") == "google-wavenet"
    assert voices.engine_of("Robot") is None


@pytest.mark.parametrize(
    ("voice", "language", "problem"),
    [
        ("Polly.Joanna", "en-US", None),
        ("Polly.Joanna-Neural", "en-us", None),
        ("Polly.Joana", None, "unknown voice 'Polly.Joana' (did you mean 'Polly.Joanna'?)"),
        ("polly.joanna", None, "unknown voice 'polly.joanna' (voice names are case-sensitive: 'Polly.Joanna')"),
        ("Polly.Mia-Neural", "en-US", "Polly.Mia-Neural does not speak en-US (it speaks es-MX)"),
        ("Polly.Celine-Neural", None, "Polly.Celine has no neural form (it has: standard)"),
        ("Polly.Hans-Generative", None, "Polly.Hans has no generative form (it has: standard)"),
        ("man", "ja-JP", "man does not speak ja-JP (it speaks de, en, en-gb, es, fr)"),
    ],
)
def test_voice_problems_say_what_twilio_would_not_do(voice, language, problem):
    assert voices.voice_problem(voice, language) == problem


@pytest.mark.parametrize(
    ("voice", "allowed"),
    [("Polly.Joanna", 3000), ("Polly.Lupe-Generative", 3000), ("Google.en-US-Wavenet-D", 5000), ("woman", 4096),
     (None, 4096)],
)  # fmt: skip
def test_say_limits_follow_twilios_13521(voice, allowed):
    assert voices.say_limit(voice) == allowed
    text = "a" * min(allowed, voices.URL_ENCODED_LIMIT)  # no text passes 4,500 characters URL-encoded
    assert voices.say_length_problem(voice, text, text) is None
    assert "Twilio's limit" in voices.say_length_problem(voice, "a" * (allowed + 1), "a" * (allowed + 1))


def test_polly_has_no_currency_and_google_no_digits_reading():
    assert not voices.say_as_supported("polly-neural", "currency")
    assert voices.say_as_supported("google-wavenet", "currency")
    assert voices.say_as_supported("polly-standard", "digits")
    assert not voices.say_as_supported("google-neural2", "digits")


FLOW = """\
defaults: {voice: Polly.Joana, language: en-US}
start: a
states:
  a:
    say: {text: Hola, voice: Polly.Mia-Neural}
    next: b
  b:
    say:
      text:
        - emphasis: really
        - spell: ABC
        - prosody: {text: high, pitch: high}
      voice: Polly.Joanna-Neural
    next: c
  c:
    say: {text: [Hi, {break: 1s}], voice: alice}
    next: d
  d:
    say: {text: Bonjour, voice: Polly.Celine-Neural, language: fr-FR}
    hangup: true
"""


def test_check_warns_on_voices_and_ssml_at_their_keys(tmp_path):
    (tmp_path / "v.yaml").write_text(FLOW, encoding="utf-8")
    report = run_checks([str(tmp_path / "v.yaml")])
    assert not report.failed()
    assert [(p.line, p.column, p.severity, p.path, p.message) for p in report.problems] == [
        (1, 19, "warning", "defaults.voice", "unknown voice 'Polly.Joana' (did you mean 'Polly.Joanna'?)"),
        (5, 30, "warning", "states.a.say.voice", "Polly.Mia-Neural does not speak en-US (it speaks es-MX)"),
        (10, 11, "warning", "states.b.say",
         "polly-neural voices do not support <emphasis> (Polly.Joanna-Neural); the caller hears the words without it"),
        (11, 11, "warning", "states.b.say",
         "Polly's neural voices say a sentence with spell: in the standard voice (Polly.Joanna-Neural)"),
        (12, 11, "warning", "states.b.say",
         "polly-neural voices ignore prosody pitch (rate and volume work) (Polly.Joanna-Neural); the caller hears"
         " the words without it"),
        (16, 10, "warning", "states.c.say",
         "basic voices (man, woman, alice) take no SSML: alice says these parts as plain text"),
        (19, 33, "warning", "states.d.say.voice", "Polly.Celine has no neural form (it has: standard)"),
    ]  # fmt: skip
