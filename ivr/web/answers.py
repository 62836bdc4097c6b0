"""A webhook's step stored once: a compare-and-set against what was read, and retries answered from it.

Twilio may send one webhook again while the first attempt is still stepping (hooks take seconds,
outside any lock). Every attempt reads the session once, steps, and writes only if the session is
still what it read (the store's compare-and-set `replace`): one read and one write per webhook.
When a status callback wrote in between, the write is made again over what it stored, unless
another attempt bumped the session's revision first. The winner's write claims the step's texts,
so only the winner sends them; a loser that made the same request answers with the winner's
stored TwiML, and one that made another request steps again on the winner's session. Status
callbacks do not bump the revision: what they store meanwhile is kept.
"""

from __future__ import annotations

import hashlib
import logging

from flask import request

from ivr.core.effects import SendText
from ivr.core.engine import Step
from ivr.errors import StoreError
from ivr.store import Read, SessionStore
from ivr.web.http import SESSION_TTL
from ivr.web.registry import FlowRegistry

__all__ = ["REVISION", "claim_texts", "commit", "remember", "request_digest", "revision", "stored_answer"]

log = logging.getLogger("ivr.web")

REVISION = "rev"
# What status callbacks write into a session (ivr/web/callbacks.py): never a webhook's to overwrite.
_CALLBACK_KEYS = ("status", "ended", "duration", "call_recordings", "pay")  # pay: <Pay>'s progress
# Writes of one step while callbacks keep writing the same session in between (each a few per call).
_MERGES = 10


def revision(session: dict | None) -> int:
    """How many webhooks stepped this session (0 for a new one, or one stored before revisions)."""
    return (session or {}).get(REVISION, 0)


def request_digest() -> str:
    """What makes a retry the same request: method, path, query and body, hashed (the token is only a hint)."""
    environ = request.environ
    # The bytes as sent: a retry resends the same request, and two that differ only in how they encode the
    # same parameters are at worst stepped again, never answered with each other's TwiML. (WSGI strings are
    # the request's bytes read as latin-1.)
    line = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}\n"
    digest = hashlib.sha256(line.encode("latin-1"))
    digest.update(request.get_data(cache=True))  # already read, and kept, by the form's parse
    return digest.hexdigest()[:32]


def stored_answer(session: dict, token: str | None, digest: str | None, registry: FlowRegistry) -> str | None:
    """The TwiML answered to this very request (same token, same digest), or None when it must be stepped."""
    last = session.get("last") or {}
    if not (token and last.get("token") == token and last.get("digest") == digest):
        return None
    if "document" not in last:
        return last.get("twiml")  # None for a sensitive state's read-back: redone, never kept
    flow_id, version = last["flow"], last["version"]
    engine = registry.engine(flow_id, version)
    if engine.flow.content_hash != version:  # that version of the flow cannot be had any more
        log.warning("retried webhook: flow %s version %s is gone; the webhook is stepped again", flow_id, version)
        return None
    return engine.rendered_again(last["document"], last.get("language"))


def remember(step: Step, token: str, digest: str, version: str, *, sensitive: bool) -> None:
    """Keep the answer with the session, for a retry of the same request: a document without templates as
    the chain of states its flow `version` renders it from (a few bytes), any other as its TwiML."""
    if sensitive:  # a read-back of sensitive input is not kept, nor a digest that would give the input away
        last = {"token": token}
    elif step.document is not None:
        last = {"token": token, "digest": digest, "flow": step.flow, "version": version,
                "document": [list(segment) for segment in step.document]}  # fmt: skip
        if step.language is not None:
            last["language"] = step.language
    else:
        last = {"token": token, "digest": digest, "twiml": step.twiml}
    step.session["last"] = last


def claim_texts(step: Step) -> list[SendText]:
    """The step's texts not yet claimed for this call, state and visit; claimed in its session."""
    done = step.session.setdefault("effects", {})
    texts = [e for e in step.effects if isinstance(e, SendText) and e.key not in done]
    for effect in texts:
        done[effect.key] = "pending"
    return texts


def commit(store: SessionStore, sid: str, session: dict, seen: Read) -> tuple[bool, Read]:
    """Write `session`, stepped from what `seen` read, if no other attempt stepped since: one `replace` (a
    compare-and-set), and another only when a status callback or a text's mark wrote in between, whose keys
    are kept. (Whether this attempt won, what the store holds now when it lost.)"""
    read = revision(seen.value)
    new = {**session, REVISION: read + 1}
    text = seen.text
    for _ in range(_MERGES):
        if store.replace(sid, text, new, SESSION_TTL):
            return True, Read(new, None)
        current = store.read(sid)
        if revision(current.value) != read:  # another attempt stepped first: its session stays as it is
            return False, current
        if current.value:
            new.update((key, current.value[key]) for key in _CALLBACK_KEYS if key in current.value)
            # Texts marked sent (or failed) since the read: the mark is newer than the claim read with it.
            new["effects"] = {**new.get("effects", {}), **current.value.get("effects", {})}
        text = current.text
    raise StoreError(f"the session of CallSid {sid} kept changing under {_MERGES} attempts to store a webhook's step")
