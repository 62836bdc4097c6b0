"""A campaign's CSV file: one contact per row (column `to`, optional `timezone`, other columns become variables).

A file-wide problem (no `to` column, not UTF-8) stops the campaign before it starts; a bad row is
kept with its `problem`, so the run reports it by its line and goes on.
"""

from __future__ import annotations

import csv
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.core.flow import variable_name_problem
from ivr.errors import CallRequestError
from ivr.outbound.checks import normalise_number

__all__ = ["Contact", "read_contacts"]


@dataclass(frozen=True, slots=True)
class Contact:
    """One row of a campaign's CSV: its line, the number as written and normalised, zone, variables."""

    line: int
    raw: str
    to: str | None
    timezone: str | None
    variables: dict
    problem: str | None = None


def read_contacts(path: str | Path) -> list[Contact]:
    """Read a campaign CSV; CallRequestError for a file-wide problem, `Contact.problem` for a bad row."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise CallRequestError(f"{path}: the file is empty; its first line names the columns (to, ...)")
            names = _columns(path, header)
            return [contact for cells in reader if (contact := _contact(reader.line_num, cells, names)) is not None]
    except UnicodeDecodeError as exc:
        raise CallRequestError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise CallRequestError(f"{path}: not a readable CSV file: {exc}") from None


def _columns(path: Path, header: list[str]) -> list[str]:
    names = [cell.strip() for cell in header]
    lowered = [name.lower() for name in names]
    if "to" not in lowered:
        raise CallRequestError(
            f"{path}:1: no 'to' column (columns: {', '.join(names)}); name the column of numbers 'to'"
        )
    for index, name in enumerate(names):
        if lowered[index] in ("to", "timezone"):
            names[index] = lowered[index]
        elif problem := variable_name_problem(name):
            raise CallRequestError(f"{path}:1: column {name!r} cannot be a variable: {problem}")
        if names.index(names[index]) != index:
            raise CallRequestError(f"{path}:1: column {names[index]!r} appears twice")
    return names


def _contact(line: int, cells: list[str], names: list[str]) -> Contact | None:
    if not any(cell.strip() for cell in cells):
        return None  # blank lines are not rows
    values = dict(zip(names, cells, strict=False))
    raw = values.pop("to", "").strip()
    zone = values.pop("timezone", "").strip() or None
    problem = None
    number = normalise_number(raw)
    if len(cells) > len(names):
        problem = f"{len(cells)} fields but {len(names)} columns"
    elif number is None:
        problem = f"{raw!r} is not a phone number in E.164: write + country code and number, e.g. +15551234567"
    elif zone is not None and not _zone_ok(zone):
        problem = f"unknown time zone {zone!r}: use an IANA name such as America/New_York"
    return Contact(line, raw, number, zone, values, problem)


def _zone_ok(name: str) -> bool:
    with suppress(ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(name) is not None
    return False
