"""The engine on its own: per-request work that does not grow with the flow, and its machine."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from ivr.core.engine import Engine, new_session
from ivr.core.loader import load_flow_text
from ivr.testing import generated_flow, phone_for

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def count_work(fn) -> int:
    """How much `fn()` executes: Python bytecodes run plus calls into C functions."""
    work = 0

    def tracer(frame, event, arg):
        nonlocal work
        frame.f_trace_opcodes = True
        if event == "opcode":
            work += 1
        return tracer

    def profiler(frame, event, arg):
        nonlocal work
        if event == "c_call":
            work += 1

    sys.setprofile(profiler)
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    return work


@pytest.fixture(scope="module")
def flow_dirs(tmp_path_factory):
    dirs = {}
    for size in (10, 5000):
        directory = tmp_path_factory.mktemp(f"flows{size}")
        (directory / "gen.yaml").write_text(generated_flow(size))
        dirs[size] = directory
    return dirs


def test_a_menu_step_costs_the_same_on_10_and_5000_states(make_app, flow_dirs):
    """Entering the flow and answering its menu executes as much code whatever the flow's size."""
    counts = {}
    for size, directory in flow_dirs.items():
        # Not schema-checked: the count is of the app's work, and the phone's own is the same at any size.
        phone = phone_for(make_app({"IVR_FLOWS_DIR": str(directory)}))
        phone.dial("gen", call_sid="CA" + "9" * 32).press("2")  # warm the caches (and the metrics' first labels)

        def step(phone=phone):
            call = phone.dial("gen", call_sid="CA" + "1" * 32)
            call.press("2")
            assert call.heard == ["Menu 2. For A press 1, for B press 2, for C press 3."]

        counts[size] = count_work(step)
    small, large = counts[10], counts[5000]
    assert small > 1000, counts  # the profiler saw the whole request
    assert abs(large - small) <= 0.02 * small, counts


def test_firing_an_outcome_moves_only_the_request_model():
    flow = load_flow_text(generated_flow(3), "gen.yaml", "gen")
    engine = Engine(flow)
    step = engine.resume("s0", new_session("gen"), {"Digits": "1"}, NOW)
    assert step.state == "s1"
    assert engine.machine.models == []  # no model was ever added to the shared machine


def test_the_machine_has_one_event_per_outcome_and_no_auto_transitions():
    flow = load_flow_text(generated_flow(3), "gen.yaml", "gen")
    engine = Engine(flow)
    assert set(engine.machine.events) == {"1", "2", "3", "no_input", "no_match"}
    assert not any(name.startswith("to_") for name in engine.machine.events)
