"""The URLs the app writes into TwiML (DESIGN's URL table), and how Twilio should retry its callbacks."""

from __future__ import annotations

import re

__all__ = ["CALLBACK_OVERRIDES", "Urls"]


# Twilio's connection overrides for callbacks whose loss loses data (recording, transcription, call
# status): by default Twilio tries once more, on a failed connection only. Retry 3 times on a failed
# connection, a read timeout or a 5xx (the app answers 503 when its spool cannot write), each attempt
# at most 1 s to connect and 2.5 s to answer, so all four fit in the 15 s total. A fragment is never
# sent, so signatures are computed without it; the spool, not these retries, is what keeps callbacks
# (docs/reliability.md).
CALLBACK_OVERRIDES = "#ct=1000&rt=2500&tt=15000&rc=3&rp=ct,rt,5xx"


class Urls:
    """Builds the URLs the app writes into TwiML (DESIGN's URL table); root-relative or absolute."""

    __slots__ = ("base", "pci_mode")

    def __init__(self, public_url: str | None = None, *, pci_mode: bool = False) -> None:
        self.base = (public_url or "").rstrip("/")
        # IVR_PCI_MODE: Twilio's PCI mode (for <Pay>) turns transcriptions off account-wide, so none is asked for.
        self.pci_mode = pci_mode

    def entry(self, flow_id: str, state: str | None = None) -> str:
        """Where a call enters a flow: /voice/<flow>[?state=S]."""
        url = f"{self.base}/voice/{flow_id}"
        return f"{url}?state={state}" if state else url

    def callback(self, kind: str, flow_id: str, state: str, of: str | None = None) -> str:
        """Where Twilio reports a recording or transcription: /twilio/<kind>?flow=F&state=S[&kind=OF], with
        CALLBACK_OVERRIDES (`of`: "call" for a whole-call recording, kept apart from voicemail)."""
        extra = f"&kind={of}" if of else ""
        return f"{self.base}/twilio/{kind}?flow={flow_id}&state={state}{extra}{CALLBACK_OVERRIDES}"

    def action(self, flow_id: str, state: str, event: str | None = None) -> str:
        """Where a state's waiting verb reports: /voice/<flow>/<state>[?event=E]."""
        url = f"{self.base}/voice/{flow_id}/{state}"
        return f"{url}?event={event}" if event else url

    def relay(self, flow_id: str, state: str) -> str:
        """Where ConversationRelay connects for an agent state: /relay/<flow>/<state>, https -> wss, http -> ws."""
        base = re.sub(r"\Ahttp(s?)://", r"ws\1://", self.base)  # "": root-relative, as in development
        return f"{base}/relay/{flow_id}/{state}"
