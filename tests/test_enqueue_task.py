"""`enqueue:` with a TaskRouter workflow and its task (docs/flows.md, enqueue): the loader's errors,
the TwiML (<Enqueue workflowSid><Task>, https://www.twilio.com/docs/voice/twiml/enqueue), and a call."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from conftest import phone_on
from studio_support import app_for

from ivr.core.loader import load_flow_text
from ivr.errors import FlowLoadError

WORKFLOW = "WW0123456789abcdef0123456789abcdef"
FLOW = f"""\
start: ask
states:
  ask:
    say: What is it about?
    gather: {{input: speech}}
    next: wait
  wait:
    enqueue:
      workflow: {WORKFLOW}
      task:
        attributes:
          {{type: support, said: "{{{{ input.speech }}}}", vip: true, level: 2, tags: [a, "{{{{ call.From }}}}"]}}
        priority: 5
        timeout: 3600
      wait_url: https://example.com/hold
    routes: {{bridged: bye}}
    next: sorry
  sorry:
    say: Nobody could help.
    hangup: true
  bye:
    hangup: true
"""


def errors(enqueue: str) -> list[str]:
    text = f"start: wait\nstates:\n  wait:\n    enqueue: {enqueue}\n    next: bye\n  bye:\n    hangup: true\n"
    with pytest.raises(FlowLoadError) as info:
        load_flow_text(text, "q.yaml", "q")
    return [f"{e.path}: {e.message}" for e in info.value.errors]


def test_a_workflow_enqueue_sends_the_task_as_json_with_its_texts_rendered(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flex.yaml").write_text(FLOW, encoding="utf-8")
    call = phone_on(app_for(flows, tmp_path)).dial("flex", from_="+15551230000")
    call.say('my "order" </Task> is late')  # caller input is data: it cannot break the JSON or the XML
    enqueue = ElementTree.fromstring(call.documents[-1]).find("Enqueue")
    assert enqueue.get("workflowSid") == WORKFLOW and enqueue.text is None
    assert enqueue.get("waitUrl") == "https://example.com/hold"
    task = enqueue.find("Task")
    assert (task.get("priority"), task.get("timeout")) == ("5", "3600")
    assert json.loads(task.text) == {
        "type": "support",
        "said": 'my "order" </Task> is late',
        "vip": True,
        "level": 2,
        "tags": ["a", "+15551230000"],
    }
    call.queue_result("hangup")
    assert call.heard == ["Nobody could help."]


def test_a_named_queue_still_renders_as_before():
    flow = load_flow_text(
        "start: w\nstates:\n  w:\n    enqueue: support\n    next: b\n  b:\n    hangup: true\n", "q", "q"
    )
    action = flow.states["w"].action
    assert (action.name.source, action.workflow, action.task) == ("support", None, None)


@pytest.mark.parametrize(
    ("enqueue", "message"),
    [
        ("{name: support, workflow: " + WORKFLOW + "}", "give the queue's name, or a TaskRouter workflow (not both)"),
        ("{wait_url: https://example.com/hold}", "give the queue's name, or a TaskRouter workflow (not both)"),
        ("{workflow: WW123}", "expected a TaskRouter workflow SID (WW and 32 hex digits), got 'WW123'"),
        ("{name: support, task: {priority: 1}}", "a task goes with a workflow, not a named queue"),
        ("{workflow: " + WORKFLOW + ", task: {priority: -1}}", "must be 0 or more, got -1"),
        ("{workflow: " + WORKFLOW + ", task: {timeout: 0}}", "must be 1 to 1209600, got 0"),
        ("{workflow: " + WORKFLOW + ", task: {channel: voice}}", "channel"),
        ("{workflow: " + WORKFLOW + ", task: {attributes: [a]}}", "attributes"),
    ],
)
def test_enqueue_mistakes_are_load_errors(enqueue, message):
    found = errors(enqueue)
    assert any(message in e for e in found), found
