"""Studio's integration widgets: Run Subflow, Send Message, Make Outgoing Call, and the messaging-only
widgets a call cannot carry over; Make HTTP Request and Run Function live in `widgets_http`
(imported here, so importing this module registers them all).

- Run Subflow (events `completed`, `failed`) becomes a `subflow:` state. Studio names the subflow by
  its flow SID; `ctx.extras["subflows"]` (from `import-studio --subflow FW...=FLOW_ID`) says which
  flow of `flows/` it was imported as. A subflow's variables come back as `{{widgets.W.NAME}}`:
  here the values it returns, under `save_as`.
- Send Message (events `sent`, `failed`) becomes `sms:`. The text goes after the response, from
  the call's number; a text that fails is logged and the call goes on.
- Make Outgoing Call (REST API flows; events `answered`, `busy`, `noAnswer`, `failed`) becomes the
  state an outbound call (`python -m ivr call FLOW`) enters; a split on its `AnsweredBy` right after
  it becomes `answered_by:` routes. The other outcomes happen before any webhook: no flow runs.
- Send & Wait For Reply and other messaging-only widgets: marked todo states, reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ivr.studio import liquid
from ivr.studio.model import Condition, Context, Piece, Widget, converts, reads
from ivr.studio.split import absorb_split
from ivr.studio.widgets_http import parameters, result_variable

__all__ = ["make_outgoing_call", "run_subflow", "send_message"]

_CONTACT = "{{contact.channel.address}}"
_FLOW_NUMBER = "{{flow.channel.address}}"
ANSWERED_BY = ("human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax",
               "unknown")  # fmt: skip
_CALL_PARAMS = ("AnsweredBy", "CallSid", "CallStatus", "To", "From", "Called", "Caller", "Direction")


def _same(value: Any, liquid_variable: str) -> bool:
    return re.sub(r"\s+", "", str(value or "")) in ("", liquid_variable)


# --- Run Subflow -----------------------------------------------------------------------------------


@converts("run-subflow")
def run_subflow(widget: Widget, ctx: Context) -> Piece:
    """A `subflow:` state: `completed` routed, the rest (`failed`) its `next`."""
    sid = str(widget.prop("flow_sid", "")).strip()
    flow_id = ctx.extras.get("subflows", {}).get(sid)
    if flow_id is None:
        what = (f"Studio ran the subflow {sid or '(no flow_sid)'}, which was not imported: import it with "
                f"`python -m ivr import-studio --sid {sid or 'FW...'} -o flows/NAME.yaml`, then import this flow "
                f"again with `--subflow {sid or 'FW...'}=NAME`")  # fmt: skip
        return ctx.todo(widget, what, "failed")
    call: dict[str, Any] = {"flow": flow_id}
    inputs = {}
    declared = _declared_inputs(ctx, flow_id)
    for key, value in parameters(widget):
        name = liquid.variable_name(key)  # as the subflow's trigger names its inputs (its flow.data.KEY)
        if declared is not None and name not in declared:
            ctx.report(widget, f"parameter {key!r} is left out: the subflow {flow_id!r} never reads it")
            continue
        if name != key:
            ctx.report(widget, f"parameter {key!r} is the subflow's input {name!r}")
        inputs[name] = liquid.text(ctx, widget, value, f"parameters.{key}")
    if inputs:
        call["inputs"] = inputs
    comments = []
    if ctx.uses(widget):
        call["save_as"] = result_variable(ctx, widget, "result")
        comments.append(f"{', '.join(sorted(ctx.uses(widget)))}: values the subflow returns (return: {{values}}).")
    completed, failed = ctx.target(widget, "completed"), ctx.target(widget, "failed")
    state: dict[str, Any] = {"subflow": call}
    if completed == failed:
        state["next"] = completed
    else:
        state["routes"] = {"completed": completed}
        state["next"] = failed
    if str(widget.prop("flow_revision", "LatestPublished")) not in ("LatestPublished", "LatestRevision"):
        comments.append(f"Studio ran revision {widget.prop('flow_revision')} of the subflow; this runs its file.")
    return Piece().add(ctx.state(widget), state, *comments)


def _declared_inputs(ctx: Context, flow_id: str) -> set[str] | None:
    """The inputs the imported subflow declares (a subflow's inputs are the `flow.data.KEY` it reads; Studio
    passes every parameter, the flow language refuses one it does not declare); None when unknown."""
    flows_dir = ctx.extras.get("flows_dir")
    path = Path(flows_dir, f"{flow_id}.yaml") if flows_dir else None
    if path is None or not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    inputs = data.get("inputs") if isinstance(data, dict) else None
    return set(inputs) if isinstance(inputs, dict | list) else set()


@reads("run-subflow")
def subflow_output(widget: Widget, path: str, ctx: Context) -> str | None:
    """`widgets.W.NAME`: the value NAME the subflow returned, under the state's `save_as`."""
    name = path.split(".", 1)[0].split("[", 1)[0]
    return f"{result_variable(ctx, widget, 'result')}.{path}" if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) else None


# --- Send Message ---------------------------------------------------------------------------------


