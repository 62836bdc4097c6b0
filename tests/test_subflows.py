"""Subflows: a state runs another flow with named inputs and routes on what it returns; the call stack
lives in the session, the subflow sees only its inputs, and every call site is checked at load."""

from __future__ import annotations

import pytest
from conftest import FLOWS, phone_on

from ivr.core.graph_subflows import graphviz_with_subflows, mermaid_with_subflows
from ivr.core.loader import load_flows
from ivr.errors import FlowLoadError
from ivr.phone.recording import read_recording
from ivr.phone.replay import replay
from ivr.web import registry as registry_module
from ivr.web import replay_target
from ivr.web.services import services

SUB = """\
inputs:
  account: required
  tries: {default: 2}
returns: [verified, locked]
defaults: {routes: {"*": repeat, "9": back, "0": out}}
start: ask
error_state: oops
states:
  ask:
    say: "PIN for {{ account }}, {{ tries }} tries{% if secret is defined %}, {{ secret }}{% endif %}."
    gather: {save_as: pin, length: 4}
    no_input: {say: Nothing heard., max: 2}
    on_max: locked
    next: check
  check:
    when:
      - if: "pin == '1234'"
        next: ok
    next: wrong
  wrong:
    set: {tries: "{{ tries - 1 }}"}
    when:
      - if: "tries > 0"
        next: again
    next: locked
  again:
    say: Wrong.
    next: ask
  ok:
    say: Accepted.
    return: {outcome: verified, values: {who: "{{ account }}"}}
  locked:
    say: Locked.
    return: locked
  out:
    say: Operator.
    hangup: true
  oops:
    say: Sub error.
    hangup: true
"""

CALLER = """\
start: hello
error_state: sorry
states:
  hello:
    say: Hello.
    set: {account: "42", secret: hidden}
    next: verify
  verify:
    say: Checking.
    subflow: {flow: pin, inputs: {account: "{{ account }}"}, save_as: checked}
    routes: {verified: menu}
    next: bye
  menu:
    say: "Welcome {{ checked.who }}, {{ account }}, {{ secret }}."
    gather: {}
    routes: {"1": bye}
  bye:
    say: Bye.
    hangup: true
  sorry:
    say: Caller error.
    hangup: true
"""


def write(directory, **files):
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def line(make_app, flows_dir):
    write(flows_dir, pin=SUB, caller=CALLER)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir)})
    return app, phone_on(app)


# -- the engine, through the app -----------------------------------------------------------------


def test_the_subflow_gets_its_inputs_and_defaults_in_the_same_document(line):
    app, phone = line
    call = phone.dial("caller")
    assert call.heard == ["Hello.", "Checking.", "PIN for 42, 2 tries."]  # no caller variable leaks in
    assert (call.flow, call.state) == ("pin", "ask")
    assert 'action="/voice/pin/ask"' in call.documents[-1]
    session = services(app).store.get(call.sid)
    assert session["vars"] == {"account": 42, "tries": 2}  # a template's plain number is a number, as in set:
    [frame] = session["stack"]
    assert (frame["flow"], frame["state"], frame["subflow"]) == ("caller", "verify", "pin")
    assert frame["vars"] == {"account": "42", "secret": "hidden"}


def test_a_return_routes_the_caller_with_its_variables_back_and_the_values_saved(line):
    app, phone = line
    call = phone.dial("caller")
    call.press("1234")
    assert call.heard == ["Accepted.", "Welcome 42, 42, hidden."]
    assert (call.flow, call.state) == ("caller", "menu")
    session = services(app).store.get(call.sid)
    assert session["stack"] == []
    assert session["vars"] == {"account": "42", "secret": "hidden", "checked": {"who": 42}}


def test_a_return_not_routed_takes_next(line):
    _, phone = line
    call = phone.dial("caller")
    call.press("0000")
    assert call.heard == ["Wrong.", "PIN for 42, 1 tries."]
    call.press("0000")
    assert call.heard == ["Locked.", "Bye."]
    assert call.ended


def test_retries_inside_a_subflow_count_and_run_out_to_its_on_max(line):
    _, phone = line
    call = phone.dial("caller")
    call.wait()
    assert call.heard == ["Nothing heard.", "PIN for 42, 2 tries."]
    call.wait()
    assert call.heard == ["Locked.", "Bye."]


