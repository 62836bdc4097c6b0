"""A screened dial's other leg: the answering party of a <Dial><Number url=...> hears the whisper
document, perhaps presses a key, and either hangs up or lets its document end (then Twilio bridges
the two parties)."""

from __future__ import annotations

import urllib.parse
from xml.etree import ElementTree

from ivr.errors import TransportError
from ivr.phone.params import answering_party_params
from ivr.phone.records import Exchange
from ivr.phone.twiml import PROMPTS, action_url, said, verb_method

__all__ = ["put_through"]


def put_through(call, dial: ElementTree.Element, document_url: str, keys: str | None) -> bool:
    """Whether an answered <Dial> of `call` connects the caller: always, unless it dials a number with
    a `url` (screened) whose answering party hangs up. That party's leg runs here, pressing `keys` at
    its Gather (None: nothing); its requests go to `call.child_exchanges`, what it hears to `call.whisper`."""
    noun = next((n for n in dial if n.get("url")), None)
    if noun is None:
        return True
    phone = call.phone
    to = (noun.text or "").strip()
    params = answering_party_params(phone.account_sid, phone.new_sid("CA"), call.sid, call.from_, to)
    url, method = urllib.parse.urljoin(document_url, noun.get("url")), verb_method(noun)
    for _ in range(phone.max_automatic):
        when = phone.clock()
        try:
            code, body = phone.request(method, url, params)
        except TransportError as exc:
            code, body = 0, str(exc)
        call.child_exchanges.append(Exchange(method, url, dict(params), code, body, call.flow, call.state, when))
        if code != 200:
            return False
        next_url = None
        for verb in ElementTree.fromstring(body):
            if verb.tag in PROMPTS:
                call.whisper.append(said(verb) if verb.tag == "Say" else (verb.text or "").strip())
            elif verb.tag == "Gather":
                call.whisper.extend(said(p) for p in verb if p.tag == "Say")
                if keys:
                    next_url = action_url(url, verb)
                    params = {**params, "Digits": keys, "FinishedOnKey": "", "msg": "Gather End"}
                    keys = None
                    break
            elif verb.tag == "Redirect":
                next_url = urllib.parse.urljoin(url, (verb.text or "").strip())
                break
            elif verb.tag in ("Hangup", "Reject"):
                return False
        if next_url is None:
            return True  # the document ended: Twilio connects the two parties
        url, method = next_url, "POST"
    return False
