"""<Connect><ConversationRelay> on the built-in phone: the call waits on an agent, and the caller talks to it by text.

Twilio's part of a ConversationRelay session, played by the phone: it speaks the welcome greeting, opens the
relay's WebSocket through the transport (in-process through the app's `ivr.relay` extension, or a real
socket signed like Twilio's handshake), sends `setup` first, then the caller's `prompt`s (`call.say`) and,
with dtmfDetection, `dtmf` keys (`call.press`). The model's streamed `text` tokens, up to `last`, are heard
as one line. On `end`, the phone requests the <Connect action> with HandoffData, SessionStatus and
SessionDuration, and goes on with the document it answers; a hang-up closes the socket first and reports
CallStatus completed to the action.
"""

from __future__ import annotations

import contextlib
import urllib.parse

from ivr.errors import RelayClosed, TransportError
from ivr.phone.records import CallError, Heard

__all__ = ["AgentCall", "relay_of", "websocket_url"]

REPLY_WAIT = 15.0  # seconds the phone waits for the agent's first word after the caller spoke (the model's stall is 8)
QUIET = 0.3  # seconds without a message after a reply's last token before the phone takes the agent's turn as over


def relay_of(verb):
    """The <ConversationRelay> a <Connect> holds, or None."""
    return verb.find("ConversationRelay") if verb.tag == "Connect" else None


def websocket_url(url: str) -> str:
    """An http(s) URL's WebSocket equivalent: https -> wss, http -> ws (others unchanged)."""
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if url.startswith(http):
            return ws + url[len(http) :]
    return url


def _http_url(url: str) -> str:
    for ws, http in (("wss://", "https://"), ("ws://", "http://")):
        if url.startswith(ws):
            return http + url[len(ws) :]
    return url


class AgentCall:
    """The agent part of a PhoneCall (mixed in): `say`, `press` and `hangup` while it waits for an agent."""

    _relay = None

    def _agent_begin(self, connect, rest: list, url: str) -> None:
        """Start the session of the <Connect><ConversationRelay> `connect`: the welcome, the socket, `setup`."""
        relay = relay_of(connect)
        self._wait("agent", connect, rest, url)
        self._agent_since = self.phone.clock()
        self._agent_dtmf = relay.get("dtmfDetection") == "true"
        self._agent_voice = (relay.get("voice"), relay.get("language"))
        if welcome := (relay.get("welcomeGreeting") or "").strip():
            self._agent_heard("say", welcome)
        target, signed = self._relay_addresses(relay.get("url") or "", url)
        headers = {"X-Twilio-Signature": self.phone.validator.compute_signature(signed, {})} if self.phone.validator \
            else {}  # fmt: skip
        opener = getattr(self.phone.transport, "open_relay", None)
        try:
            if opener is None:
                raise TransportError(64102, "this transport cannot open a ConversationRelay WebSocket")
            self._relay = opener(target, headers)
            custom = {p.get("name"): p.get("value") or "" for p in relay.iter("Parameter") if p.get("name")}
            self._relay.send({"type": "setup", "sessionId": self._agent_session, "callSid": self.sid,
                              "accountSid": self.phone.account_sid, "from": self.from_, "to": self.to,
                              "direction": self.direction, "callStatus": "in-progress",
                              "customParameters": custom})  # fmt: skip
        except (TransportError, RelayClosed) as exc:
            # Twilio cannot connect the session (64102): it requests the action with a failed session.
            code = getattr(exc, "code", 64102)
            self.warnings.append(CallError(code, f"{target}: the ConversationRelay WebSocket failed ({exc})"))
            return self._agent_over("failed")
        self._agent_listen(REPLY_WAIT, first=False)

    @property
    def _agent_session(self) -> str:
        return "VX" + self.sid[2:]

    def _relay_addresses(self, given: str, document_url: str) -> tuple[str, str]:
        """Where the phone connects, and the URL Twilio signs: the document's wss:// URL as given, or for a
        root-relative one (development), the phone's public base as ws(s)://."""
        addresses = self.phone.addresses
        if given.startswith("/"):
            signed = websocket_url(addresses.public_url) + given
        else:
            signed = given if "://" in given else websocket_url(urllib.parse.urljoin(document_url, given))
        return websocket_url(addresses.sent_to(_http_url(signed))), signed

    def _agent_say(self, text: str) -> None:
        """The caller says `text`: one final prompt; the agent's answer is heard."""
        self._take("speak", "agent")
        self.waiting_for = "agent"
        language = self._agent_voice[1] or "en-US"
        if self._agent_send({"type": "prompt", "voicePrompt": text, "lang": language, "last": True}):
            self._agent_listen(REPLY_WAIT)

    def _agent_press(self, keys: str) -> None:
        """Keys during the conversation: each a `dtmf` message when dtmfDetection is on, else nothing at all."""
        self._take("press keys", "agent")
        self.waiting_for = "agent"
        if not self._agent_dtmf:
            return
        for key in keys:
            if not self._agent_send({"type": "dtmf", "digit": key}) or self.waiting_for != "agent":
                return
            self._agent_listen(QUIET)

    def _agent_hangup_params(self) -> dict[str, str]:
        """The caller hangs up mid-conversation: the socket closes; what the action request carries."""
        self._agent_close()
        return self._agent_fields("ended")

    def _agent_send(self, message: dict) -> bool:
        try:
            self._relay.send(message)
            return True
        except RelayClosed:
            self._agent_over("failed")
            return False

    def _agent_listen(self, wait: float, *, first: bool = True) -> None:
        """Hear the agent until it is quiet: each reply (tokens up to `last`) is a line; `end` ends the session."""
        tokens: list[str] = []
        timeout = wait if first else QUIET
        while True:
            try:
                message = self._relay.receive(timeout)
            except RelayClosed:  # the app dropped the socket without `end`: Twilio ends the session as failed
                return self._agent_over("failed")
            if message is None:
                if tokens:
                    self._agent_heard("say", "".join(tokens))
                return
            kind = message.get("type")
            if kind == "text":
                tokens.append(str(message.get("token") or ""))
                if message.get("last"):
                    self._agent_heard("say", "".join(tokens))
                    tokens = []
                    timeout = QUIET
                else:
                    timeout = wait
            elif kind == "play":
                self._agent_heard("play", str(message.get("source") or ""))
            elif kind == "end":
                if tokens:
                    self._agent_heard("say", "".join(tokens))
                return self._agent_over("completed", str(message.get("handoffData") or ""))

    def _agent_heard(self, kind: str, text: str) -> None:
        voice, language = self._agent_voice
        self.transcript.append(Heard(kind, text, voice, language, 1, self.flow, self.state))

    def _agent_fields(self, status: str, handoff: str | None = None) -> dict[str, str]:
        seconds = max(0, round(self.phone.clock() - self._agent_since))
        fields = {"SessionId": self._agent_session, "SessionStatus": status, "SessionDuration": str(seconds)}
        return fields if handoff is None else {**fields, "HandoffData": handoff}

    def _agent_over(self, status: str, handoff: str | None = None) -> None:
        """The session ended (`end`, or a failed socket): close it, request the action, go on with its answer."""
        self._agent_close()
        connect, self.waiting_for = self._verb, None  # not the caller's action: what they heard stays in `heard`
        self._submit(connect, self._agent_fields(status, handoff))

    def _agent_close(self) -> None:
        if self._relay is not None:
            relay, self._relay = self._relay, None
            with contextlib.suppress(RelayClosed, OSError):
                relay.close()
