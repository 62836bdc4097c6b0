"""Waiting without dead air: what a caller hears while a slow hook or HTTP step works (`filler:`).

    balance:
      run: fetch_balance
      filler: {say: "One moment while I look that up.", after: 1.5, deadline: 30}
      routes: {found: tell_balance}
      on_error: sorry

When the work has not finished `after` seconds into the webhook, the adapter answers at once with what
the walk rendered so far, the filler and a Redirect to the state's wait URL
(`/voice/<flow>/<state>?event=wait&job=ID`); the work goes on in the background, its result kept in the
store. Each wait request picks the result up (`Engine.finish_hook` goes on from the state with it) or
plays the filler again, until `deadline` seconds after the work started: then the state takes its
error route, as a hook that timed out. No I/O here: the data, and the documents it answers with.
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import Redirect, VoiceResponse

from ivr.core import flow as f
from ivr.core.effects import HookResult
from ivr.core.http_step import Http

__all__ = [
    "DEFAULT_AFTER",
    "DEFAULT_DEADLINE",
    "FILLER_KEYS",
    "MAX_AFTER",
    "MAX_DEADLINE",
    "WAIT_EVENT",
    "Filler",
    "filler_document",
    "overdue",
    "wait_url",
]

FILLER_KEYS = ("say", "play", "msg", "after", "deadline")
DEFAULT_AFTER = 2.0  # seconds of silence the caller may hear before the filler starts
MAX_AFTER = 5  # later than this, the caller hears too long a silence (and the webhook nears Twilio's 15 s)
DEFAULT_DEADLINE = 30.0  # seconds the work may take in all, counted from when it started
MAX_DEADLINE = 120  # a caller kept on hold longer than this should be offered something else
WAIT_EVENT = "wait"


@dataclass(frozen=True, slots=True)
class Filler:
    """What a run/http state plays while its work is slow: one Say or Play, the threshold after which it
    starts, and the work's own deadline."""

    prompt: f.Say | f.Play
    after: float
    deadline: float
    pos: f.Pos


def wait_url(renderer, flow_id: str, state: str, job: str) -> str:
    """Where a filler's Redirect goes: /voice/<flow>/<state>?event=wait&job=ID."""
    return f"{renderer.urls.action(flow_id, state, WAIT_EVENT)}&job={job}"


def filler_document(renderer, filler: Filler, url: str, segments=(), rendered=()) -> str:
    """The document a slow step answers with: what its walk rendered so far (once), the filler, and the
    Redirect that comes back for the result."""
    response = VoiceResponse()
    for (name, variant), verbs in zip(segments, rendered, strict=True):
        for verb in renderer.verbs(name, variant, None) if verbs is None else verbs:
            response.append(verb)
    response.append(renderer.prompt_verb(filler.prompt))
    response.append(Redirect(url, method="POST"))
    return response.to_xml()


def overdue(action: f.Run) -> HookResult:
    """The result of work past its deadline (or lost with its server): a hook's timeout, an HTTP step's."""
    return HookResult("timeout" if isinstance(action, Http) else None, error="timeout")
