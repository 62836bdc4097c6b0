"""The flow model of `dial:`: its targets, call screening, and the outcomes a dial can end with.

Part of the flow model (`ivr.core.flow` re-exports every name); kept apart to keep that module short.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.core.positions import Pos, Text

__all__ = ["ANSWERED_BY", "DECLINED", "DIAL_OUTCOMES", "MACHINE", "SCREEN_EVENTS", "Dial", "DialTarget", "Screen",
           "dial_outcomes", "dial_outcomes_of"]  # fmt: skip

# Twilio's DialCallStatus values; `answered` is what a <Dial> to a conference reports (`dial_outcomes`).
DIAL_OUTCOMES = ("completed", "answered", "busy", "no-answer", "failed", "canceled")
# Twilio's AnsweredBy values (answering machine detection); `machine` stands for every machine_* one.
ANSWERED_BY = ("human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
               "fax", "unknown")  # fmt: skip
MACHINE = "machine"
# A screened dial whose answering party did not accept (no key, a voicemail box, a wrong key).
DECLINED = "declined"
SCREEN_EVENTS = ("screen", "screened")  # the child leg's requests: the whisper, and its answer


@dataclass(frozen=True, slots=True)
class DialTarget:
    kind: str  # number, client, sip, conference, queue
    value: Text
    pos: Pos


@dataclass(frozen=True, slots=True)
class Screen:
    """What the answering party hears before the caller is put through, the key that accepts (ANY_KEY: any),
    and what they hear when no key came (`on_timeout`) and once they accepted (`accepted`)."""

    prompts: tuple
    key: str
    timeout: int
    pos: Pos
    on_timeout: tuple = ()
    accepted: tuple = ()


@dataclass(frozen=True, slots=True)
class Dial:
    targets: tuple[DialTarget, ...]
    caller_id: Text | None
    timeout: int | None
    record: str | None
    time_limit: int | None
    hangup_on_star: bool | None
    pos: Pos
    screen: Screen | None = None


def dial_outcomes(dial: Dial | None) -> tuple[str, ...]:
    """The DialCallStatus values `dial` can end with (None: a dial of a number): `answered` only for a conference."""
    return dial_outcomes_of([t.kind for t in dial.targets] if dial is not None else [])


def dial_outcomes_of(kinds) -> tuple[str, ...]:
    """The DialCallStatus values of a dial of these target kinds (number, client, sip, conference, queue)."""
    return DIAL_OUTCOMES if "conference" in kinds else tuple(o for o in DIAL_OUTCOMES if o != "answered")
