"""Hot reload: changed flows are served at once, a bad edit never replaces a good flow, and every call
finishes on the version of the flow it started with, in any process sharing the store."""

from __future__ import annotations

import logging

import pytest
from conftest import phone_on

from ivr.errors import FlowLoadError
from ivr.web import registry as registry_module
from ivr.web.services import services

FLOW = """\
start: menu
states:
  menu:
    say: {greeting}
    gather: {{}}
    routes: {{"1": {target}}}
  {target}: {{say: "{ending}", hangup: true}}
"""


def write(directory, greeting="Version one.", target="done", ending="Done one."):
    path = directory / "line.yaml"
    path.write_text(FLOW.format(greeting=greeting, target=target, ending=ending))
    return path


@pytest.fixture(autouse=True)
def no_throttle(monkeypatch):
    monkeypatch.setattr(registry_module, "CHECK_EVERY", 0.0)  # look at the files on every request


@pytest.fixture
def shared(tmp_path):
    """A flows directory and one SQLite store that several app processes share."""
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows)
    return {"IVR_FLOWS_DIR": str(flows), "IVR_STORE": f"sqlite:///{tmp_path / 'ivr.sqlite3'}", "IVR_HOT_RELOAD": "1"}


def test_an_edit_is_served_without_a_restart(make_app, shared, tmp_path):
    phone = phone_on(make_app(shared))
    assert phone.dial("line").heard == ["Version one."]
    write(tmp_path / "flows", greeting="Version two.")
    assert phone.dial("line").heard == ["Version two."]


def test_without_hot_reload_an_edit_waits_for_a_restart(make_app, shared, tmp_path):
    phone = phone_on(make_app({**shared, "IVR_HOT_RELOAD": "0"}))
    write(tmp_path / "flows", greeting="Version two.")
    assert phone.dial("line").heard == ["Version one."]


def test_a_bad_edit_is_reported_and_the_last_good_version_keeps_serving(make_app, shared, tmp_path, caplog):
    app = make_app(shared)
    phone = phone_on(app)
    (tmp_path / "flows" / "line.yaml").write_text("start: menu\nstates:\n  menu: {say: Broken., gather: {}}\n")
    with caplog.at_level(logging.ERROR, logger="ivr.flows"):
        assert phone.dial("line").heard == ["Version one."]
    assert "line.yaml has errors; serving its last good version" in caplog.text
    [problem] = services(app).flows.problems
    assert problem.format().endswith("states.menu.gather: a gather needs routes (or next for any input)")
    write(tmp_path / "flows", greeting="Fixed.")
    assert phone.dial("line").heard == ["Fixed."]
    assert services(app).flows.problems == []


def test_a_call_in_progress_finishes_on_the_version_it_started_with(make_app, shared, tmp_path):
    phone = phone_on(make_app(shared))
    early = phone.dial("line")
    write(tmp_path / "flows", greeting="Version two.", ending="Done two.")
    late = phone.dial("line")
    early.press("1")
    late.press("1")
    assert early.heard == ["Done one."]
    assert late.heard == ["Done two."]


def test_another_process_serves_a_call_on_the_version_it_started_with(make_app, shared, tmp_path):
    first = make_app(shared)
    call = phone_on(first).dial("line")
    write(tmp_path / "flows", greeting="Version two.", target="finish", ending="Done two.")
    second = make_app(shared)  # a worker started after the edit: it never loaded version one
    call.phone = phone_on(second)  # the call's next webhook reaches the other worker
    call.press("1")
    assert call.heard == ["Done one."]


def test_a_worker_starting_while_a_bad_edit_is_on_disk_serves_the_last_good_version(make_app, shared, tmp_path, caplog):
    make_app(shared)  # a worker that loaded the good version, and kept it in the store
    (tmp_path / "flows" / "line.yaml").write_text("start: menu\nstates:\n  menu: {say: Broken, gather: {}}\n")
    with caplog.at_level(logging.ERROR, logger="ivr.flows"):
        app = make_app(shared)
    assert "has errors; serving its last good version" in caplog.text
    assert phone_on(app).dial("line").heard == ["Version one."]
    assert services(app).flows.problems


def test_a_bad_flow_with_no_good_version_stored_stops_the_app(make_app, tmp_path):
    (tmp_path / "line.yaml").write_text("start: menu\nstates:\n  menu: {say: Broken, gather: {}}\n")
    with pytest.raises(FlowLoadError):
        make_app({"IVR_FLOWS_DIR": str(tmp_path), "IVR_STORE": f"sqlite:///{tmp_path / 's.sqlite3'}"})


def test_a_call_whose_state_is_gone_starts_the_flow_again(make_app, shared, tmp_path):
    app = make_app(shared)
    waiting = phone_on(app).dial("line")  # waits in the menu
    store = services(app).store
    for key, _ in store.scan("flow:line:"):
        store.delete(key)  # version one is gone from every process and the store
    (tmp_path / "flows" / "line.yaml").write_text(
        'start: welcome\nstates:\n  welcome:\n    say: New menu.\n    gather: {}\n    routes: {"1": bye}\n'
        "  bye: {say: Bye., hangup: true}\n"
    )
    waiting.phone = phone_on(make_app(shared))  # a new worker: it knows only the new version
    waiting.press("1")  # to /voice/line/menu, a state the new version does not have
    assert waiting.heard == ["New menu."]
    assert not waiting.ended


def test_an_edit_running_an_unregistered_hook_is_refused_like_any_bad_edit(make_app, shared, tmp_path):
    app = make_app(shared)
    (tmp_path / "flows" / "line.yaml").write_text(
        "start: look\nstates:\n  look: {run: no_such_hook, next: bye}\n  bye: {say: Bye., hangup: true}\n"
    )
    assert phone_on(app).dial("line").heard == ["Version one."]
    [problem] = services(app).flows.problems
    assert "unknown hook 'no_such_hook'" in problem.message
