"""Campaigns: call every row of a CSV file into a flow, politely, once each, and survive being stopped.

Each row lives in the session store under `campaign:<name>:<number>` (the number normalised to E.164):

    {"line": 7, "to": "+15551230007", "status": "pending" | "placed" | "failed" | "held",
     "sid": "CA...", "reason": "...", "outcome": "answered" | "busy" | ..., "updated": "2026-...Z"}

A row is marked pending before its create request and is never sent again by a later run while
pending (the request may have reached Twilio); placed and failed rows are done; held rows (outside
the calling hours, or left when a run stopped) are called by the next run. The app's status
callbacks write `outcome` into the row (see `ivr.outbound.calls`: `call:<CallSid>` names the row).
The rows come from `ivr.outbound.contacts`, the calling hours from `ivr.outbound.hours`.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.errors import CallOutcomeUnknown, CallRequestError, CampaignStopped, IvrError, TwilioCallError
from ivr.outbound.calls import CallResult, place_call
from ivr.outbound.checks import check_settings, check_target, check_variables, normalise_number
from ivr.outbound.contacts import Contact
from ivr.outbound.dry_run import DryRequest
from ivr.outbound.hours import CallHours
from ivr.store import SessionStore

__all__ = [
    "CAMPAIGN_TTL",
    "Campaign",
    "Summary",
    "campaign_name_for",
    "now_iso",
    "release_rows",
    "row_key",
    "status_report",
]

CAMPAIGN_TTL = 30 * 24 * 3600.0  # rows (and their outcomes) are kept a month after their last change
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Twilio's answers that say nothing about the row but about the account or the setup: stop the run.
FATAL_CODES = {20003, 20005, 20008, 20404, 21205, 21210, 21212, 21213}
RETRIES = 5  # a rate-limited or failed-on-Twilio's-side request is tried this many more times
DONE = ("pending", "placed", "failed")


def row_key(name: str, number: str) -> str:
    """The store key of a campaign's row: `campaign:<name>:<E.164 number>`."""
    return f"campaign:{name}:{number}"


