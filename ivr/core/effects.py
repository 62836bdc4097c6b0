"""Effects: what a step asks its adapter to do besides answering, as frozen data.

- `HookCall`: call a hook during the request; its `HookResult` goes back to the engine through the
  step's continuation (`Step.pending.resume`), so the same request answers with the state it chose.
  An HTTP step's request (`ivr.core.http_step.HttpCall`) is carried out and resumed the same way.
- `SendText`: a text to send after the response, at most once per its `key` (CallSid, state, visit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HookCall", "HookResult", "SendText"]


@dataclass(frozen=True, slots=True)
class HookCall:
    """Call hook `name` for a call in `flow`/`state`; `context` is what the hook sees (a HookContext's fields)."""

    name: str
    flow: str
    state: str
    context: dict


@dataclass(frozen=True, slots=True)
class HookResult:
    """What a hook answered: variables to set and an outcome to route on, or the error it met."""

    outcome: str | None = None
    vars: dict = field(default_factory=dict)
    error: str | None = None
    language: str | None = None  # the call goes on in this language (of those its flow offers)


@dataclass(frozen=True, slots=True)
class SendText:
    """A text message to send after the response; `key` makes it at-most-once."""

    key: str
    to: str | None
    from_: str | None
    body: str

    kind = "sms"

    def as_record(self) -> dict:
        """The journal's form, as the phones show it: kind, key, to, from, body."""
        return {"kind": self.kind, "key": self.key, "to": self.to, "from": self.from_, "body": self.body}