@converts("send-message")
def send_message(widget: Widget, ctx: Context) -> Piece:
    """`sms:` to the caller (or `to`), then on to `sent`'s widget."""
    body = liquid.text(ctx, widget, str(widget.prop("body", "")), "body")
    to = widget.prop("to", "")
    comments = []
    if _same(to, _CONTACT):
        sms: Any = body
    else:
        sms = {"to": liquid.text(ctx, widget, str(to), "to"), "body": body}
    if not _same(widget.prop("from"), _FLOW_NUMBER):
        ctx.report(widget, f"Studio sent from {widget.prop('from')!r}; a text goes from the call's number "
                   "(else TWILIO_FROM_NUMBER)")  # fmt: skip
    if widget.prop("media_url"):
        ctx.report(widget, f"the media {widget.prop('media_url')!r} is not sent: sms: sends text only")
    sent, failed = ctx.target(widget, "sent"), ctx.target(widget, "failed")
    if widget.next("failed") and failed != sent:
        ctx.report(widget, f"Studio took 'failed' to '{failed}' when the text failed; a text goes after the "
                   "response, so a failure is logged and the call goes on")  # fmt: skip
    comments.append("Sent after Twilio has the response, from the call's number.")
    return Piece().add(ctx.state(widget), {"sms": sms, "next": sent}, *comments)


# --- Make Outgoing Call ---------------------------------------------------------------------------


@converts("make-outgoing-call-v2", "make-outgoing-call")
def make_outgoing_call(widget: Widget, ctx: Context) -> Piece:
    """The state an outbound call enters: `answered_by` routes when Studio split on AnsweredBy."""
    state: dict[str, Any] = {}
    answered = ctx.target(widget, "answered")
    detect = widget.prop("detect_answering_machine") in (True, "true")
    # A split on its AnsweredBy reached only from `answered`: answered_by routes, No Match the rest
    routes = absorb_split(widget, "answered", "AnsweredBy", ctx, keys=_answered_by_keys)
    if routes is not None:
        routes, answered = routes
        if routes:
            state["answered_by"] = routes
            if ctx.extras.get("start") != ctx.state(widget):
                ctx.report(widget, "answered_by routes only on the state a call enters: place calls with "
                           f"--state {ctx.state(widget)}, or make it the flow's start")  # fmt: skip
        if not detect:
            ctx.report(widget, "the flow splits on AnsweredBy, but Studio did not ask for machine detection")
    state["next"] = answered
    how = ["python -m ivr call FLOW --to NUMBER"]
    if detect:
        how.append(f"--machine-detection {widget.prop('machine_detection', 'Enable')}")
    if widget.prop("timeout") not in (None, 60, "60"):
        how.append(f"--timeout {widget.prop('timeout')}")
    if not _same(widget.prop("from"), _FLOW_NUMBER):
        how.append(f"--from {widget.prop('from')}")
    comments = [f"An outbound call starts here: {' '.join(how)}"]
    if not _same(widget.prop("to"), _CONTACT):
        comments.append(f"Studio called {widget.prop('to')}: give it as --to.")
    left = [
        f"{event} (to '{ctx.target(widget, event)}')" for event in ("busy", "noAnswer", "failed") if widget.next(event)
    ]
    if left:
        ctx.report(widget, f"{', '.join(left)}: these happen before the call is answered, when no flow runs; not "
                   "carried over. The outcome reaches /twilio/status: `python -m ivr campaign status NAME` shows "
                   "it (docs/outbound.md, Outcomes)")  # fmt: skip
    for key, what in (("record", "recording the call (use call_recording: start)"), ("send_digits", "sending digits"),
                      ("sip_auth_username", "SIP credentials")):  # fmt: skip
        if widget.prop(key) not in (None, False, "false"):
            ctx.report(widget, f"{what}: not carried over")
    return Piece().add(ctx.state(widget), state, *comments)


def _answered_by_keys(condition: Condition) -> list[str] | None:
    value = condition.value.strip()
    if condition.type == "equal_to" and value in ANSWERED_BY:
        return [value]
    if condition.type == "matches_any_of":
        values = [v.strip() for v in value.split(",")]
        return values if all(v in ANSWERED_BY for v in values) else None
    if condition.type in ("starts_with", "contains") and value == "machine":
        return ["machine"]
    return None


@reads("make-outgoing-call-v2", "make-outgoing-call")
def outgoing_call_output(widget: Widget, path: str, ctx: Context) -> str | None:
    """The call's own parameters: `call.AnsweredBy` (in the first request's document only)."""
    return f"call.{path}" if path in _CALL_PARAMS else None


# --- messaging only -------------------------------------------------------------------------------


@converts("send-and-wait-for-reply")
def send_and_wait_for_reply(widget: Widget, ctx: Context) -> Piece:
    what = ("Studio texted and waited for a reply, which a call cannot do: ask with a gather (keys or speech), "
            "or send the text with sms:")  # fmt: skip
    return ctx.todo(widget, what, "deliveryFailure", "timeout")


@converts("send-to-auto-pilot")
def send_to_autopilot(widget: Widget, ctx: Context) -> Piece:
    what = (
        "Studio handed the conversation to Autopilot (retired by Twilio): an agent state or a menu can take its place"
    )
    return ctx.todo(widget, what, "failure", "timeout")
