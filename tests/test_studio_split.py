"""Studio's Split Based On: every condition type, as `when:` tests, on the phone and in a truth table.

Pinned from Twilio's widget library (Split Based On): conditions are tried in order and the first
match wins; No Match takes the rest at once. Text comparisons ignore case and trim spaces; `matches any of` is a
comma-separated list; greater/less than compare numbers (text that is no number matches neither).
"""

from __future__ import annotations

import pytest
from studio_support import fixtures_for, strict_problems

from ivr.core.templates import compile_condition, evaluate
from ivr.studio.model import Condition
from ivr.studio.split import test as condition_test

flows, ivr_app = fixtures_for("split_conditions")


def test_the_imported_splits_pass_check_strict(flows, phone):
    assert strict_problems(flows) == []


@pytest.mark.parametrize(
    ("keys", "heard"),
    [
        ("1234#", "More than a thousand."),  # greater_than 1000
        ("421#", "The answer."),  # regex ^42
        ("77#", "Sevens."),  # starts_with 7
        ("5#", "Less than ten."),  # less_than 10
        ("55#", "Not ninety-nine."),  # not_equal_to 99
        ("99#", "No match."),  # noMatch
        ("1000#", "Not ninety-nine."),  # not greater than 1000: the next condition that matches wins
    ],
)
def test_keys_take_the_first_condition_that_matches(phone, keys, heard):
    call = phone.dial("split_conditions")
    call.press(keys)
    assert call.heard == [heard]
    assert call.ended


@pytest.mark.parametrize(
    ("speech", "heard"),
    [
        ("YES", "You said yes."),  # equal_to "Yes", whatever the case
        ("Nope", "You said no."),  # matches_any_of "no, nope"
        ("I need HELP now", "Help is coming."),  # contains "help"
        ("definitely", "Something else."),  # does_not_match_any_of "maybe, perhaps"
        ("Perhaps", "No match."),
    ],
)
def test_speech_takes_the_first_condition_that_matches(phone, speech, heard):
    call = phone.dial("split_conditions")
    call.say(speech, confidence=0.9)
    assert call.heard == [heard]


def test_silence_leaves_the_variable_blank(phone):
    call = phone.dial("split_conditions")
    call.wait()
    assert call.heard == ["Nothing entered."]  # is_not_blank fails, is_blank matches


CASES = [
    ("equal_to", "Yes", [("yes", True), ("YES", True), ("yes!", False), ("  yes ", True)]),
    # "Studio conditions ... automatically trim leading and trailing spaces of the values" (Split Based On)
    ("equal_to", " Yes  ", [("yes", True), (" YES", True)]),
    ("not_equal_to", "99", [("99", False), ("9", True), ("", True), (" 99 ", False)]),
    ("matches_any_of", "no, Nope ,nah", [("nope", True), ("NAH", True), ("n", False)]),
    ("does_not_match_any_of", "a,b", [("a", False), ("c", True)]),
    ("contains", "Help", [("please help me", True), ("hel", False)]),
    ("does_not_contain", "x", [("abc", True), ("xyz", False)]),
    ("starts_with", "+44", [("+447700900000", True), ("+15551230000", False), (" +4477", True)]),
    ("regex", "^[0-9]{4}$", [("1234", True), ("12345", False), ("12a4", False)]),
    ("is_blank", "", [("", True), ("   ", True), (None, True), ("x", False), (0, False)]),
    ("is_not_blank", "", [("", False), ("x", True), (0, True)]),
    ("greater_than", "10", [("11", True), ("10", False), ("9.5", False), ("abc", False), (12, True)]),
    ("less_than", "10", [("-3", True), ("10", False), ("ten", False), ("", False)]),
]


@pytest.mark.parametrize(("kind", "value", "rows"), CASES, ids=[c[0] for c in CASES])
def test_every_condition_type_reads_as_studio_does(kind, value, rows):
    jinja = condition_test("answer", Condition("", kind, ("{{flow.variables.answer}}",), value))
    condition = compile_condition(jinja)
    for subject, expected in rows:
        assert evaluate(condition, {"answer": subject}) is expected, (kind, value, subject, jinja)


def test_a_condition_type_without_an_equivalent_is_none():
    assert condition_test("answer", Condition("", "greater_than", (), "ten")) is None
    assert condition_test("answer", Condition("", "is_before_time", (), "09:00")) is None


def _dial_then_split(conditions, sources=1):
    from ivr.studio.model import Context, read_definition

    transitions = [{"event": "noMatch", "next": "bye"}] + [
        {"event": "match", "next": nxt, "conditions": [{"arguments": [], "type": kind, "value": value}]}
        for nxt, kind, value in conditions
    ]
    states = [
        {"name": "Trigger", "type": "trigger", "transitions": [{"event": "incomingCall", "next": "transfer"}]},
        {"name": "transfer", "type": "connect-call-to", "transitions": [{"event": "callCompleted", "next": "status"}]},
        {
            "name": "status",
            "type": "split-based-on",
            "transitions": transitions,
            "properties": {"input": "{{widgets.transfer.DialCallStatus}}"},
        },
        {"name": "voicemail", "type": "say-play", "transitions": []},
        {
            "name": "bye",
            "type": "say-play",
            "transitions": [{"event": "audioComplete", "next": "status"}] * (sources - 1),
        },
    ]
    ctx = Context(read_definition({"states": states}, "flow.json"))
    return ctx, ctx.definition.widget("transfer")


def test_absorb_split_folds_a_dial_status_split_into_routes():
    from ivr.studio.split import absorb_split

    ctx, transfer = _dial_then_split(
        [("voicemail", "matches_any_of", "busy, no-answer"), ("bye", "equal_to", "failed")]
    )
    outcomes = ("completed", "busy", "no-answer", "failed", "canceled")
    found = absorb_split(transfer, "callCompleted", "DialCallStatus", ctx, accept=lambda v: v in outcomes)
    assert found == ({"busy": "voicemail", "no-answer": "voicemail", "failed": "bye"}, "bye")
    assert ctx.state_of("status") == "transfer"  # whatever led to the split now leads to the dial


@pytest.mark.parametrize(
    ("conditions", "sources"),
    [
        ([("voicemail", "contains", "busy")], 1),  # not an exact value: the split stays a state
        ([("voicemail", "equal_to", "ringing")], 1),  # a value `accept` refuses
        ([("voicemail", "equal_to", "busy")], 2),  # another widget leads to the split too
    ],
)
def test_absorb_split_leaves_a_split_it_cannot_fold(conditions, sources):
    from ivr.studio.split import absorb_split

    ctx, transfer = _dial_then_split(conditions, sources)
    assert absorb_split(transfer, "callCompleted", "DialCallStatus", ctx, accept=lambda v: v != "ringing") is None
    assert ctx.absorbed == {}
