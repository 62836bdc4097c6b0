"""The web adapter's part of call recording: carrying out a state's pause, resume or stop during the
webhook (`ivr.hooks.HookRunner` calls `send`), through Twilio's REST API; simulated for the built-in
phones and tests without a fake Twilio, which show it as a hook record (`call_recording:pause`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import has_request_context, request
from twilio.http.http_client import TwilioHttpClient

from ivr.core.call_recording import RecordingCall
from ivr.core.effects import HookResult
from ivr.outbound.call_recording import update_call_recording
from ivr.outbound.client import make_client
from ivr.phone.transport import PHONE_HEADER, from_built_in_phone
from ivr.web.loopback import not_local

__all__ = ["RecordingControl"]

log = logging.getLogger("ivr.web")


class RecordingControl:
    """Sends a RecordingCall with the app's credentials (through a test's fake Twilio when there is one)."""

    def __init__(self, settings: dict, fake_http: Callable[[], object]) -> None:
        self.settings = settings
        self.fake_http = fake_http  # the test's FakeTwilioHttp, looked up when sending (tests set it late)

    def simulated(self) -> bool:
        """Nothing goes to Twilio for a built-in phone's call, nor in tests without a fake Twilio."""
        if self.fake_http() is not None:
            return False
        phone = has_request_context() and from_built_in_phone(request.environ)
        # The terminal phone over HTTP (`phone --url`) on this machine, in development: no Twilio call to pause.
        local_phone = (has_request_context() and self.settings["IVR_ENV"] == "development"
                       and bool(request.headers.get(PHONE_HEADER)) and not not_local())  # fmt: skip
        return self.settings["IVR_ENV"] == "test" or phone or local_phone

    def send(self, call: RecordingCall, timeout: float) -> HookResult:
        """Set the call's current recording's Status; the outcome is that status. Raises what Twilio answered."""
        if self.simulated():
            return HookResult(call.status)
        http = self.fake_http() or TwilioHttpClient(timeout=max(timeout, 0.1))
        client = make_client(self.settings, http_client=http)
        sid = update_call_recording(client, call.call_sid, call.status, call.pause_behavior)
        log.info("CallSid=%s recording %s %s (state '%s')", call.call_sid, sid or "-", call.status, call.state)
        return HookResult(call.status)
