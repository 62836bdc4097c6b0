"""ivr.core.machine: a flow's transitions machine, built once from the engine's own callables."""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.flow import APOLOGY, GOODBYE
from ivr.core.loader import load_flow_text
from ivr.core.machine import build_machine, machine_definition

FLOW = """\
start: menu
states:
  menu:
    say: Press 1 for sales or 9 to go back.
    gather: {}
    routes: {"1": sales, "*": repeat}
    no_input: {max: 2}
    on_max: bye
  sales:
    dial: "+15550001111"
    routes: {completed: bye}
    next: menu
  bye: {say: Bye., hangup: true}
"""


def _definition():
    return machine_definition(load_flow_text(FLOW, "t.yaml", "t"), lambda event: None)


def test_states_are_the_flows_plus_the_built_in_goodbye_and_apology():
    names = [s["name"] if isinstance(s, dict) else s for s in _definition()["states"]]
    assert names == ["menu", "sales", "bye", GOODBYE, APOLOGY]


def test_one_transition_per_outcome_named_as_the_author_wrote_it():
    transitions = {(t["trigger"], t["source"]): t["dest"] for t in _definition()["transitions"] if t["dest"]}
    assert transitions[("1", "menu")] == "sales"
    assert transitions[("completed", "sales")] == "bye"
    assert {transitions[(o, "sales")] for o in f.dial_outcomes(None) if o != "completed"} == {"menu"}


def test_only_a_dial_to_a_conference_has_an_answered_transition():
    """Twilio reports DialCallStatus `answered` only for a <Dial> to a <Conference>."""
    conference = FLOW.replace('dial: "+15550001111"', "dial: {conference: standup}")

    def sales_triggers(text: str) -> set[str]:
        transitions = machine_definition(load_flow_text(text, "t.yaml", "t"), lambda event: None)["transitions"]
        return {t["trigger"] for t in transitions if t["source"] == "sales"}

    assert "answered" not in sales_triggers(FLOW)
    assert "answered" in sales_triggers(conference)


def test_retries_count_and_stop_at_their_max():
    retries = [t for t in _definition()["transitions"] if t["trigger"] == "no_input" and t["source"] == "menu"]
    counted, out = retries
    assert counted["dest"] is None and counted["conditions"][0].__name__ == "no_input_below_2"
    assert out["dest"] == "bye"


def test_repeat_stays_in_the_state():
    [repeat] = [t for t in _definition()["transitions"] if t["trigger"] == "*"]
    assert repeat["dest"] is None and repeat["source"] == "menu"


def test_the_machine_has_no_auto_transitions_and_no_model():
    machine = build_machine(load_flow_text(FLOW, "t.yaml", "t"), lambda event: None)
    assert not any(name.startswith("to_") for name in machine.events)
    assert machine.models == []