def test_the_subflows_ways_out_work_inside_it(line):
    _, phone = line
    call = phone.dial("caller")
    call.press("*")
    assert call.heard == ["PIN for 42, 2 tries."]
    call.press("9")  # back: the subflow's own menus only; its first menu is asked again
    assert call.heard == ["PIN for 42, 2 tries."]
    assert (call.flow, call.state) == ("pin", "ask")
    call.press("0")
    assert call.heard == ["Operator."]


def test_a_failure_inside_a_subflow_answers_with_the_subflows_error_state(line, hooks):
    _, phone = line
    call = phone.dial("caller")
    call._go("http://localhost/voice/pin/nowhere", "POST")  # a request the subflow cannot answer
    assert call.heard[-1:] == ["Sub error."]


def test_entering_a_subflow_directly_is_refused_with_its_error_state(line):
    _, phone = line
    call = phone.dial("pin")
    assert call.heard == ["Sub error."]
    assert call.ended


def test_resuming_a_subflow_no_call_of_is_on_the_stack_is_refused(line):
    _, phone = line
    call = phone.dial("/voice/pin/ask")
    assert call.heard == ["Sub error."]


def test_nested_subflows_return_through_each_level(make_app, flows_dir):
    inner = "returns: [done]\ninputs: {n: required}\nstart: a\nstates:\n  a: {say: 'Inner {{ n }}.', return: done}\n"
    middle = (
        "returns: [fine]\ninputs: {n: required}\nstart: a\nstates:\n"
        "  a:\n    say: 'Middle {{ n }}.'\n    subflow: {flow: inner, inputs: {n: '{{ n + 1 }}'}}\n    next: b\n"
        "  b:\n    say: Ask.\n    gather: {}\n    routes: {'1': c}\n"
        "  c: {say: 'Back in middle {{ n }}.', return: fine}\n"
    )
    outer = (
        "start: a\nstates:\n  a:\n    subflow: {flow: middle, inputs: {n: 1}}\n    routes: {fine: b}\n"
        "  b: {say: Outer again., hangup: true}\n"
    )
    write(flows_dir, inner=inner, middle=middle, outer=outer)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir)})
    call = phone_on(app).dial("outer")
    assert call.heard == ["Middle 1.", "Inner 2.", "Ask."]
    assert [f["subflow"] for f in services(app).store.get(call.sid)["stack"]] == ["middle"]
    call.press("1")
    assert call.heard == ["Back in middle 1.", "Outer again."]


def test_hooks_inside_a_subflow_see_its_variables(make_app, flows_dir, hooks):
    seen = []
    hooks.use("look", lambda ctx: seen.append(dict(ctx.vars)) or {"outcome": "yes"})
    sub = "returns: [done]\ninputs: {x: {default: 7}}\nstart: a\nstates:\n  a: {run: look, next: b}\n"
    sub += "  b: {return: done}\n"
    caller = "start: a\nstates:\n  a:\n    set: {y: 1}\n    next: c\n  c: {subflow: look_sub, next: d}\n"
    caller += "  d: {hangup: true}\n"
    write(flows_dir, look_sub=sub, caller=caller)
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir)})).dial("caller")
    assert call.ended
    assert seen == [{"x": 7}]


def test_hot_reload_keeps_a_call_on_the_subflow_version_it_started_with(make_app, flows_dir, monkeypatch):
    monkeypatch.setattr(registry_module, "CHECK_EVERY", 0.0)
    write(flows_dir, pin=SUB, caller=CALLER)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_HOT_RELOAD": "1"})
    phone = phone_on(app)
    started = phone.dial("caller")
    write(flows_dir, pin=SUB.replace("say: Accepted.", "say: Accepted, new."))
    started.press("1234")
    assert started.heard == ["Accepted.", "Welcome 42, 42, hidden."]
    fresh = phone.dial("caller")
    fresh.press("1234")
    assert fresh.heard[0] == "Accepted, new."


def test_the_call_is_journaled_under_each_states_flow(line):
    app, phone = line
    call = phone.dial("caller")
    call.press("1234")
    walked = services(app).journal.walked(call.sid)
    assert walked == [("caller", "hello"), ("caller", "verify"), ("pin", "ask"), ("pin", "check"),
                      ("pin", "ok"), ("caller", "menu")]  # fmt: skip


def test_the_browser_phone_shows_the_stack(make_app, flows_dir):
    write(flows_dir, pin=SUB, caller=CALLER)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_PHONE": "1"})
    client = app.test_client()
    made = client.post("/phone/calls", json={"flow": "caller"}).get_json()
    assert made["stack"] == [{"flow": "caller", "state": "verify"}]
    assert (made["flow"], made["state"]) == ("pin", "ask")
    pressed = client.post(f"/phone/calls/{made['id']}", json={"action": "press", "value": "1234"}).get_json()
    assert pressed["stack"] == []


