"""The callback spool: Twilio's callbacks written to local disk before they are answered, drained into
the store later, so that a store fault never loses a voicemail or a call's final status.

    IVR_SPOOL_DIR/incoming.jsonl     appended by every worker: one JSON object a line, fsync'd
    IVR_SPOOL_DIR/batch-<ns>.jsonl   what the drainer took from incoming, until the store has it all
    IVR_SPOOL_DIR/rejected.jsonl     entries the drainer could not understand or apply, kept for a human
    IVR_SPOOL_DIR/drain.lock         held (flock) by the one process draining this directory

Writers and the drainer meet on `incoming.jsonl` under flock: a writer appends under the lock and
checks that the file it locked is still the one at that name; the drainer renames it away under the
same lock. An entry leaves the spool only after the store committed it (the batch is rewritten
without the entries already applied, or removed once all are).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import SpoolError, StoreError

__all__ = ["DrainResult", "Spool"]

log = logging.getLogger("ivr.web")

_INCOMING = "incoming.jsonl"
_LOCK = "drain.lock"
_REJECTED = "rejected.jsonl"


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one drain did: entries applied, set aside as rejected, and left for the next drain."""

    applied: int = 0
    rejected: int = 0
    left: int = 0


class Spool:
    """An append-only spool of JSON entries in one directory, drained by one process at a time."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def append(self, entry: dict) -> None:
        """Write one entry and fsync it; SpoolError when the disk refuses (the callback must not be acknowledged)."""
        # When it was written, for the age of the oldest waiting entry (a batch's mtime moves on each retry).
        entry = {"spooled_at": time.time(), **entry}
        line = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
        path = self.directory / _INCOMING
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    if _same_file(fd, path):  # else the drainer took this file away: open the new one
                        _append(fd, line, self.directory)
                        return
                finally:
                    os.close(fd)  # releases the lock
        except OSError as exc:
            raise SpoolError(f"callback spool {self.directory}: cannot write: {exc.strerror or exc}") from exc

    def pending(self) -> int:
        """Entries waiting in the spool (incoming and batches), for tests and readiness."""
        total = 0
        for path in [self.directory / _INCOMING, *self._batches()]:
            with suppress(FileNotFoundError):
                total += sum(1 for line in path.read_bytes().splitlines() if line.strip())
        return total

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds the oldest waiting entry has waited (0 when none waits), for the spool's age metric."""
        for path in [*self._batches(), self.directory / _INCOMING]:  # batches hold what came before incoming
            try:
                with open(path, "rb") as lines:
                    first = next((line for line in lines if line.strip()), None)
                    written = os.fstat(lines.fileno()).st_mtime
            except FileNotFoundError:
                continue
            if first is None:
                continue
            with suppress(ValueError, TypeError, KeyError):  # an entry from before the stamp: the mtime
                written = float(json.loads(first)["spooled_at"])
            return max(0.0, (time.time() if now is None else now) - written)
        return 0.0

    def drain(self, apply: Callable[[dict], None]) -> DrainResult | None:
        """Apply every entry, oldest first; None when another process is draining this directory.

        StoreError stops the drain (the store is down: the rest waits for the next one); any other
        error sets that entry aside in rejected.jsonl with a log line, so one bad entry never blocks the rest.
        """
        total: DrainResult | None = None
        while True:
            with self._drain_lock() as held:
                if not held:
                    return total  # another process drains this directory, and what came meanwhile
                result = self._drain_held(apply)
            total = result if total is None else DrainResult(
                total.applied + result.applied, total.rejected + result.rejected, result.left
            )  # fmt: skip
            # An entry appended while the lock was held: its writer's drain found the lock taken, so this one takes it.
            if result.left or not self._has_incoming():
                return total

    def _drain_held(self, apply: Callable[[dict], None]) -> DrainResult:
        self._take_incoming()
        applied = rejected = 0
        for batch in self._batches():
            done, bad, left = self._drain_batch(batch, apply)
            applied, rejected = applied + done, rejected + bad
            if left:
                return DrainResult(applied, rejected, left + self._left_after(batch))
        return DrainResult(applied, rejected, 0)

    def _has_incoming(self) -> bool:
        try:
            return (self.directory / _INCOMING).stat().st_size > 0
        except FileNotFoundError:
            return False

    def forget(self, matches: Callable[[dict | None, bytes], bool]) -> int:
        """Drop every entry `matches(entry, line)` picks (entry None when the line is not a JSON object) from
        incoming, the batches and rejected.jsonl, holding the drainer's lock (a drain under way finishes
        first); how many were dropped. For privacy requests: a caller's callbacks must not wait on disk."""
        dropped = 0
        with self._drain_lock(wait=True):
            self._take_incoming()
            for path in [*self._batches(), self.directory / _REJECTED]:
                try:
                    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
                except FileNotFoundError:
                    continue
                kept = [line for line in lines if not matches(_entry(line), line)]
                if len(kept) == len(lines):
                    continue
                dropped += len(lines) - len(kept)
                if kept:
                    _rewrite(path, kept)
                else:
                    path.unlink()
                    _fsync_dir(self.directory)
        return dropped

    # -- the drainer's side ----------------------------------------------------------------------

    @contextmanager
    def _drain_lock(self, *, wait: bool = False) -> Iterator[bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _take_incoming(self) -> None:
        """Rename incoming.jsonl to a new batch under the writers' lock: later entries start a new file."""
        path = self.directory / _INCOMING
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size and _same_file(fd, path):
                os.rename(path, self.directory / f"batch-{time.time_ns():020d}.jsonl")
                _fsync_dir(self.directory)
        finally:
            os.close(fd)

    def _batches(self) -> list[Path]:
        return sorted(self.directory.glob("batch-*.jsonl"))

    def _left_after(self, batch: Path) -> int:
        return sum(
            sum(1 for line in path.read_bytes().splitlines() if line.strip())
            for path in self._batches()
            if path.name > batch.name
        )

    def _drain_batch(self, batch: Path, apply: Callable[[dict], None]) -> tuple[int, int, int]:
        lines = [line for line in batch.read_bytes().splitlines() if line.strip()]
        applied = rejected = 0
        for index, line in enumerate(lines):
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError("not a JSON object")
                apply(entry)
            except StoreError as exc:
                log.warning("spool: the store refused an entry (%s); %d entries wait for the next drain",
                            exc, len(lines) - index)  # fmt: skip
                _rewrite(batch, lines[index:])
                return applied, rejected, len(lines) - index
            except Exception:
                # Which call and recording, never the parameters: they hold what the caller said.
                log.exception("spool: entry %s set aside in %s", _names(line), self.directory / _REJECTED)
                _write_rejected(self.directory / _REJECTED, line)
                rejected += 1
                continue
            applied += 1
        batch.unlink()
        _fsync_dir(self.directory)
        return applied, rejected, 0


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _append(fd: int, line: bytes, directory: Path) -> None:
    """One whole line and an fsync, or nothing: a failed write is cut off so the next line starts clean."""
    size = os.fstat(fd).st_size
    try:
        written = 0
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
    except OSError:
        with suppress(OSError):
            os.ftruncate(fd, size)
        raise
    if size == 0:  # a new file: its name must survive a crash too
        _fsync_dir(directory)


def _rewrite(batch: Path, lines: list[bytes]) -> None:
    tmp = batch.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(b"".join(line + b"\n" for line in lines))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, batch)
    _fsync_dir(batch.parent)


def _write_rejected(path: Path, line: bytes) -> None:
    with open(path, "ab") as out:
        out.write(line + b"\n")
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry(line: bytes) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _names(line: bytes) -> str:
    """The CallSid and RecordingSid of a spooled line, for a log line, when they can be read."""
    try:
        params = json.loads(line).get("params") or {}
    except (ValueError, AttributeError):
        return "(unreadable)"
    found = [f"{key}={params[key]}" for key in ("CallSid", "RecordingSid") if isinstance(params.get(key), str)]
    return " ".join(found) or "(no CallSid)"
