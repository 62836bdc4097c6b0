"""What a spooled callback does once the drainer applies it: call statuses and campaign outcomes kept,
voicemail stored and handed to the flow's `on_message` (a hook, or a text).

Everything here runs without a request context (in the drainer's thread, a command, or a test's
`drain_now()`): it is given the app, never reaches for `flask.request`. Each write is idempotent, so
an entry applied twice (a crash before the spool forgot it, two copies of one callback) changes
nothing the second time: statuses only move forward, messages are keyed by RecordingSid and
delivered through claims (`ivr.web.messages`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask

from ivr.core.effects import HookCall, SendText
from ivr.web import metrics
from ivr.web.analytics import journal_status
from ivr.web.effects import journal_texts, send_text
from ivr.web.http import SESSION_GRACE, SESSION_TTL
from ivr.web.messages import Claim, MessageBox
from ivr.web.services import services

__all__ = ["LINK_TTL", "apply_entry", "campaign_outcome", "deliver", "redeliver_stale", "voicemail_text"]

log = logging.getLogger("ivr.web")

_TERMINAL = ("completed", "busy", "failed", "no-answer", "canceled")
STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, **dict.fromkeys(_TERMINAL, 4)}
# `call:<sid>` once the outcome is decided: an outcome that beat the campaign's link waits for it (the
# link comes with the create request's answer, seconds later); a linked one serves late copies of the
# callback. An hour is plenty; nothing is left for a week.
LINK_TTL = 3600.0


def apply_entry(app: Flask, entry: dict) -> None:
    """Store what one spooled callback carries, and deliver what became due; StoreError leaves it spooled."""
    kind, params = entry["kind"], entry["params"]
    if kind == "status":
        store_status(app, params)
        try:
            journal_status(app, params, entry.get("source", "twilio"))
        except Exception:  # stored already: the journal must not make the drainer redo it
            log.exception("CallSid=%s: the journal could not note status %s", params.get("CallSid", "-"),
                          params.get("CallStatus"))  # fmt: skip
    elif kind == "recording":
        store = services(app).store
        message, claim = MessageBox(store).recording(
            params, entry["flow"], entry["state"], store.get(params.get("CallSid", "")), services(app).clock()
        )
        log.info("CallSid=%s recording %s stored", params.get("CallSid", "-"), message["recording_sid"])
        deliver(app, claim, phone=entry.get("phone", False))
    elif kind == "call_recording":
        store_call_recording(app, params, entry["flow"], entry["state"])
    elif kind == "transcription":
        message, claim = MessageBox(services(app).store).transcription(
            params, entry["flow"], entry["state"], services(app).clock()
        )
        log.info("CallSid=%s transcription of %s stored", params.get("CallSid", "-"), message["recording_sid"])
        deliver(app, claim, phone=entry.get("phone", False))
    else:
        raise ValueError(f"a spool entry of unknown kind {kind!r}")


def store_call_recording(app: Flask, params: dict, flow: str, state: str) -> None:
    """Keep a whole-call recording's status with the call (`call_recordings`, by RecordingSid): its sid, URL,
    duration, status and source, never the audio. A later status replaces an earlier one; a copy changes nothing."""
    sid, recording_sid = params.get("CallSid", ""), params.get("RecordingSid", "")
    kept = {
        "sid": recording_sid,
        "url": params.get("RecordingUrl"),
        "duration": params.get("RecordingDuration"),
        "status": params.get("RecordingStatus"),
        "source": params.get("RecordingSource"),
        "channels": params.get("RecordingChannels"),
        "flow": flow,
        "state": state,
    }

    def update(session):
        session = session if session is not None else {"ended": True}  # its session expired: keep this alone
        session.setdefault("call_recordings", {})[recording_sid] = kept
        return session

    store = services(app).store
    store.update(sid, update, SESSION_GRACE if (store.get(sid) or {}).get("ended") else SESSION_TTL)
    log.info("CallSid=%s call recording %s %s", sid or "-", recording_sid, kept["status"] or "-")


def store_status(app: Flask, params: dict) -> None:
    """Remember how a call went (a terminal status is never undone); a campaign call's outcome goes to its row."""
    sid, new = params.get("CallSid", ""), params.get("CallStatus", "")
    ended = new in _TERMINAL
    finished: list[bool] = []  # whether this update is the one that ended the call (retried: the last try's)

    def update(session):
        finished.clear()
        if session is None:
            return None
        old = session.get("status")
        if old is None or STATUS_RANK[new] > STATUS_RANK.get(old, -1):
            session["status"] = new
            if new in _TERMINAL:
                finished.append(not session.get("ended"))
                session["ended"] = True
                session["duration"] = params.get("CallDuration")
        return session

    store = services(app).store
    # An ended call's session only waits out the grace period for late callbacks, whatever order they come in.
    current = store.get(sid) or {}
    session = store.update(sid, update, SESSION_GRACE if ended or current.get("ended") else SESSION_TTL)
    if any(finished):
        metrics.call_ended()
    log.info("CallSid=%s status %s", sid, new)
    if ended and params.get("Direction", "outbound-api").startswith("outbound"):
        # Only calls the app placed can belong to a campaign: an inbound call leaves nothing behind.
        answered_by = params.get("AnsweredBy") or ((session or {}).get("caller") or {}).get("AnsweredBy")
        campaign_outcome(store, sid, new, answered_by)