# -- a run --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """What a run did, row by row: (line, number, detail) in each list."""

    name: str
    flow: str
    dry_run: bool = False
    placed: list[tuple[int, str, str]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    held: list[tuple[int, str, str]] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    requests: list[DryRequest] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped before the last row
    not_reached: int = 0

    @property
    def ok(self) -> bool:
        """No row failed and the run went to the end."""
        return not self.failed and self.stopped is None

    def report(self) -> str:
        """The summary printed at the end of a run."""
        verb = "would place" if self.dry_run else "placed"
        lines = [
            f"campaign {self.name} ({self.flow}): {len(self.placed)} {verb}, {len(self.failed)} failed, "
            f"{len(self.held)} held, {len(self.skipped)} skipped"
        ]
        for title, rows in (("failed", self.failed), ("held", self.held), ("skipped", self.skipped)):
            if rows:
                lines.append(f"{title}:")
                lines.extend(f"  line {line} {number}: {detail}" for line, number, detail in rows)
        if self.stopped:
            unreached = f" ({self.not_reached} rows not reached)" if self.not_reached else ""
            lines.append(f"stopped: {self.stopped}{unreached}")
        if (self.held or self.stopped) and not self.dry_run:
            lines.append("run the same command again to continue: nobody is called twice")
        if self.dry_run:
            lines.append("dry run: nothing sent, nothing stored")
        return "\n".join(lines)


class Campaign:
    """Places a campaign's calls: one per row, `rate` per second, inside the calling hours, at most once."""

    def __init__(
        self,
        settings: dict,
        name: str,
        flow: str,
        *,
        client,
        store,
        flows: dict | None = None,
        state: str | None = None,
        variables: dict | None = None,
        rate: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        retries: int = RETRIES,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        **call_options,
    ) -> None:
        """`call_options` go to every `place_call`: from_, machine_detection, timeout."""
        if not NAME.match(name or ""):
            raise CallRequestError(f"campaign name {name!r}: use letters, digits, _ and - (--campaign NAME)")
        if not rate > 0:
            raise CallRequestError(f"rate {rate!r}: give calls per second above 0 (--rate)")
        if flows is None:
            from ivr.core.loader import load_flows

            flows = load_flows(settings.get("IVR_FLOWS_DIR") or "flows")
        # Whatever would fail every row fails here, before the first row.
        check_target(settings, flows, flow, state)
        check_settings(settings, call_options.get("from_"), credentials=False)  # the client is made by the caller
        hours = settings.get("IVR_CALL_HOURS")
        self.hours = CallHours.parse(hours) if hours else None
        self.zone = settings.get("IVR_TIMEZONE") or "UTC"
        self.settings, self.name, self.flow, self.state = settings, name, flow, state
        self.variables = check_variables(variables)
        self.call_options = call_options
        self.client, self.store, self.flows = client, store, flows
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self._last: float | None = None

    def run(
        self, contacts: Iterable[Contact], *, dry_run: bool = False, on_row: Callable[[Contact], None] | None = None
    ) -> Summary:
        """Call every row that is due; return what happened. Safe to run again with the same rows."""
        summary = Summary(self.name, self.flow, dry_run=dry_run)
        if not dry_run:
            self._claim_name()
        seen: dict[str, int] = {}
        for contact in contacts:
            if summary.stopped:
                summary.not_reached += 1
            else:
                try:
                    self._row(contact, seen, summary, dry_run)
                except CampaignStopped as stop:
                    summary.stopped = f"line {contact.line}: {stop}"
                except KeyboardInterrupt:
                    summary.stopped = f"interrupted at line {contact.line}"
            if on_row is not None:
                on_row(contact)
        return summary

    def _claim_name(self) -> None:
        """Tie the campaign's name to its flow, so that a second CSV under the same name cannot mix in."""
        found: dict = {}

        def claim(old: dict | None) -> dict:
            found.update(old or {})
            return old or {"flow": self.flow, "state": self.state, "created": now_iso(self.clock)}

        self.store.update(f"campaign:{self.name}", claim, CAMPAIGN_TTL)
        if found and found.get("flow") != self.flow:
            raise CallRequestError(
                f"campaign '{self.name}' calls flow '{found.get('flow')}', not '{self.flow}': "
                "give another --campaign NAME"
            )

    def _row(self, contact: Contact, seen: dict[str, int], summary: Summary, dry_run: bool) -> None:
        if contact.problem is not None:
            summary.failed.append((contact.line, contact.raw, contact.problem))
            return
        number = contact.to
        if number in seen:
            summary.skipped.append((contact.line, number, f"duplicate of line {seen[number]}"))
            return
        seen[number] = contact.line
        key = row_key(self.name, number)
        done = _already(self.store.get(key), self.name, number)
        if done:
            summary.skipped.append((contact.line, number, done))
            return
        zone = contact.timezone or self.zone
        local = datetime.fromtimestamp(self.clock(), ZoneInfo(zone))
        if self.hours is not None and not self.hours.allows(local):
            reason = f"outside calling hours {self.hours} (IVR_CALL_HOURS): {local:%H:%M} in {zone}"
            summary.held.append((contact.line, number, reason))
            if not dry_run:
                self._write(key, contact, status="held", reason=reason)
            return
        variables = {**self.variables, **contact.variables}
        if dry_run:
            result = self._place(contact, variables, key, dry_run=True)
            summary.requests.append(result.request)
            summary.placed.append((contact.line, number, "dry run"))
            return
        if not self._claim(key, contact):
            summary.skipped.append((contact.line, number, "taken by another run of this campaign"))
            return
        self._call(contact, variables, key, summary)

    def _call(self, contact: Contact, variables: dict, key: str, summary: Summary) -> None:
        number = contact.to
        attempt = 0
        while True:
            try:
                result = self._place(contact, variables, key)
            except CallOutcomeUnknown as exc:
                self._write(key, contact, reason=str(exc))  # stays pending: never sent again by itself
                raise CampaignStopped(str(exc)) from None
            except TwilioCallError as exc:
                if _retryable(exc) and attempt < self.retries:
                    self.sleep(min(self.backoff * 2**attempt, self.max_backoff))
                    attempt += 1
                    continue
                if not (_retryable(exc) or _fatal(exc)):  # a bad row: say so and go on
                    self._write(key, contact, status="failed", reason=str(exc))
                    summary.failed.append((contact.line, number, str(exc)))
                    return
                self._write(key, contact, status="held", reason=f"not placed: {exc}")
                tries = f"Twilio still refused after {attempt + 1} tries: " if _retryable(exc) else ""
                raise CampaignStopped(f"{tries}{exc}") from None
            except IvrError as exc:  # refused before sending (a setting, a variable): nothing went out
                self._write(key, contact, status="held", reason=f"not placed: {exc}")
                raise CampaignStopped(str(exc)) from None
            fields = {"status": "placed", "sid": result.sid, "reason": None}
            if result.outcome:
                fields["outcome"] = result.outcome
            self._write(key, contact, **fields)
            summary.placed.append((contact.line, number, result.sid))
            return

    def _place(self, contact: Contact, variables: dict, key: str, *, dry_run: bool = False) -> CallResult:
        if not dry_run:
            self._pace()
        return place_call(
            self.settings,
            self.flow,
            contact.to,
            state=self.state,
            variables=variables,
            client=self.client,
            store=self.store,
            flows=self.flows,
            dry_run=dry_run,
            campaign=self.name,
            row=key,
            **self.call_options,
        )

    def _pace(self) -> None:
        """Wait until a create request is due: at most one per `interval` seconds."""
        if self._last is not None:
            wait = self._last + self.interval - self.clock()
            if wait > 0:
                self.sleep(wait)
        self._last = self.clock()

    def _claim(self, key: str, contact: Contact) -> bool:
        """Mark the row pending, atomically; False when another run got there first."""
        taken = False

        def claim(old: dict | None) -> dict:
            nonlocal taken
            if old is not None and old.get("status") in DONE:
                taken = True
                return old
            return self._fields(old, contact, status="pending", sid=None, reason=None)

        self.store.update(key, claim, CAMPAIGN_TTL)
        return not taken

    def _write(self, key: str, contact: Contact, **fields) -> None:
        self.store.update(key, lambda old: self._fields(old, contact, **fields), CAMPAIGN_TTL)

    def _fields(self, old: dict | None, contact: Contact, **fields) -> dict:
        # Merged into what is there: the app's status callbacks write `outcome` into the same row.
        row = {"line": contact.line, "to": contact.to, "status": None, "sid": None, "reason": None, "outcome": None}
        return {**row, **(old or {}), **fields, "updated": now_iso(self.clock)}


def _already(row: dict | None, name: str, number: str) -> str | None:
    """Why a stored row is not called again, or None when it is due."""
    if not row:
        return None
    retry = f"`python -m ivr campaign retry {name} {number}` to call it again"
    status = row.get("status")
    if status == "placed":
        return f"placed in an earlier run ({row.get('sid')})"
    if status == "failed":
        return f"failed in an earlier run: {row.get('reason')} ({retry})"
    if status == "pending":
        return (
            f"pending since {row.get('updated')}: an earlier run's request got no answer, the call may exist; "
            f"check the Twilio Console, then {retry}"
        )
    return None


def _retryable(exc: TwilioCallError) -> bool:
    status = getattr(exc, "status", None)
    return getattr(exc, "code", None) == 20429 or status == 429 or (status is not None and status >= 500)


def _fatal(exc: TwilioCallError) -> bool:
    return getattr(exc, "code", None) in FATAL_CODES or getattr(exc, "status", None) in (401, 403)


# -- names, reports and releases ----------------------------------------------------------------


def now_iso(clock: Callable[[], float] | None = None) -> str:
    """The time as ISO 8601 in UTC, seconds precision."""
    moment = datetime.now(UTC) if clock is None else datetime.fromtimestamp(clock(), UTC)
    return moment.isoformat(timespec="seconds")


def campaign_name_for(csv_file: str | Path, name: str | None) -> str:
    """`name`, else the CSV file's name; CallRequestError when the file's name cannot name a campaign."""
    if name is not None:
        return name
    name = Path(csv_file).stem
    if not NAME.match(name):
        raise CallRequestError(
            f"the file name {name!r} cannot name the campaign: give --campaign NAME (letters, digits, _ and -)"
        )
    return name


def status_report(store: SessionStore, name: str) -> str:
    """Each row's status and outcome, one a line in CSV order, under a line of totals."""
    rows = sorted((row for _key, row in store.scan(f"campaign:{name}:")), key=lambda row: row.get("line") or 0)
    meta = store.get(f"campaign:{name}")
    if not rows and meta is None:
        known = sorted({key.split(":")[1] for key, _ in store.scan("campaign:")})
        raise CallRequestError(f"no campaign '{name}' in the store (campaigns: {', '.join(known) or 'none'})")
    counts = Counter(row.get("status") or "?" for row in rows)
    outcomes = Counter(row["outcome"] for row in rows if row.get("outcome"))
    totals = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "no rows yet"
    lines = [f"campaign {name} ({(meta or {}).get('flow', '?')}): {len(rows)} rows: {totals}"]
    if outcomes:
        lines.append("outcomes: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())))
    for row in rows:
        detail = row.get("sid") or ""
        if row.get("reason") and row.get("status") != "placed":
            detail = f"{detail} {row['reason']}".strip()
        lines.append(
            f"line {row.get('line', '?'):>4}  {row.get('to', '?'):<16} {row.get('status') or '?':<8}"
            f" {row.get('outcome') or '-':<10} {detail}".rstrip()
        )
    return "\n".join(lines)


def release_rows(store: SessionStore, name: str, numbers: Iterable[str]) -> Iterator[tuple[bool, str]]:
    """Let the next run call these rows again; yields (released, message) per number, in order."""
    for text in numbers:
        number = normalise_number(text)
        key = row_key(name, number or text)
        row = store.get(key) if number else None
        if row is None:
            yield False, f"{text}: no such row in campaign '{name}'"
        elif row.get("status") == "placed":
            yield False, f"{number}: already placed ({row.get('sid')}); not released"
        else:
            released = {"status": "held", "reason": "released by hand", "updated": now_iso()}
            store.update(key, lambda old, released=released: {**(old or {}), **released}, CAMPAIGN_TTL)
            yield True, f"line {row.get('line')} {number}: the next run calls it"
