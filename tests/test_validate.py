"""Graph checks at load: targets, outcomes with nowhere to go, loops, Twilio's limits, reject's place."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_flows import BAD, assert_mistake, assert_one_error, errors_of

from ivr.core.loader import load_flow, load_flow_text, load_flows
from ivr.errors import FlowError, FlowLoadError


def load(text: str):
    return load_flow_text(text, "t.yaml", "t")


def load_errors(text: str) -> list[FlowError]:
    with pytest.raises(FlowLoadError) as info:
        load(text)
    return info.value.errors


# file, line, column, key path, message (a substring)
MISTAKES = [
    ("unknown_target_route.yaml", 7, 12, 'states.menu.routes."2"', "unknown state 'biling' (did you mean 'billing'?)"),
    ("unknown_target_next.yaml", 5, 11, "states.welcome.next", "unknown state 'goodbey' (did you mean 'goodbye'?)"),
    (
        "unknown_target_when.yaml",
        6,
        15,
        "states.check.when[0].next",
        "unknown state 'mornin' (did you mean 'morning'?)",
    ),
    ("unknown_start.yaml", 1, 8, "start", "unknown state 'welcom' (did you mean 'welcome'?)"),
    ("gather_without_routes.yaml", 5, 13, "states.menu.gather", "a gather needs routes (or next for any input)"),
    (
        "dial_without_next.yaml",
        4,
        11,
        "states.sales",
        "outcomes busy, no-answer, failed, canceled have nowhere to go: add next: STATE",
    ),
    ("record_without_next.yaml", 5, 13, "states.voicemail", "outcomes recorded, no_recording have nowhere to go"),
    ("waits_for_nothing.yaml", 4, 5, "states.welcome", "the state waits for nothing and has no next: add next: STATE"),
    ("input_less_cycle.yaml", 4, 5, "states.one", "wait for nothing and loop forever: one -> two -> three -> one"),
    (
        "reject_with_prompt.yaml",
        5,
        13,
        "states.blocked.reject",
        "reject only works as the first verb of a call's first",
    ),
    ("reject_after_menu.yaml", 8, 13, "states.blocked.reject", "reject only works as the first verb of a call's first"),
    (
        "reject_reached_from_menu.yaml",
        13,
        13,
        "states.blocked.reject",
        "reject is reached from state 'menu' after the call was answered; use hangup there",
    ),
    (
        "hash_route_default_finish.yaml",
        6,
        25,
        'states.menu.routes."#"',
        "'#' is the gather's finish key (the default) and can never be pressed as input",
    ),
    ("chain_over_64k.yaml", 4, 5, "states.part1", "make a TwiML document of about"),
    (
        "dial_route_not_outcome.yaml",
        5,
        14,
        "states.sales.routes.no_answer",
        "not an outcome of dial (did you mean 'no-answer'?); outcomes: completed,",
    ),
    ("when_without_next.yaml", 5, 13, "states.check.when", "conditions need a default: add next: STATE"),
]


@pytest.mark.parametrize(("name", "line", "column", "path", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_reported_at_its_position(name, line, column, path, message):
    assert_mistake(name, line, column, path, message)


@pytest.mark.parametrize("name", [m[0] for m in MISTAKES])
def test_one_mistake_gives_one_error(name):
    assert_one_error(name)


def test_oversize_chain_message_says_how_big_and_what_to_do():
    [error] = errors_of("chain_over_64k.yaml")
    size = int(error.message.split("about ")[1].split(" bytes")[0])
    assert size > 17 * 4000
    assert error.message.endswith("over Twilio's 64 kB; add a gather or split the text")


# -- on_max --------------------------------------------------------------------------------------


def test_unknown_on_max_target_is_an_error_with_did_you_mean():
    errors = errors_of("unknown_target_on_max.yaml")
    assert {(e.line, e.column, e.message) for e in errors} == {
        (7, 13, "unknown state 'goodby' (did you mean 'goodbye'?)"),
    }


def test_unknown_on_max_target_is_one_error_at_its_key():
    [error] = errors_of("unknown_target_on_max.yaml")
    assert error.path == "states.menu.on_max"


def test_unknown_default_on_max_is_one_error_at_its_key():
    [error] = errors_of("unknown_default_on_max.yaml")
    assert (error.line, error.column, error.path) == (1, 20, "defaults.on_max")
    assert error.message == "unknown state 'goodby' (did you mean 'goodbye'?)"


def test_unknown_handler_on_max_path_names_the_key():
    [error] = errors_of("unknown_handler_on_max.yaml")
    assert (error.line, error.column) == (7, 32)
    assert error.path == "states.menu.no_input.on_max"


def test_on_max_on_a_state_without_gather_is_an_error():
    errors = errors_of("on_max_without_gather.yaml")
    assert [(e.line, e.path) for e in errors] == [(6, "states.sales.on_max")]


# -- redirects -----------------------------------------------------------------------------------


def test_redirect_to_unknown_flow_or_state_is_an_error_when_loading_the_directory():
    with pytest.raises(FlowLoadError) as info:
        load_flows(BAD / "unknown_flow")
    assert [(Path(e.file).name, e.line, e.column, e.path, e.message) for e in info.value.errors] == [
        (
            "hours.yaml",
            5,
            15,
            "states.hours.redirect.state",
            "flow 'main' has no state 'welcom' (did you mean 'welcome'?)",
        ),
        ("main.yaml", 7, 15, "states.hours.redirect.flow", "unknown flow 'hour' (did you mean 'hours'?)"),
    ]


def test_one_file_alone_does_not_judge_redirects_to_other_flows():
    flow = load_flow(BAD / "unknown_flow" / "main.yaml")
    assert flow.states["hours"].action.flow == "hour"


def test_silent_redirect_loop_is_an_error():
    errors = errors_of("redirect_loop.yaml")
    assert any("loop" in e.message for e in errors)


# -- Twilio's limits -----------------------------------------------------------------------------

SAY = "defaults: {voice: %s}\nstart: a\nstates:\n  a:\n    say: %s\n    hangup: true\n"


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("say_too_long_polly.yaml", 8, "Say text is 3001 bytes; Twilio's limit for voice Polly.Joanna is 3000"),
        ("say_too_long_basic.yaml", 4, "Say text is 4097 bytes; Twilio's limit for voice default is 4096"),
    ],
)
def test_say_over_the_voice_limit_is_an_error(name, line, message):
    [error] = errors_of(name)
    assert (error.line, error.column) == (line, 10)
    assert error.message == message + " (split it into several prompts)"


def test_say_over_the_limit_names_the_key_as_written():
    [error] = errors_of("say_too_long_polly.yaml")
    assert error.path == "states.story.say"


@pytest.mark.parametrize(
    ("voice", "text"),
    [("Polly.Joanna", "a" * 3000), ("alice", "a" * 4096), ("Polly.Joanna", "é" * 750)],
    ids=["polly-3000", "basic-4096", "polly-accents-at-4500-url-encoded"],
)
def test_say_at_the_limit_loads(voice, text):
    flow = load(SAY % (voice, text))
    assert flow.states["a"].prompts[0].text.source == text


def test_say_limit_counts_bytes_not_characters():
    [error] = load_errors(SAY % ("Polly.Joanna", "é" * 1501))
    assert error.message.startswith("Say text is 3002 bytes; Twilio's limit for voice Polly.Joanna is 3000")


def test_say_limit_counts_url_encoded_characters_too():
    """Twilio's 13521: whatever the voice, the text URL-encoded is at most 4,500 characters (é is %C3%A9)."""
    [error] = load_errors(SAY % ("Polly.Joanna", "é" * 751))
    assert error.message.startswith("Say text is 4506 characters URL-encoded; Twilio's limit is 4500")


