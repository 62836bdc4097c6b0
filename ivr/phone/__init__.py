"""The built-in phone: Twilio's part of a call (a TwiML interpreter), its transports, recordings,
replay, Call Events import and the fake Twilio HTTP client."""

from ivr.phone.interpreter import Phone, PhoneCall
from ivr.phone.records import CallError
from ivr.phone.transport import HttpTransport, Transport, WsgiTransport

__all__ = ["CallError", "HttpTransport", "Phone", "PhoneCall", "Transport", "WsgiTransport"]
