"""Recorded calls loaded into the journal, so that a report can be made from production's recordings.

    for loaded in load_calls([Path("tests/calls/x.jsonl"), Path("events.json")], load_settings()):
        print(loaded.line())

Each recording (`ivr.phone.recording`'s JSON lines, or a page of Twilio's Call Events, converted
first by `ivr.phone.events`) is replayed through an app built on the flows, as `replay` does, with
the recorded times as the app's clock and the journal of the settings as its journal: the calls
land there with source `import`, at the times they happened. A call the journal already has is
skipped, so loading a folder twice counts nothing twice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.analytics.database import EventsDatabase, journal_from_settings
from ivr.analytics.privacy import analytics_key
from ivr.phone.events import call_sids, events_to_recording, load_events_file, write_recording
from ivr.phone.recording import read_recording
from ivr.phone.replay import replay
from ivr.web.app import replay_target
from ivr.web.services import services

__all__ = ["IMPORT_SOURCE", "Loaded", "load_calls"]

IMPORT_SOURCE = "import"


@dataclass(slots=True)
class Loaded:
    """One call loaded (or skipped, saying why), with how many webhooks it had and how many the flows
    now answer differently (the journal shows today's path through them)."""

    name: str
    call_sid: str
    steps: int = 0
    differing: int = 0
    changed_flows: list[str] = field(default_factory=list)
    skipped: str | None = None

    def line(self) -> str:
        """What the command prints for it."""
        if self.skipped:
            return f"{self.name}: {self.call_sid} skipped: {self.skipped}"
        text = f"{self.name}: {self.call_sid} loaded ({self.steps} webhooks)"
        if self.differing:
            changed = f"; changed since: {', '.join(self.changed_flows)}" if self.changed_flows else ""
            text += (
                f"; {self.differing} answered differently by today's flows{changed} (the journal shows today's path)"
            )
        return text


def load_calls(paths: Iterable[Path], settings: Mapping, *, flows_dir: str | Path | None = None) -> list[Loaded]:
    """Load recordings (.jsonl) and Call Events pages (.json) into the settings' journal (IVR_EVENTS).

    ConfigError when the journal is off, or in production without the analytics key (the calls'
    callers must be hashed with the app's key, or forget-caller would never find them); ValueError
    for a file that is neither."""
    db = journal_from_settings(settings)  # ConfigError when IVR_EVENTS is off
    loaded = []
    try:
        config = {
            "IVR_EVENTS": settings["IVR_EVENTS"],
            "IVR_ANALYTICS_KEY": analytics_key(settings).decode(),
            "IVR_ANALYTICS_NUMBERS": settings.get("IVR_ANALYTICS_NUMBERS") or "hash",
        }
        flows = Path(flows_dir or settings.get("IVR_FLOWS_DIR") or "flows")
        with tempfile.TemporaryDirectory(prefix="ivr-load-") as scratch:
            for path in paths:
                for name, recording in _recordings(Path(path), Path(scratch)):
                    loaded.append(_load_one(name, recording, db, config, flows))
    finally:
        db.close()
    return loaded


def _recordings(path: Path, scratch: Path) -> Iterable[tuple[str, Path]]:
    """(name to show, recording file) for a recording, or for each call of a Call Events page."""
    if path.suffix.lower() != ".json":
        yield str(path), path
        return
    events = load_events_file(path)
    sids = call_sids(events)
    if not sids:
        raise ValueError(f"{path}: no voice webhook of a call among its {len(events)} events")
    for sid in sids:
        lines = events_to_recording(events, sid)
        yield f"{path} ({sid})", write_recording(lines, scratch / f"{sid}.jsonl")


def _load_one(name: str, recording: Path, db: EventsDatabase, config: dict, flows: Path) -> Loaded:
    header, lines = read_recording(recording)
    if header.get("masked"):  # a masked number is shared by many callers: no caller, rather than the wrong one
        config = {**config, "IVR_ANALYTICS_NUMBERS": "drop"}
    sid = header.get("call_sid") or recording.stem
    if db.query("SELECT 1 FROM calls WHERE call_sid = ?", (sid,)):
        return Loaded(name, sid, skipped="already in the journal")
    if not lines:
        return Loaded(name, sid, skipped="no webhooks")
    apps = []

    def target(settings: dict, *, clock=None):
        made = replay_target(settings, clock=clock)
        apps.append(made.app)
        return made

    try:
        result = replay(recording, target, flows_dir=flows, source=IMPORT_SOURCE, config=config)
    finally:
        for app in apps:  # what the call's webhooks wrote is in the journal before the next call
            writer = services(app).events
            if writer is not None:
                try:
                    writer.flush()
                finally:
                    writer.close()
    differing = sum(not step.ok for step in result.steps)
    return Loaded(name, sid, len(result.steps), differing, result.changed_flows)