@pytest.mark.parametrize(
    ("voice", "text", "limit"),
    [
        ("Google.en-US-Neural2-F", "a" * 5001, 5000),
        ("Polly.Joanna-Neural", "a" * 3001, 3000),
        ("man", "a" * 4097, 4096),
    ],
)
def test_say_limit_follows_the_voices_engine(voice, text, limit):
    [error] = load_errors(SAY % (voice, text))
    assert f"Twilio's limit for voice {voice} is {limit}" in error.message


def test_polly_does_not_count_ssml_tags_and_google_does():
    def parts(letters: int) -> str:
        return "[" + ", ".join(["{break: 1s}"] * 100 + ["a" * letters]) + "]"

    assert load(SAY % ("Polly.Joanna", parts(2990))).states["a"].prompts[0].parts
    [error] = load_errors(SAY % ("Google.en-US-Neural2-F", parts(4000)))
    assert "with its SSML tags; Twilio's limit for voice Google.en-US-Neural2-F is 5000" in error.message


def test_polly_limit_is_lower_than_basic():
    [error] = load_errors(SAY % ("Polly.Joanna", "a" * 4000))
    assert (error.line, error.column) == (5, 10)
    assert "limit for voice Polly.Joanna is 3000" in error.message


# -- finish keys and reject ----------------------------------------------------------------------

HASH_MENU = (
    'start: m\nstates:\n  m:\n    gather: {finish_on_key: %s}\n    routes: {"1": b, "%s": b}\n  b:\n    hangup: true\n'
)


def test_hash_route_loads_when_finish_on_key_is_empty():
    flow = load(HASH_MENU % ('""', "#"))
    assert [r.outcome for r in flow.states["m"].routes] == ["1", "#"]
    assert flow.states["m"].action.finish_on_key == ""


def test_route_on_a_chosen_finish_key_is_an_error_without_default():
    [error] = load_errors(HASH_MENU % ('"*"', "*"))
    assert (error.line, error.column, error.path) == (5, 22, 'states.m.routes."*"')
    assert error.message.startswith("'*' is the gather's finish key and can never be pressed as input")


def test_reject_as_the_first_state_loads():
    flow = load("start: blocked\nstates:\n  blocked:\n    reject: busy\n")
    assert flow.states["blocked"].action.reason == "busy"
