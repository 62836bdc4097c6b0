"""The built-in phone: a TwiML interpreter that plays Twilio's part in a call.

A Phone requests a voice URL as Twilio would (every parameter, signed), runs the answer verb by
verb and stops where Twilio waits for the caller; the caller's methods send what Twilio sends then.
How a document is read is ivr.phone.twiml's part, what each request carries ivr.phone.params's.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
import urllib.parse

from twilio.request_validator import RequestValidator

from ivr.core.flow import dial_outcomes_of
from ivr.errors import PhoneError, TransportError
from ivr.phone import params as twilio_params
from ivr.phone import twiml
from ivr.phone.addresses import Addresses
from ivr.phone.callbacks import RecordingCallbacks
from ivr.phone.pay import PayingCall
from ivr.phone.records import CallError, Exchange, Heard
from ivr.phone.relay import AgentCall, relay_of
from ivr.phone.screening import put_through
from ivr.phone.transport import Transport, url_with_params

__all__ = ["Phone", "PhoneCall"]

_FLOW_ID = re.compile(r"[A-Za-z0-9_-]+")
_DTMF = frozenset("0123456789*#")


class Phone:
    """Places calls against a voice app the way Twilio would."""

    def __init__(
        self,
        transport: Transport,
        base_url: str = "http://localhost",
        *,
        auth_token: str | None = None,
        public_url: str | None = None,
        account_sid: str = "AC" + "0" * 32,
        status_callback: str | None = "/twilio/status",
        schema_path: str | None = None,
        max_requests: int = 200,
        max_automatic: int = 25,
        clock=time.time,
        effects=None,
    ) -> None:
        self.transport = transport
        self.effects = effects  # callable(CallSid) -> effects the app journaled for it (in-process)
        self.addresses = Addresses(base_url, public_url)  # public_url: what Twilio would call, and so signs
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.account_sid, self.status_callback = account_sid, status_callback
        self.schema_path = schema_path or os.environ.get("IVR_TWIML_XSD") or None
        self.max_requests, self.max_automatic, self.clock = max_requests, max_automatic, clock
        self._serial = itertools.count(1)
        self._run = secrets.token_hex(6)

    def dial(
        self,
        target: str,
        *,
        from_: str = "+15551230000",
        to: str = "+15559870000",
        direction: str = "inbound",
        call_sid: str | None = None,
        params: dict | None = None,
    ) -> PhoneCall:
        """Place a call to a flow id, a path or an absolute URL; returns it waiting or ended."""
        call = PhoneCall(self, call_sid or self.new_sid("CA"), from_, to, direction, params)
        call._go(self.url(target), "POST")
        return call

    def url(self, target: str) -> str:
        """The absolute URL of a flow id ('main'), a path ('/voice/main?state=menu') or a URL."""
        if target.startswith(("http://", "https://")):
            return target
        if target.startswith("/"):
            return self.addresses.base_url + target  # keeps a path prefix of base_url, unlike urljoin
        if _FLOW_ID.fullmatch(target):
            return f"{self.addresses.base_url}/voice/{target}"
        raise PhoneError(f"cannot dial {target!r}: give a flow id ('main'), a path ('/voice/main') or a URL")

    def new_sid(self, prefix: str) -> str:
        """A fresh 34-character SID such as CA..., RE..., QU...: unique across runs, as Twilio's are
        (a run's recordings must never take the place of an earlier run's in the message box)."""
        return f"{prefix}{self._run}{next(self._serial):020x}"

    def request(self, method: str, url: str, params: dict[str, str]) -> tuple[int, str]:
        """Send one signed request through the transport: (status, body); TransportError when it fails."""
        # A fragment (Twilio's connection overrides, `#rc=3...`) is for Twilio: never sent, never signed.
        url = urllib.parse.urldefrag(url).url
        signature = self.sign(method, self.addresses.signed_for(url), params)
        return self.transport.request(method, self.addresses.sent_to(url), params, signature)

    def sign(self, method: str, url: str, params: dict[str, str]) -> dict[str, str]:
        """The X-Twilio-Signature header (none without a token); GET signs the URL with its query."""
        if self.validator is None:
            return {}
        if method == "GET":
            return {"X-Twilio-Signature": self.validator.compute_signature(url_with_params(url, params), {})}
        return {"X-Twilio-Signature": self.validator.compute_signature(url, params)}


class PhoneCall(RecordingCallbacks, PayingCall, AgentCall):
    """One call placed by a Phone: what was heard, every request, and the caller's actions."""

    def __init__(self, phone: Phone, sid: str, from_: str, to: str, direction: str, params: dict | None) -> None:
        self.phone, self.sid, self.from_, self.to, self.direction = phone, sid, from_, to, direction
        self.flow: str | None = None
        self.state: str | None = None
        self.transcript: list[Heard] = []
        self.exchanges: list[Exchange] = []
        self.callbacks: list[Exchange] = []  # status callbacks, kept apart from the TwiML exchanges
        self._transcriptions: list[tuple[str, dict]] = []  # transcriptions still to come
        self.child_exchanges: list[Exchange] = []  # a screened dial's answering-party leg
        self.whisper: list[str] = []  # what the answering party heard
        self.ended = False
        self.end_reason: str | None = None
        self.reject_reason: str | None = None
        self.error: CallError | None = None
        self.warnings: list[CallError] = []
        self.waiting_for: str | None = None
        self._extra = {k: str(v) for k, v in (params or {}).items()}
        self._started = phone.clock()
        self._answered = False
        self._mark = 0  # transcript length at the caller's last action
        self._recent: list[str] = []  # URLs requested since the caller's last action
        # The verb the call waits on, the verbs after it, and the URL of their document.
        self._verb, self._rest, self._doc_url = None, [], ""

    @property
    def heard(self) -> list[str]:
        """Say texts (and 'play: URL') heard since the caller's last action."""
        recent = self.transcript[self._mark :]
        return [h.text if h.kind in ("say", "note") else f"play: {h.text}" for h in recent if h.kind != "pause"]

    @property
    def effects(self) -> list[dict]:
        """What the app did for this call besides answering (hooks run, messages delivered), in-process only."""
        return list(self.phone.effects(self.sid)) if self.phone.effects else []

    @property
    def documents(self) -> list[str]:
        """The body the app answered to each TwiML request, in order."""
        return [e.body for e in self.exchanges]

    def press(self, keys: str) -> None:
        """Press keys during a Gather ('12#'); Twilio submits at numDigits, the finish key or the timeout."""
        if bad := sorted(set(keys) - _DTMF):
            raise PhoneError(f"cannot press {''.join(bad)!r}: a keypad has only 0-9, * and #")
        if self.waiting_for == "pay":  # one step of a payment (ivr.phone.pay)
            return self.pay_keys(keys)
        if self.waiting_for == "agent":  # dtmf to the conversation (ivr.phone.relay)
            return self._agent_press(keys)
        gather = self._take("press keys", "gather")
        if not twiml.listens_for(gather, "dtmf"):
            return self._no_input(gather)
        digits, finished = twiml.gathered_digits(gather, keys)
        if not digits:  # the finish key alone counts as no input, as silence does
            return self._no_input(gather)
        self._submit(gather, {"Digits": digits, "FinishedOnKey": finished, "msg": "Gather End"})

    def say(self, text: str, confidence: float = 0.0) -> None:
        """Speak during a Gather (heard only when its input includes speech), or to an agent (ivr.phone.relay)."""
        if self.waiting_for == "agent":
            return self._agent_say(text)
        gather = self._take("speak", "gather")
        if not twiml.listens_for(gather, "speech") or not text.strip():
            return self._no_input(gather)
        language = gather.get("language") or "en-US"
        self._submit(gather, {"SpeechResult": text, "Confidence": str(confidence), "Language": language})

    def wait(self) -> None:
        """Stay silent until a Gather or Record times out."""
        kind = self.waiting_for
        verb = self._take("wait", "gather", "record")
        if kind == "gather":
            return self._no_input(verb)
        self._continue(self._rest, self._doc_url)

    def record(self, seconds: int = 5, *, finish_key: str = "#") -> None:
        """Leave a recording of `seconds`, ended by `finish_key` ('' for the silence timeout)."""
        verb = self._take("record", "record")
        if seconds <= 0:  # an empty recording: no request, the next verb runs
            return self._continue(self._rest, self._doc_url)
        extra = self._recording(min(seconds, twiml.whole_number(verb.get("maxLength"), 3600)))
        # A key that is not one of the finish keys does not end it: the silence timeout does.
        if finish_key and finish_key in verb.get("finishOnKey", "1234567890*#"):
            extra["Digits"] = finish_key
        self._submit(verb, extra)
        self._recording_ready(verb, extra)

    def record_nothing(self) -> None:
        """Leave an empty recording: Twilio sends nothing and runs the next verb."""
        self._take("record nothing", "record")
        self._continue(self._rest, self._doc_url)

    def dial_result(self, status: str, *, duration: int = 30, screen: str | None = None) -> None:
        """End the <Dial> with a DialCallStatus; its action is requested, else the document goes on. When the
        dialled number has a `url` (a screened transfer) and the call is answered, the answering party's leg
        runs first: it hears the whisper and presses `screen` (None: nothing)."""
        nouns = [noun.tag.lower() for noun in self._verb] if self.waiting_for == "dial" else ["conference"]
        if status not in (allowed := dial_outcomes_of(nouns)):  # `answered` only ends a conference
            raise PhoneError(f"DialCallStatus {status!r} cannot end this dial; one of {', '.join(allowed)}")
        answered = self.waiting_for == "dial" and status in ("completed", "answered")
        if answered and not put_through(self, self._verb, self._doc_url, screen):
            duration = 0  # the answering party hung up before the caller was put through
        talked = str(duration if status in ("completed", "answered") else 0)
        extra = {"DialCallStatus": status, "DialCallSid": self.phone.new_sid("CA"), "DialCallDuration": talked}
        self._report("give a dial result", "dial", extra)

    def queue_result(self, result: str, *, wait_seconds: int = 30) -> None:
        """Leave the <Enqueue> queue with a QueueResult; its action is requested, else the document goes on."""
        self._report("give a queue result", "enqueue", self._queue(result, wait_seconds))

    def hangup(self, *, seconds: int = 5) -> None:
        """Hang up; a recording in progress (`seconds` long) or a queue still reports to its action."""
        kind = self.waiting_for
        verb = self._take("hang up", *twiml.WAITING_HELP)
        extra = None
        if kind == "record" and seconds > 0:
            extra = {**self._recording(seconds), "Digits": "hangup"}
        elif kind == "enqueue" and verb.get("action"):
            extra = self._queue("hangup", seconds)
        elif kind == "pay" and verb.get("action"):
            extra = self._pay_hangup()
        elif kind == "agent":
            extra = self._agent_hangup_params()
        if extra is not None:
            # Twilio reports the hang-up to the action but ignores the TwiML it answers.
            self._request(twiml.action_url(self._doc_url, verb), twiml.verb_method(verb), extra, status="completed")
        self._end("caller-hangup")
        if kind == "record" and extra is not None:
            self._recording_ready(verb, extra)

    def _callback(self, url: str, params: dict[str, str]) -> None:
        """POST a callback whose answer Twilio ignores; kept in `callbacks`."""
        url = urllib.parse.urldefrag(url).url
        when = self.phone.clock()
        try:
            code, body = self.phone.request("POST", url, params)
        except TransportError as exc:
            code, body = 0, str(exc)
        self.callbacks.append(Exchange("POST", url, params, code, body, self.flow, self.state, when))

    def _take(self, doing: str, *kinds: str):
        """The verb the call waits on, if it is one of `kinds`; from here on the caller has acted."""
        if self.ended:
            raise PhoneError(f"cannot {doing}: the call has ended ({self.end_reason})")
        if self.waiting_for not in kinds:
            waiting = twiml.WAITING_HELP.get(self.waiting_for, "nothing")
            raise PhoneError(f"cannot {doing}: the call is waiting for {waiting}")
        self._mark, self._recent, self.waiting_for = len(self.transcript), [], None
        return self._verb

    def _report(self, doing: str, kind: str, extra: dict[str, str]) -> None:
        # Dial and Enqueue report to their action if they have one; without, the document goes on.
        verb = self._take(doing, kind)
        if verb.get("action"):
            return self._submit(verb, extra)
        self._continue(self._rest, self._doc_url)

    def _no_input(self, gather) -> None:
        if gather.get("actionOnEmptyResult") == "true":
            return self._submit(gather, {"Digits": "", "FinishedOnKey": "", "msg": "Gather End"})
        self._continue(self._rest, self._doc_url)

    def _submit(self, verb, extra: dict[str, str]) -> None:
        # Gather and Record default to the current document's URL; Dial and Enqueue only come here with one.
        self._go(twiml.action_url(self._doc_url, verb), twiml.verb_method(verb), extra)

    def _continue(self, verbs: list, url: str) -> None:
        target = self._run(verbs, url)
        if target is not None:
            self._go(*target)

    def _go(self, url: str, method: str, extra: dict[str, str] | None = None) -> None:
        """Request `url` and run what it answers, following Redirects, until the call waits or ends."""
        target: tuple[str, str] | None = (url, method)
        while target is not None:
            root = self._request(*target, extra)
            if root is None:
                return
            target, extra = self._run(list(root), target[0]), None

    def _run(self, verbs: list, url: str) -> tuple[str, str] | None:
        """Run verbs in order; returns where a Redirect leads, None when the call waits or ended."""
        while verbs:
            verb = verbs.pop(0)
            tag = verb.tag
            if tag in twiml.PROMPTS or twiml.starts_recording(verb):  # a recording's start is a transcript note
                self.transcript.append(twiml.heard(verb, self.flow, self.state))
            elif tag in ("Gather", "Record", "Dial", "Enqueue", "Pay"):
                self._wait(tag.lower(), verb, verbs, url)
                return None
            elif relay_of(verb) is not None:  # <Connect><ConversationRelay>: the call waits on an agent
                self._agent_begin(verb, verbs, url)
                return None
            elif tag == "Redirect":
                return urllib.parse.urljoin(url, (verb.text or "").strip()), twiml.verb_method(verb)
            elif tag in ("Hangup", "Reject"):
                if tag == "Reject":
                    self.reject_reason = verb.get("reason") or "rejected"
                self._end(tag.lower())
                return None
            else:  # Twilio skips what its schema does not know, with a 12200 warning
                self.warnings.append(twiml.skipped(tag, url))
        self._end("end-of-document")
        return None

    def _wait(self, kind: str, verb, rest: list, url: str) -> None:
        self.waiting_for, self._verb, self._rest, self._doc_url = kind, verb, rest, url
        action = verb.get("action")
        if action:
            flow, state = twiml.voice_url(urllib.parse.urljoin(url, action))
            if flow is not None:  # the waiting state is the one its action URL names
                self.flow, self.state = flow, state
        for prompt in verb:  # only a Gather nests prompts; it plays them while it listens
            if prompt.tag in twiml.PROMPTS:
                self.transcript.append(twiml.heard(prompt, self.flow, self.state, verb))
        if kind == "pay":  # <Pay> asks its first step (ivr.phone.pay)
            self._pay_begin(verb)

    def _params(self, status: str | None = None) -> dict[str, str]:
        if status is None:
            status = "ringing" if not self._answered and self.direction == "inbound" else "in-progress"
        account = self.phone.account_sid
        return {
            **twilio_params.call_params(account, self.sid, status, self.direction, self.from_, self.to),
            **self._extra,
        }

    def _recording(self, seconds: int) -> dict[str, str]:
        return twilio_params.recording_fields(self.phone.account_sid, self.phone.new_sid("RE"), seconds)

    def _queue(self, result: str, seconds: int) -> dict[str, str]:
        return twilio_params.queue_fields(result, self.phone.new_sid("QU"), seconds)

    def _request(self, url: str, method: str, extra: dict[str, str] | None, status: str | None = None):
        """One webhook: the parsed <Response>, or None when the call ended instead."""
        phone = self.phone
        if len(self.exchanges) >= phone.max_requests:
            trail = " -> ".join(dict.fromkeys(e.url for e in self.exchanges[-10:]))
            return self._end("error", CallError(0, f"loop: over {phone.max_requests} requests in a call: {trail}"))
        if len(self._recent) >= phone.max_automatic:
            trail = " -> ".join(dict.fromkeys(self._recent))
            message = f"loop: over {phone.max_automatic} requests in a row with no caller action: {trail}"
            return self._end("error", CallError(0, message))
        self._recent += [] if "event=wait&" in url else [url]  # a filler's wait for slow work is no loop
        params = {**self._params(status), **(extra or {})}
        self._answered = True
        flow, state = twiml.voice_url(url)
        if flow is not None:
            self.flow, self.state = flow, state
        when = phone.clock()
        try:
            code, body = phone.request(method, url, params)
        except TransportError as exc:
            self.exchanges.append(Exchange(method, url, params, 0, "", flow, state, when))
            return self._fail(CallError(exc.code, str(exc)))
        self.exchanges.append(Exchange(method, url, params, code, body, flow, state, when))
        root = twiml.parse_answer(method, url, code, body)
        if isinstance(root, CallError):
            return self._fail(root)
        self.warnings += twiml.document_warnings(url, body, root, phone.schema_path)
        return root

    def _fail(self, error: CallError) -> None:
        # What Twilio plays when it cannot get or read the next document (no fallback URL here).
        self.transcript.append(Heard("say", twiml.APPLICATION_ERROR_TEXT, None, None, 1, self.flow, self.state))
        self._end("error", error)

    def _end(self, reason: str, error: CallError | None = None) -> None:
        if self.ended:
            return
        self.ended, self.end_reason, self.error = True, reason, error
        self.waiting_for, self._verb, self._rest = None, None, []
        if not self.phone.status_callback:  # a phone made not to post status callbacks
            return
        rejected = reason == "reject"  # a rejected call is never answered: busy, or no-answer for 'rejected'
        status = ("busy" if self.reject_reason == "busy" else "no-answer") if rejected else "completed"
        self.post_status(status, 0 if rejected else int(self.phone.clock() - self._started))

    def post_status(self, status: str, duration: int) -> Exchange:
        """Twilio posts a status callback (CallStatus `status`) to the phone's status callback URL now."""
        callback = self.phone.status_callback or "/twilio/status"
        url = self.phone.url(callback if callback.startswith("http") else "/" + callback.lstrip("/"))
        sequence = sum("CallDuration" in e.params for e in self.callbacks)  # this call's status callbacks so far
        fields = twilio_params.status_fields(duration, self.phone.clock(), sequence)
        self._callback(url, {**self._params(status), **fields})
        return self.callbacks[-1]
