"""Recorded calls: every webhook of a call as JSON lines, written by the app, read by replay.

A recording is one `<CallSid>.jsonl` file. Its first line is a header
`{"ivr_recording": 1, "call_sid", "flows": {id: content hash}, "public_url", "started", "masked",
"source"}`; each further line is one webhook: `{"t", "method", "url", "params", "status", "twiml"}`,
plus `"redacted": true` when a sensitive state's input was blanked. Lines are appended and flushed
one at a time, so a crash mid-call loses at most the line being written. The signature header is
never stored.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "FORMAT_VERSION",
    "REDACTED",
    "Recorder",
    "mask_numbers",
    "read_recording",
]

FORMAT_VERSION = 1
REDACTED = "[redacted]"
_INPUT_PARAMS = ("Digits", "SpeechResult", "UnstableSpeechResult")
_NUMBER_RE = re.compile(r"\+\d{8,15}")
_SID_RE = re.compile(r"[A-Za-z0-9]{1,64}\Z")


def mask_numbers(text: str) -> str:
    """Mask E.164 numbers, keeping the first four digits and the last two: +15551234567 -> +15550000067."""
    return _NUMBER_RE.sub(lambda m: m.group()[:5] + "0" * (len(m.group()) - 7) + m.group()[-2:], text)


class Recorder:
    """Appends each webhook of a call to `<directory>/<CallSid>.jsonl`."""

    def __init__(self, directory: str | Path, *, mask: bool = False, public_url: str | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.mask = mask
        self.public_url = public_url
        self._lock = threading.Lock()

    def record(
        self,
        *,
        call_sid: str,
        method: str,
        url: str,
        params: dict,
        status: int,
        twiml: str,
        flows: dict[str, str],
        now: datetime,
        sensitive: bool = False,
    ) -> Path | None:
        """Append one webhook; the header goes first when the call's file is new."""
        if not _SID_RE.match(call_sid or ""):
            return None  # never let a request choose a file name
        params = dict(params)
        line: dict = {"t": _iso(now), "method": method, "url": url}
        if sensitive:
            secrets = [params[k] for k in _INPUT_PARAMS if params.get(k)]
            for key in _INPUT_PARAMS:
                if params.get(key):
                    params[key] = REDACTED
            for secret in secrets:  # a template may have read the input back
                if len(secret) >= 3:
                    twiml = twiml.replace(secret, REDACTED)
            line["redacted"] = True
        if self.mask:
            params = {k: mask_numbers(v) for k, v in params.items()}
            twiml = mask_numbers(twiml)
            line["url"] = mask_numbers(url)
        line.update(params=params, status=status, twiml=twiml)
        path = self.directory / f"{call_sid}.jsonl"
        with self._lock:
            new = not path.exists()
            with path.open("a", encoding="utf-8") as out:
                if new:
                    header = {
                        "ivr_recording": FORMAT_VERSION,
                        "call_sid": call_sid,
                        "flows": flows,
                        "public_url": self.public_url,
                        "started": _iso(now),
                        "masked": self.mask,
                        "source": "app",
                    }
                    out.write(json.dumps(header, separators=(",", ":")) + "\n")
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
                out.flush()
        return path


def read_recording(path: str | Path) -> tuple[dict, list[dict]]:
    """The header and the webhook lines of a recording; a torn last line (a crash) is dropped."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the line being written when the app stopped
            raise ValueError(f"{path}:{number}: not a JSON line") from None
    if not records or records[0].get("ivr_recording") != FORMAT_VERSION:
        raise ValueError(f"{path}:1: not an ivr recording (format {FORMAT_VERSION} header expected)")
    return records[0], records[1:]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