# -- checks at load and in `check` ---------------------------------------------------------------


def errors(flows_dir, **files) -> list[str]:
    write(flows_dir, **files)
    with pytest.raises(FlowLoadError) as info:
        load_flows(flows_dir)
    return [e.format().replace(str(flows_dir) + "/", "") for e in info.value.errors]


def caller(subflow: str, routes: str = "{verified: b, locked: b}") -> str:
    return f"start: a\nstates:\n  a:\n    subflow: {subflow}\n    routes: {routes}\n  b: {{hangup: true}}\n"


def test_a_missing_required_input_is_an_error_at_the_call(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    found = errors(flows_dir, pin=SUB, caller=caller("{flow: pin}"))
    assert found == ["caller.yaml:4:14: error: states.a.subflow.inputs: subflow 'pin' requires input account"]


def test_an_unknown_input_is_an_error_where_it_is_written(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    found = errors(flows_dir, pin=SUB, caller=caller("{flow: pin, inputs: {account: 1, acount: 2}}"))
    assert found == [
        "caller.yaml:4:47: error: states.a.subflow.inputs.acount: unknown input 'acount' of subflow 'pin'"
        " (did you mean 'account'?); its inputs: account, tries"
    ]


def test_a_route_on_what_the_subflow_never_returns_and_a_return_with_nowhere_to_go(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    found = errors(flows_dir, pin=SUB, caller=caller("{flow: pin, inputs: {account: 1}}", "{verifed: b}"))
    assert sorted(found) == [
        "caller.yaml:4:14: error: states.a.subflow: returns verified, locked of subflow 'pin' have nowhere to go:"
        " route them or add next: STATE",
        "caller.yaml:5:14: error: states.a.routes.verifed: subflow 'pin' never returns 'verifed'"
        " (did you mean 'verified'?); it returns: verified, locked",
    ]


def test_calling_an_unknown_flow_or_one_that_is_no_subflow(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    plain = "start: a\nstates:\n  a: {hangup: true}\n"
    found = errors(flows_dir, plain=plain, caller=caller("pln") + "  c:\n    subflow: plain\n    next: b\n")
    assert found == [
        "caller.yaml:4:14: error: states.a.subflow.flow: unknown flow 'pln' (did you mean 'plain'?)",
        "caller.yaml:8:14: error: states.c.subflow.flow: flow 'plain' is not a subflow (it declares no returns);"
        " hand a call over by redirect",
    ]


def test_recursion_is_refused_at_load(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    loop = "returns: [done]\nstart: a\nstates:\n  a:\n    subflow: loop\n    next: b\n  b: {return: done}\n"
    found = errors(flows_dir, loop=loop)
    assert found == [
        "loop.yaml:5:14: error: states.a.subflow.flow: subflows call each other round in a circle"
        " (loop -> loop): a call could go past the depth limit of 8"
    ]


def test_calls_nested_past_the_depth_limit_are_refused_at_load(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    level = "returns: [done]\nstart: a\nstates:\n  a:\n    subflow: s{n}\n    next: b\n  b: {{return: done}}\n"
    files = {f"s{n}": level.format(n=n + 1) for n in range(9)}
    files["s9"] = "returns: [done]\nstart: a\nstates:\n  a: {return: done}\n"
    found = errors(flows_dir, top="start: a\nstates:\n  a:\n    subflow: s0\n    next: b\n  b: {hangup: true}\n",
                   **files)  # fmt: skip
    assert sorted(found) == [
        "s0.yaml:5:14: error: states.a.subflow.flow: subflow calls nest 9 deep from here, past the limit of 8",
        "top.yaml:4:14: error: states.a.subflow.flow: subflow calls nest 10 deep from here, past the limit of 8",
    ]


def test_a_return_names_one_of_its_flows_returns(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    sub = "returns: [done]\nstart: a\nstates:\n  a: {return: dnoe}\n"
    plain = "inputs: {x: required}\nstart: a\nstates:\n  a: {return: done}\n"
    assert sorted(errors(flows_dir, sub=sub, plain=plain)) == [
        "plain.yaml:1:10: error: inputs.x: a flow with inputs is a subflow: declare what it returns, returns: [done]",
        "plain.yaml:4:15: error: states.a.return: only a subflow returns: declare its returns at the top,"
        " returns: [done]",
        "sub.yaml:4:15: error: states.a.return: 'dnoe' is not one of the returns (done) (did you mean 'done'?)",
    ]


def test_check_reports_the_call_site_too(flows_dir, monkeypatch):
    from click.testing import CliRunner

    from ivr.cli import cli

    monkeypatch.chdir(flows_dir.parent)
    monkeypatch.setenv("IVR_FLOWS_DIR", "flows")
    write(flows_dir, pin=SUB, caller=caller("{flow: pin}"))
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 1
    assert "flows/caller.yaml:4:14: error: states.a.subflow.inputs: subflow 'pin' requires input account" in (
        result.output
    )


def test_check_counts_a_subflows_save_as_as_set(flows_dir):
    """`{{ checked.who }}` after `save_as: checked` reads what the subflow returned: no "never set" warning."""
    from ivr.core.lint import run_checks

    write(flows_dir, pin=SUB, caller=CALLER)
    report = run_checks((), flows_dir=str(flows_dir), hooks=lambda directory: set())
    assert [p.format() for p in report.problems if "checked" in p.format()] == []
    assert "checked" in CALLER and "{{ checked.who }}" in CALLER


# -- recording and replay, the phones -------------------------------------------------------------


def test_a_recorded_call_across_a_subflow_replays(make_app, tmp_path):
    app = make_app({"IVR_RECORD_DIR": str(tmp_path), "IVR_HOOK_TIMEOUT": "0.3"})
    sid = "CA" + "7" * 32
    call = phone_on(app).dial("accounts", call_sid=sid, from_="+15550001111")
    for keys in ("1", "123456", "1", "0000", "1234"):
        call.press(keys)
    assert call.heard[0] == "The balance of account 1 2 3 4 5 6 is 42.50 dollars."
    path = tmp_path / f"{sid}.jsonl"
    header, lines = read_recording(path)
    assert header["flows"].keys() >= {"accounts", "pin"}  # the subflow's version is kept with the call's
    assert [line["url"].removeprefix("http://localhost/voice/") for line in lines] == [
        "accounts", "accounts/menu", "accounts/account_number", "accounts/confirm_account", "pin/ask", "pin/ask",
    ]  # fmt: skip
    result = replay(path, replay_target, flows_dir=FLOWS)
    assert result.ok, result.report()
    assert result.changed_flows == []


def test_the_terminal_phone_shows_where_the_call_is_in_the_stack(monkeypatch):
    from click.testing import CliRunner

    from ivr.cli import cli

    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    for name in ("TWILIO_AUTH_TOKEN", "IVR_PUBLIC_URL", "IVR_RECORD_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["phone", "accounts", "--keys", "1 123456 1"])
    assert "  [accounts/check_pin > pin/ask waits for gather]" in result.output, result.output


# -- the picture ----------------------------------------------------------------------------------


def test_graph_opens_each_subflow_inside_the_state_that_runs_it(flows_dir):
    nested = "returns: [done]\nstart: a\nstates:\n  a:\n    subflow: {flow: pin, inputs: {account: '1'}}\n    next: b\n"
    nested += "  b: {return: done}\n"
    write(flows_dir, pin=SUB, caller=CALLER, nested=nested)
    flows = load_flows(flows_dir)
    text = mermaid_with_subflows(flows["caller"], flows)
    assert '  state verify {\n    state "ask" as verify__ask\n' in text
    assert "    [*] --> verify__ask\n" in text
    assert "    verify__ok --> [*]\n    verify__locked --> [*]\n" in text  # its returns leave the box
    assert "  verify --> menu: verified\n" in text  # the caller routes on what it returns
    assert "  class verify kind_subflow\n  note right of verify: runs subflow pin\n" in text
    assert 'state "verify"' not in text
    inside = mermaid_with_subflows(flows["nested"], flows)  # a subflow that runs one: opened in turn
    assert "  state a {\n" in inside
    assert "    [*] --> a__ask\n" in inside


def test_the_graph_command_draws_subflows_as_boxes(monkeypatch):
    from click.testing import CliRunner

    from ivr.cli import cli

    monkeypatch.setenv("IVR_FLOWS_DIR", str(FLOWS))
    result = CliRunner().invoke(cli, ["graph", "accounts"])
    assert result.exit_code == 0, result.output
    assert "  state check_pin {\n" in result.output
    assert "    check_pin__verified --> [*]\n" in result.output


def test_a_failed_hook_inside_a_subflow_goes_to_the_subflows_error_state(make_app, flows_dir, hooks):
    hooks.raises("look", TimeoutError("slow"))
    sub = "returns: [done]\nerror_state: oops\nstart: a\nstates:\n  a: {run: look, next: b}\n  b: {return: done}\n"
    sub += "  oops: {say: Sub error., hangup: true}\n"
    caller = "start: c\nerror_state: sorry\nstates:\n  c: {subflow: look_sub, next: d}\n  d: {hangup: true}\n"
    caller += "  sorry: {say: Caller error., hangup: true}\n"
    write(flows_dir, look_sub=sub, caller=caller)
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_HOOK_TIMEOUT": "0.3"})).dial("caller")
    assert call.heard == ["Sub error."]


def test_the_reminder_cancels_only_with_the_pin_of_the_number_called(make_app):
    phone = phone_on(make_app({"IVR_FLOWS_DIR": str(FLOWS), "IVR_HOOK_TIMEOUT": "0.3"}))
    call = phone.dial("reminder", to="+15551230000")
    call.press("2")
    assert call.heard == ["To cancel, we need your PIN.", "Please enter your four digit PIN."]
    call.press("2468")
    assert call.heard[0].startswith("Your appointment is cancelled.")
    other = phone.dial("reminder", to="+15551230000")
    for keys in ("2", "0000", "0000"):
        other.press(keys)
    assert other.heard == ["Sorry, we could not check your PIN.", "Your appointment is kept. Goodbye."]


def test_the_call_journal_notes_each_state_and_hook_under_its_own_flow(make_app, flows_dir, tmp_path, hooks):
    hooks.returns("look", outcome="yes")
    sub = "returns: [done]\nstart: a\nstates:\n  a: {run: look, next: b}\n  b:\n    say: Key?\n    gather: {}\n"
    sub += "    routes: {'1': c}\n  c: {return: done}\n"
    caller = "start: c\nstates:\n  c: {subflow: look_sub, next: d}\n  d:\n    say: Bye.\n    hangup: true\n"
    write(flows_dir, look_sub=sub, caller=caller)
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_EVENTS": f"sqlite:///{tmp_path}/e.sqlite3"})
    call = phone_on(app).dial("caller")
    call.press("1")
    writer = services(app).events
    writer.flush()
    rows = writer.database.query("SELECT flow, state, kind FROM events WHERE kind IN ('entered', 'hook') ORDER BY id")
    assert rows == [("look_sub", "a", "hook"), ("caller", "c", "entered"), ("look_sub", "a", "entered"),
                    ("look_sub", "b", "entered"), ("look_sub", "c", "entered"), ("caller", "d", "entered")]  # fmt: skip
    assert writer.database.query("SELECT flow, waiting_flow, waiting_state FROM calls") == [("caller", "caller", "d")]
    writer.close()


def test_a_loop_in_and_out_of_a_subflow_with_nothing_to_wait_for_is_refused_at_load(flows_dir, monkeypatch):
    monkeypatch.chdir(flows_dir)
    quick = "returns: [done]\nstart: a\nstates:\n  a: {say: Hi., next: b}\n  b: {return: done}\n"
    loop = "start: a\nstates:\n  a:\n    subflow: quick\n    routes: {done: c}\n  c: {say: Again., next: a}\n"
    assert errors(flows_dir, quick=quick, loop=loop) == [
        "loop.yaml:4:14: error: states.a.subflow: subflow 'quick' can return without waiting for the caller, and"
        " the call comes back here: a loop with nothing to wait for"
    ]


def test_graphviz_draws_each_subflow_in_a_cluster_beside_the_state_that_runs_it(flows_dir):
    write(flows_dir, pin=SUB, caller=CALLER)
    flows = load_flows(flows_dir)
    source = graphviz_with_subflows(flows["caller"], flows).source
    assert '\tsubgraph "cluster_verify/" {\n\t\tlabel="verify: subflow pin"' in source
    assert '\t"verify/ask" -> "verify/check" [label="next, valid"]\n' in source
    assert '\t"verify" -> "verify/[*]" [style=dashed color="#6a1b9a" label=runs]\n' in source
    assert '\t"verify/ok" -> "verify" [style=dashed color="#6a1b9a" label="returns verified"]\n' in source
    assert "\tverify -> menu [label=verified]\n" in source  # the caller routes on what it returns
