"""`python -m ivr call` and `sms`."""

from ivr.outbound.calls import call_command as call
from ivr.outbound.calls import sms_command as sms

__all__ = ["call", "sms"]
