"""Erasing one caller everywhere the product keeps them, for requests under privacy law.

    erasure = forget_everywhere(load_settings(), "+15551234567")
    print(erasure.summary())

The places, in the order they are visited (each one's finds help the next: a voicemail stored
before its call's session has no number of its own, only its CallSid):

    journal      calls whose caller is the number's keyed hash (or the number, kept in clear), and their events
    sessions     calls in progress from or to the number, or found in the journal (their next webhook finds no
                 memory of the call); an agent's conversation summary (its transcript) goes with its session
    texts        SMS conversations with the number
    messages     voicemail: its caller's number, or one of the calls above
    recordings   IVR_RECORD_DIR's recorded calls with the number in their parameters, in clear or masked
    spool        callbacks waiting on disk (IVR_SPOOL_DIR) that carry the number or one of the calls

Campaign rows (`campaign:<name>:<number>`) are counted, not deleted: a row is what keeps the next run
of the campaign from calling the number again. Take the number out of the campaign's CSV; the rows
expire 30 days after their last change.

What it does not reach: Twilio's own copies (call logs, recordings, transcriptions; delete them in
the console or through the REST API), logs, backups, and what `on_message` hooks sent elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.analytics.database import open_events
from ivr.analytics.privacy import Erased, analytics_key, forget_caller
from ivr.phone.recording import forget_recordings
from ivr.store import SessionStore, store_from_settings
from ivr.web.spool import Spool

__all__ = ["Erasure", "forget_everywhere"]

_MESSAGE = "message:"
_TEXTS = "sms:"
_SESSION = "CA"  # a call's session is kept under its CallSid
_CAMPAIGNS = "campaign:"


@dataclass(slots=True)
class Erasure:
    """What forgetting one caller deleted, place by place; None where the product keeps nothing."""

    number: str
    journal: Erased | None = None
    sessions: int = 0
    texts: int = 0
    messages: int = 0
    recordings: int | None = None
    recordings_by_mask: int = 0
    spool: int = 0
    campaign_rows: int = 0  # counted, never deleted
    call_sids: set[str] = field(default_factory=set)

    def summary(self) -> str:
        """One line per place, with its counts, for the command to print."""
        j = self.journal
        rows = [
            ("journal", "off (IVR_EVENTS)" if j is None else f"{j.calls} calls, {j.events} events"),
            ("sessions", f"{self.sessions} calls in progress"),
            ("texts", f"{self.texts} SMS conversations"),
            ("messages", f"{self.messages} voicemail messages"),
        ]
        if self.recordings is None:
            rows.append(("recordings", "off (IVR_RECORD_DIR)"))
        else:
            masked = f" ({self.recordings_by_mask} by the masked number alone)" if self.recordings_by_mask else ""
            rows.append(("recordings", f"{self.recordings} recorded calls{masked}"))
        rows.append(("spool", f"{self.spool} waiting callbacks"))
        if self.campaign_rows:
            rows.append(("campaigns", f"{self.campaign_rows} rows kept, so that no run calls the number again: "
                                      "take it out of the campaigns' CSV files"))  # fmt: skip
        return "\n".join([f"erased {self.number}:", *(f"  {name:<11} {what}" for name, what in rows)])


def forget_everywhere(settings: Mapping, number: str, *, store: SessionStore | None = None, journal=None) -> Erasure:
    """Erase the caller with this normalised number from every place the settings name; what went.

    The store and the journal are opened from the settings unless given (tests give the app's own).
    The key and both databases come first: without one of them (IVR_ANALYTICS_KEY in production, a
    store that is down) nothing is erased, so that an erasure is never half done for want of a setting."""
    erasure = Erasure(number)
    url = settings.get("IVR_EVENTS")
    keeps_journal = journal is not None or bool(url)
    key = analytics_key(settings) if keeps_journal else None  # ConfigError in production without it
    own_store, own_journal = store is None, journal is None and keeps_journal
    store = store_from_settings(settings, for_the_app=True) if own_store else store
    try:
        db = open_events(url) if own_journal else journal
        try:
            if db is not None:
                policy = settings.get("IVR_ANALYTICS_NUMBERS") or "hash"
                erasure.journal = forget_caller(db, key, policy, number)
                erasure.call_sids.update(erasure.journal.call_sids)
        finally:
            if own_journal:
                db.close()
        _forget_in_store(store, erasure)
    finally:
        if own_store:
            store.close()
    if settings.get("IVR_RECORD_DIR"):
        erasure.recordings, erasure.recordings_by_mask = forget_recordings(
            settings["IVR_RECORD_DIR"], number, erasure.call_sids
        )
    spool = settings.get("IVR_SPOOL_DIR")
    if spool:
        erasure.spool = Spool(spool).forget(lambda entry, line: _carries(entry, line, erasure))
    return erasure


def _forget_in_store(store: SessionStore, erasure: Erasure) -> None:
    number = erasure.number
    for key, session in store.scan(_SESSION):
        caller = session.get("caller") or {}
        if number in (caller.get("From"), caller.get("To")) or key in erasure.call_sids:
            store.delete(key)
            erasure.sessions += 1
            erasure.call_sids.add(key)
    for key, _conversation in store.scan(_TEXTS):  # sms:<our number>:<theirs>
        if key.rsplit(":", 1)[-1] == number:
            store.delete(key)
            erasure.texts += 1
    for key, message in store.scan(_MESSAGE):
        if number in (message.get("from"), message.get("to")) or message.get("call_sid") in erasure.call_sids:
            store.delete(key)
            erasure.messages += 1
            if message.get("call_sid"):
                erasure.call_sids.add(message["call_sid"])
    erasure.campaign_rows = sum(1 for key, _row in store.scan(_CAMPAIGNS) if key.rsplit(":", 1)[-1] == number)


def _carries(entry: dict | None, line: bytes, erasure: Erasure) -> bool:
    """Whether a spooled callback is the caller's: the number in a parameter, or one of their calls."""
    if entry is None:  # unreadable: its text decides
        return erasure.number.encode() in line
    params = entry.get("params") or {}
    if not isinstance(params, dict):
        return False
    return erasure.number in {str(v) for v in params.values()} or params.get("CallSid") in erasure.call_sids
