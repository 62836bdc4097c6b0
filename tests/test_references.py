"""ivr.core.references: the hooks and schedules a flow names, checked by one function that the app
at start, hot reload and `python -m ivr check` all call, so they report the same problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.cli.check import hooks_for
from ivr.core.lint import run_checks
from ivr.core.loader import load_flow_text
from ivr.core.references import state_texts, unknown_names
from ivr.errors import FlowLoadError
from ivr.testing import phone_for
from ivr.web import registry as registry_module
from ivr.web.services import services

CHECK = Path(__file__).resolve().parent / "flows" / "check"

MENU_NAMING = """\
start: menu
states:
  menu:
    say: "{text}"
    gather: {{}}
    routes: {{"1": bye}}
  bye: {{say: Bye., hangup: true}}
"""


def _flow(text: str):
    return load_flow_text(text, "flows/t.yaml", "t")


@pytest.mark.parametrize(
    ("state", "path"),
    [
        ("say: \"{{ open('suport') }}\"\n    hangup: true", "states.a.say"),
        (
            "prompts: [{say: Hi.}, {play: \"https://x.example/{{ open('suport') }}.mp3\"}]\n    hangup: true",
            "states.a.prompts[1].play",
        ),
        ("sms: \"{{ open('suport') }}\"\n    hangup: true", "states.a.sms"),
        ("set: {x: \"{{ open('suport') }}\"}\n    hangup: true", "states.a.set.x"),
        ("dial: \"{{ '+15550001111' if open('suport') else '+15550002222' }}\"\n    next: b", "states.a.dial"),
        ("when: [{if: \"open('suport')\", next: b}]\n    next: b", "states.a.when[0].if"),
    ],
)
def test_a_schedule_nobody_defined_is_found_wherever_a_template_names_it(state, path):
    flow = _flow(f"start: a\nstates:\n  a:\n    {state}\n  b: {{say: Bye., hangup: true}}\n")
    [error] = unknown_names(flow, hooks=(), schedules=("support",))
    assert (error.path, error.message) == (path, "unknown schedule 'suport' (did you mean 'support'?)")


def test_a_schedule_of_the_flow_or_the_shared_file_is_known():
    text = "schedules: {own: {timezone: UTC, hours: {daily: '09:00-17:00'}}}\nstart: a\nstates:\n  a:\n"
    flow = _flow(text + "    say: \"{{ open('own') }} {{ open('shared') }}\"\n    hangup: true\n")
    assert unknown_names(flow, hooks=(), schedules=("shared",)) == []


def test_hooks_are_looked_up_in_run_and_on_message_at_their_own_keys():
    flow = _flow(
        "defaults: {on_message: keep}\nstart: a\nstates:\n"
        "  a: {run: lookp, next: b}\n"
        "  b: {record: {}, on_message: delivr, next: c}\n"
        "  c: {say: Bye., hangup: true}\n"
    )
    found = [(e.line, e.column, e.path, e.message) for e in unknown_names(flow, hooks=("lookup", "deliver"))]
    assert found == [
        (1, 24, "defaults.on_message", "unknown hook 'keep' (register it with @ivr.hook in the IVR_HOOKS module)"),
        (4, 12, "states.a.run", "unknown hook 'lookp' (did you mean 'lookup'?)"),
        (5, 31, "states.b.on_message", "unknown hook 'delivr' (did you mean 'deliver'?)"),
    ]


def test_an_sms_delivery_names_no_hook():
    flow = _flow("start: a\nstates:\n  a: {record: {}, on_message: {sms: '+15550001111'}, next: b}\n"
                 "  b: {say: Bye., hangup: true}\n")  # fmt: skip
    assert unknown_names(flow, hooks=()) == []


def test_state_texts_include_the_text_a_state_sends():
    flow = _flow("start: a\nstates:\n  a: {say: Hi., sms: {body: Thanks., to: '+15550001111'}, hangup: true}\n")
    texts = [t.source for t in state_texts(flow.states["a"])]
    assert texts[0] == "Hi." and texts[-2:] == ["Thanks.", "+15550001111"]


def test_the_app_refuses_at_start_exactly_what_check_reports(make_app, tmp_path):
    """The same problems, positions and paths from create_app as from `check` (before, a Say's
    open('x') passed the app's own name check and callers heard an apology)."""
    for name in ("unknown_names.yaml", "hooks.py"):
        shutil.copy(CHECK / name, tmp_path / name)
    report = run_checks([], flows_dir=tmp_path, hooks=hooks_for(None))
    expected = sorted(p.format() for p in report.problems if p.severity == "error")
    assert len(expected) == 4  # a hook, an on_message hook, a condition's schedule and a Say's schedule
    with pytest.raises(FlowLoadError) as refused:
        make_app({"IVR_FLOWS_DIR": str(tmp_path)})
    assert sorted(e.format() for e in refused.value.errors) == expected


def test_a_schedule_named_only_in_a_say_is_refused_at_start(make_app, tmp_path):
    (tmp_path / "m.yaml").write_text(MENU_NAMING.format(text="Support is {{ 'open' if open('suport') else 'shut' }}."))
    with pytest.raises(FlowLoadError, match=r"states\.menu\.say: unknown schedule 'suport'"):
        make_app({"IVR_FLOWS_DIR": str(tmp_path)})


def test_hot_reload_refuses_an_edit_naming_an_unknown_schedule_in_a_say(make_app, tmp_path, monkeypatch):
    monkeypatch.setattr(registry_module, "CHECK_EVERY", 0.0)
    (tmp_path / "m.yaml").write_text(MENU_NAMING.format(text="Version one."))
    app = make_app({"IVR_FLOWS_DIR": str(tmp_path), "IVR_HOT_RELOAD": "1"})
    (tmp_path / "m.yaml").write_text(MENU_NAMING.format(text="{{ open('suport') }}"))
    assert phone_for(app).dial("m").heard == ["Version one."]
    [problem] = services(app).flows.problems
    assert (problem.path, problem.message) == ("states.menu.say", "unknown schedule 'suport'"
                                               " (add it under schedules:, or to IVR_SCHEDULES)")  # fmt: skip


def test_the_app_reports_a_flows_graph_and_names_problems_together_as_check_does(make_app, tmp_path):
    """A flow with an unknown state, hook and schedule: the app refuses all three at once, not one."""
    (tmp_path / "m.yaml").write_text(
        "start: look\nstates:\n"
        "  look: {run: lokup, next: menu}\n"
        '  menu:\n    say: "{{ open(\'ofice\') }}"\n    gather: {}\n    routes: {"1": nowhere}\n'
    )
    report = run_checks([], flows_dir=tmp_path, hooks=hooks_for(None))
    expected = sorted(p.format() for p in report.problems if p.severity == "error")
    assert len(expected) == 3
    with pytest.raises(FlowLoadError) as refused:
        make_app({"IVR_FLOWS_DIR": str(tmp_path)})
    assert sorted(e.format() for e in refused.value.errors) == expected


def test_two_files_giving_one_flow_id_are_refused_by_the_app_and_check(make_app, tmp_path):
    """main.yaml and main.yml: before, the app served one of them silently while check refused it."""
    flow = "start: a\nstates:\n  a: {say: Hi., hangup: true}\n"
    (tmp_path / "m.yaml").write_text(flow)
    (tmp_path / "m.yml").write_text(flow)
    report = run_checks([], flows_dir=tmp_path, hooks=hooks_for(None))
    [problem] = report.problems
    assert problem.message.startswith("flow id 'm' is also used by ")
    with pytest.raises(FlowLoadError, match="flow id 'm' is also used by "):
        make_app({"IVR_FLOWS_DIR": str(tmp_path)})
