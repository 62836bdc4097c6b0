"""A Studio flow's definition from Twilio: the latest published revision, through the REST API (v2).

`Flows/{sid}` is the flow as last saved, which may be a draft nobody calls; what callers meet is
the latest *published* revision, `Flows/{sid}/Revisions/LatestPublished`, so that is what is imported.
"""

from __future__ import annotations

import re
from typing import Any

from twilio.base.exceptions import TwilioException

from ivr.errors import StudioError
from ivr.outbound.client import make_client, twilio_error

__all__ = ["FLOW_SID", "fetch_definition"]

FLOW_SID = re.compile(r"FW[0-9a-fA-F]{32}\Z")


def fetch_definition(sid: str, settings: dict, *, http_client=None) -> tuple[dict[str, Any], str]:
    """The definition of flow `sid`'s latest published revision, and the flow's friendly name."""
    if not FLOW_SID.match(sid):
        raise StudioError(
            f"{sid!r} is not a Studio flow SID: those are FW and 32 hex digits; copy it from the Twilio "
            "Console (Studio, the flow's page, or the Flow SID under its Trigger widget)"
        )
    client = make_client(settings, http_client=http_client)
    try:
        revision = client.studio.v2.flows(sid).revisions("LatestPublished").fetch()
    except TwilioException as exc:
        error = twilio_error(exc)
        hint = ""
        if getattr(error, "status", None) == 404:
            hint = ": the flow does not exist in this account, or has never been published (publish it in Studio)"
        raise StudioError(f"{sid}: cannot fetch its latest published revision: {error}{hint}") from None
    definition = revision.definition
    if not isinstance(definition, dict):
        raise StudioError(f"{sid}: Twilio's answer has no flow definition")
    return definition, str(revision.friendly_name or "")