def campaign_outcome(store, sid: str, status: str, answered_by: str | None) -> None:
    """A campaign call's fate, kept with its row for `python -m ivr campaign status`: one atomic decision.

    The link (`call:<sid>` -> row) and this outcome may arrive in either order. Whether the link is
    there is read and acted on in one update of `call:<sid>`: either the row gets the outcome now, or
    the outcome waits in `call:<sid>` for the link, which merges it in (`ivr.outbound.calls`).
    """
    from ivr.outbound.campaign import CAMPAIGN_TTL

    outcome = "answered" if status == "completed" else status
    if status == "completed" and (answered_by or "").startswith(("machine", "fax")):
        outcome = "machine"
    linked: dict = {}

    def decide(current: dict | None) -> dict:
        if current and current.get("campaign") and current.get("row"):
            linked.update(current)
            return {**current, "outcome": outcome}
        return {**(current or {}), "outcome": outcome}  # for the link to find

    store.update(f"call:{sid}", decide, LINK_TTL)
    if linked:
        store.update(linked["row"], lambda row: None if row is None else {**row, "outcome": outcome}, CAMPAIGN_TTL)


def deliver(app: Flask, claim: Claim | None, *, phone: bool = False) -> None:
    """Carry out a claimed delivery, then any the first one's completion claims (a late transcription)."""
    box = MessageBox(services(app).store)
    while claim is not None:
        record = _deliver_once(app, claim, phone)
        if record is None:  # the flow has no on_message: nothing to hand over, nothing to remember
            box.release(claim)
            return
        metrics.delivered(record["kind"], record["error"] is None)
        _, claim = box.delivered(claim, record, services(app).clock())


def redeliver_stale(app: Flask) -> int:
    """Deliver messages whose delivery is due with no live claim (a deliverer died); how many were tried."""
    box = MessageBox(services(app).store)
    tried = 0
    for recording_sid in box.stale(services(app).clock()):
        _, claim = box.claim_due(recording_sid, services(app).clock())
        if claim is not None:
            log.warning("RecordingSid=%s delivery retried (attempt %d)", recording_sid, claim.attempt)
            deliver(app, claim)
            tried += 1
    return tried


def _deliver_once(app: Flask, claim: Claim, phone: bool) -> dict | None:
    """Hand a message to its on_message (the state's, else the flow's); what to note with it, or None."""
    message = claim.message
    flow_id, state_name = message.get("flow", ""), message.get("state", "")
    engine = services(app).flows.engines.get(flow_id)
    state = engine.flow.states.get(state_name) if engine else None
    name = (state.on_message if state else None) or (engine.flow.defaults.on_message if engine else None)
    if name is None:
        return None
    kind = "transcription" if claim.update else "recording"
    sid = message.get("call_sid") or "-"
    if isinstance(name, dict):  # on_message: {sms: NUMBER}: the message goes out as a text
        # In PCI mode no transcription was asked for (IVR_PCI_MODE): the text must not promise one.
        transcribed = bool(state and getattr(state.action, "transcribe", False)) and not app.config["IVR_PCI_MODE"]
        text = SendText(f"message:{claim.recording_sid}:{int(claim.update)}", name["sms"], message.get("to") or None,
                        voicemail_text(message, claim.update, transcribed))  # fmt: skip
        error = send_text(app, text) if journal_texts(app, sid, [text], from_phone=phone) else None
        return {"kind": kind, "sms": name["sms"], "error": error}
    now: datetime = services(app).clock()
    context = {
        "call_sid": message.get("call_sid", ""),
        "flow": flow_id,
        "state": state_name,
        "call": {"From": message.get("from", ""), "To": message.get("to", ""), "CallSid": message.get("call_sid", "")},
        "vars": dict(message.get("vars") or {}),
        "input": {},
        "recording": {"url": message.get("url"), "duration": message.get("duration"), "sid": claim.recording_sid},
        "dial": {},
        "now": now,
    }
    # The RecordingSid and the attempt let a hook recognise a delivery retried after a crash.
    result, record = services(app).hooks.run(
        HookCall(name, flow_id, state_name, context),
        message={**message, "update": claim.update, "attempt": claim.attempt},
    )
    metrics.hook_called(record)
    journal = services(app).journal
    if journal is not None:  # the built-in phones show the hooks a call made the app run
        journal.add(sid, [{"kind": "hook", **record}])
    return {"kind": kind, "hook": name, "error": result.error}


def voicemail_text(message: dict, update: bool, transcribed: bool = True) -> str:
    """The text a voicemail is delivered as: caller, length, link, and the transcription when it came."""
    transcription = (message.get("transcription") or {}).get("text")
    head = "Transcription of the voicemail" if update else "New voicemail"
    lines = [f"{head} from {message.get('from') or 'an unknown caller'} ({message.get('duration') or 0} s)"]
    lines.append(f"Listen: {message.get('url')}")
    if transcription:
        lines.append(f'"{transcription}"')
    elif transcribed:
        lines.append("Transcription to follow.")
    return "\n".join(lines)
