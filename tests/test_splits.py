"""A/B splits (`split:`): how they are written and checked, and which variant each caller hears."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bad_flows import assert_mistake, assert_one_error

from ivr.core.engine import Engine, new_session
from ivr.core.graph import graph_data, mermaid
from ivr.core.loader import load_flow, load_flow_text
from ivr.core.splits import bucket, caller_key, is_anonymous
from ivr.errors import FlowLoadError
from ivr.testing import phone_for

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SPLITS = Path(__file__).resolve().parent / "flows" / "splits"
GREETING = load_flow(SPLITS / "greeting.yaml")
VARIANTS = {"greeting_new", "greeting_old"}


def flow_text(state: str, *, shares: str = "greeting_new: 90, greeting_old: 10") -> str:
    """A flow whose start state `greeting` is `state` (flow-style contents), its variants after it."""
    return (
        "start: greeting\nstates:\n"
        f"  greeting: {{{state.format(shares=shares)}}}\n"
        "  greeting_new: {say: New., hangup: true}\n"
        "  greeting_old: {say: Old., hangup: true}\n"
    )


def errors(text: str) -> list[str]:
    with pytest.raises(FlowLoadError) as info:
        load_flow_text(text, "t.yaml", "t")
    return [e.format() for e in info.value.errors]


def enter(engine: Engine, session: dict | None = None, **params):
    """A call entering the flow: its first step."""
    params.setdefault("CallSid", "CA" + "0" * 32)
    return engine.start(session or new_session(engine.flow.id), params, NOW)


# -- the flow language ---------------------------------------------------------------------------

MISTAKES = [
    (
        "split_unknown_target.yaml",
        6,
        7,
        "states.greeting.split.greeting_odl",
        "unknown state 'greeting_odl' (did you mean 'greeting_old'?)",
    ),
    ("split_shares_not_100.yaml", 4, 12, "states.greeting.split", "the shares must add up to 100"),
    ("split_with_next.yaml", 5, 5, "states.greeting.split", "decides nothing else: remove next"),
]


@pytest.mark.parametrize(("name", "line", "column", "path", "message"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_split_mistake_is_reported_at_its_position(name, line, column, path, message):
    assert_mistake(name, line, column, path, message)
    assert_one_error(name)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            "split: {{greeting_new: 90, greeting_old: 20}}",
            "t.yaml:3:21: error: states.greeting.split: the shares must add up to 100 (percent of callers),"
            " not 90 + 20",
        ),
        (
            "split: {{greeting_new: 100}}",
            "t.yaml:3:36: error: states.greeting.split.greeting_new: must be 1 to 99, got 100",
        ),
        (
            "split: {{greeting_new: 0, greeting_old: 99}}",
            "t.yaml:3:36: error: states.greeting.split.greeting_new: must be 1 to 99, got 0",
        ),
        (
            "split: {{greeting_new: '50', greeting_old: 50}}",
            "t.yaml:3:36: error: states.greeting.split.greeting_new: expected a whole number, got '50'"
            " (quoted, it is text: remove the quotes)",
        ),
        (
            "split: {{}}",
            "t.yaml:3:21: error: states.greeting.split: a split needs at least two variants, each a state and its"
            " share: {a: 50, b: 50}",
        ),
        ("split: [greeting_new]", "t.yaml:3:21: error: states.greeting.split: expected a mapping, got a list"),
        (
            "split: {{'greeting new': 50, greeting_old: 50}}",
            't.yaml:3:22: error: states.greeting.split."greeting new": a state name may use only letters, digits,'
            " '_' and '-', got 'greeting new'",
        ),
        (
            "split: {{{shares}}}, next: greeting_old",
            "t.yaml:3:14: error: states.greeting.split: a split sends each caller on to one of its variants and"
            " decides nothing else: remove next",
        ),
        (
            "split: {{{shares}}}, gather: true, routes: {{'1': greeting_old}}",
            "t.yaml:3:14: error: states.greeting.split: a split sends each caller on to one of its variants and"
            " decides nothing else: remove gather, routes",
        ),
        (
            "split: {{{shares}}}, hangup: true",
            "t.yaml:3:14: error: states.greeting.split: a split sends each caller on to one of its variants and"
            " decides nothing else: remove hangup",
        ),
    ],
)
def test_split_mistakes_are_one_error_each(state, expected):
    assert errors(flow_text(state)) == [expected]


def test_a_split_with_conditions_is_refused_at_its_key():
    found = errors(flow_text("split: {{{shares}}}, when: [{{if: 'true', next: greeting_new}}]"))
    assert found[0] == (
        "t.yaml:3:14: error: states.greeting.split: a split sends each caller on to one of its variants and"
        " decides nothing else: remove when"
    )


def test_a_split_state_may_speak_and_set_variables():
    flow = load_flow_text(flow_text("say: Hi., set: {{a: 1}}, split: {{{shares}}}"), "t.yaml", "t")
    state = flow.states["greeting"]
    assert [(v.target, v.share) for v in state.split] == [("greeting_new", 90), ("greeting_old", 10)]
    assert (state.split[1].pos.line, state.split[1].pos.column) == (3, 63)
    step = enter(Engine(flow), From="+15551230000")
    assert step.twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hi.</Say><Say>')
    assert step.session["vars"] == {"a": 1}


def test_a_split_is_a_state_of_the_machine_with_one_event_per_variant():
    engine = Engine(GREETING)
    for variant in VARIANTS:
        assert engine.events[f"split:{variant}"].transitions["greeting"][0].dest == variant
    assert "next" not in engine.events or "greeting" not in engine.events["next"].transitions


# -- which variant -------------------------------------------------------------------------------


def test_the_bucket_is_sha256_of_flow_state_and_key_mod_100():
    """The formula the docs give, computed here independently."""
    digest = hashlib.sha256(b"greeting\x00greeting\x00+15551230000").digest()
    assert bucket("greeting", "greeting", "+15551230000") == int.from_bytes(digest[:8], "big") % 100
    assert {bucket("f", "s", f"+1555{n:07d}") for n in range(2000)} == set(range(100))


def expected_variant(key: str, flow: str = "greeting", state: str = "greeting", new: int = 90) -> str:
    return "greeting_new" if bucket(flow, state, key) < new else "greeting_old"


def heard_variant(step) -> str:
    return dict(step.splits)["greeting"]


def test_the_same_caller_gets_the_same_variant_on_every_call():
    engine = Engine(GREETING)
    for n in range(50):
        number = f"+1555123{n:04d}"
        first = enter(engine, From=number, CallSid=f"CA{n:032d}")
        again = enter(engine, From=number, CallSid=f"CA{n + 1000:032d}")
        assert heard_variant(first) == heard_variant(again) == expected_variant(number)


def test_variants_follow_the_shares_over_2000_callers():
    engine = Engine(GREETING)
    counts = Counter(heard_variant(enter(engine, From=f"+1415{n:07d}")) for n in range(2000))
    assert 1730 <= counts["greeting_new"] <= 1870, counts  # 90% of 2,000, within five standard deviations
    counts = Counter(dict(enter(engine, From=f"+1415{n:07d}").splits)["offer"] for n in range(2000))
    assert 900 <= counts["offer_a"] <= 1100, counts


@pytest.mark.parametrize(
    "number",
    ["", "  ", "anonymous", "Restricted", " UNKNOWN ", "private", "Unavailable", "+266696687", "+86282452253",
     "+7378742833", "+2562533"],
)  # fmt: skip
def test_an_anonymous_caller_is_split_by_call(number):
    assert is_anonymous(number)
    engine = Engine(GREETING)
    sids = [f"CA{n:032x}" for n in range(200)]
    chosen = [heard_variant(enter(engine, From=number, CallSid=sid)) for sid in sids]
    assert chosen == [expected_variant(sid) for sid in sids]
    assert set(chosen) == VARIANTS  # not one bucket for everyone who withholds the number


def test_a_number_is_not_anonymous():
    assert not is_anonymous("+15551230000")
    assert not is_anonymous("client:alice")
    assert caller_key({"From": " +15551230000 ", "CallSid": "CA1"}) == "+15551230000"


def test_an_outbound_call_is_split_by_the_number_called():
    engine = Engine(GREETING)
    for n in range(100):
        number = f"+1646{n:07d}"
        params = {"From": "+15559870000", "To": number, "Direction": "outbound-api"}
        assert heard_variant(enter(engine, **params)) == expected_variant(number)
    assert (
        caller_key({"From": "+15559870000", "To": "anonymous", "Direction": "outbound-dial", "CallSid": "CA9"}) == "CA9"
    )


def test_step_splits_lists_every_split_the_document_walked_in_order():
    engine = Engine(GREETING)
    step = enter(engine, From="+15551230000")
    greeting, offer = step.splits
    assert (greeting[0], offer[0]) == ("greeting", "offer")
    assert step.walked == ("greeting", greeting[1], "offer", offer[1], "menu")
    assert step.session["splits"] == {"greeting/greeting": greeting[1], "greeting/offer": offer[1]}
    left = engine.resume("menu", step.session, {"From": "+15551230000", "Digits": "2"}, NOW)
    assert left.splits == ()  # this document passed no split


def caller_in(low: int, high: int) -> str:
    """A number whose bucket in the greeting split is in [low, high)."""
    return next(n for n in (f"+1212{i:07d}" for i in range(10_000)) if low <= bucket("greeting", "greeting", n) < high)


def test_a_call_keeps_its_variant_when_the_shares_change_and_a_new_call_follows_them():
    number = caller_in(90, 95)  # old with 90/10, new with 95/5
    before = Engine(GREETING)
    first = enter(before, From=number)
    assert heard_variant(first) == "greeting_old"
    text = (SPLITS / "greeting.yaml").read_text(encoding="utf-8").replace("90\n", "95\n").replace("10\n", "5\n")
    after = Engine(load_flow_text(text, "greeting.yaml", "greeting"))
    assert [v.share for v in after.flow.states["greeting"].split] == [95, 5]
    again = after.resume("menu", first.session, {"From": number, "Digits": "1"}, NOW)
    assert heard_variant(again) == "greeting_old"
    assert "<Say>Welcome to Acme.</Say>" in again.twiml
    assert heard_variant(enter(after, From=number)) == "greeting_new"


def test_a_variant_the_flow_no_longer_has_is_chosen_again():
    number = caller_in(0, 90)
    session = enter(Engine(GREETING), From=number).session
    session["splits"]["greeting/greeting"] = "greeting_gone"
    again = Engine(GREETING).resume("menu", session, {"From": number, "Digits": "1"}, NOW)
    assert heard_variant(again) == "greeting_new"


def test_a_call_on_the_phone_hears_its_variant_again_after_the_menu(make_app):
    phone = phone_for(make_app({"IVR_FLOWS_DIR": str(SPLITS)}))
    old, new = caller_in(90, 100), caller_in(0, 90)
    for number, welcome in ((old, "Welcome to Acme."), (new, "Welcome to the new Acme.")):
        call = phone.dial("greeting", from_=number)
        assert call.heard[:2] == ["Thanks for calling Acme.", welcome]
        offer = call.heard[2]
        call.press("1")
        assert call.heard[:3] == ["Thanks for calling Acme.", welcome, offer]


# -- the picture ---------------------------------------------------------------------------------


def test_split_edges_are_labelled_with_their_share():
    assert "  greeting --> greeting_new: 90%\n  greeting --> greeting_old: 10%\n" in mermaid(GREETING)
    edges = {(e["source"], e["target"]): e["label"] for e in graph_data(GREETING)["edges"]}
    assert edges[("offer", "offer_a")] == edges[("offer", "offer_b")] == "50%"
