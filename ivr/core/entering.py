"""What entering a state may do besides its prompts: the route a call's AnsweredBy takes (`answered_by:`,
decided before the prompts) and the text the state sends (`sms:`)."""

from __future__ import annotations

from ivr.core import flow as f
from ivr.core.effects import SendText
from ivr.core.templates import render

__all__ = ["answered_by_route", "sms_effect"]


def answered_by_route(state: f.State, answered_by: str) -> str | None:
    """The answered_by route a call's AnsweredBy takes: its value, else the machine group."""
    routes = {r.outcome for r in state.answered_by}
    if not answered_by or not routes:
        return None
    if answered_by in routes:
        return answered_by
    if answered_by.startswith("machine_") and f.MACHINE in routes:
        return f.MACHINE
    return None


def sms_effect(call, state: f.State) -> SendText:
    """A text to send after the response: at most once per call, state and visit."""
    caller = call.session.get("caller", {})
    outbound = caller.get("Direction", "").startswith("outbound")
    ours, theirs = (caller.get("From"), caller.get("To")) if outbound else (caller.get("To"), caller.get("From"))
    sms: f.Sms = state.sms
    body = (
        sms.body.source if sms.body.template is None else render(sms.body.template, call.context(), str(sms.body.pos))
    )
    to = theirs
    if sms.to is not None:
        to = sms.to.source if sms.to.template is None else render(sms.to.template, call.context(), str(sms.to.pos))
    return SendText(call.visit_key(), to, ours, body)
