"""What a call on the built-in phone leaves behind: what the caller heard, every webhook exchanged,
and the errors and warnings Twilio would report."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CallError", "Exchange", "Heard"]


@dataclass(frozen=True, slots=True)
class Heard:
    """One thing the caller heard: a Say's text, a Play's URL, or a Pause's seconds."""

    kind: str
    text: str
    voice: str | None
    language: str | None
    loop: int
    flow: str | None
    state: str | None
    # What could cut it short: ("dtmf", "speech") nested in a listening <Gather>, ("dtmf",) in one with
    # bargeIn="false" (speech waits for the prompts to end), () when it played whole, before any gather.
    cut_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Exchange:
    """One webhook request and its answer (status 0: no answer at all)."""

    method: str
    url: str
    params: dict[str, str]
    status: int
    body: str
    flow: str | None
    state: str | None
    time: float


@dataclass(frozen=True, slots=True)
class CallError:
    """A Twilio error or warning code and what happened; code 0 is the phone's own loop bound."""

    code: int
    message: str
