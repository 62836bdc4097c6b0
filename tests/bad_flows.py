"""The golden bad flows in tests/flows/bad and how their errors are checked, shared by the loader and
validation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.core.loader import load_flow
from ivr.errors import FlowError, FlowLoadError

BAD = Path(__file__).resolve().parent / "flows" / "bad"


def errors_of(name: str) -> list[FlowError]:
    """Load a golden bad flow, which must fail, and return its errors."""
    with pytest.raises(FlowLoadError) as info:
        load_flow(BAD / name)
    return info.value.errors


def error_at(errors: list[FlowError], line: int, column: int) -> FlowError:
    """The one error reported at line:column."""
    found = [e for e in errors if (e.line, e.column) == (line, column)]
    assert len(found) == 1, "\n".join(e.format() for e in errors)
    return found[0]


def assert_mistake(name: str, line: int, column: int, path: str, message: str) -> None:
    """The bad flow fails with an error at line:column, with this key path and message, in its own file."""
    error = error_at(errors_of(name), line, column)
    assert (error.path, error.severity) == (path, "error")
    assert message in error.message
    assert Path(error.file).resolve() == BAD / name


def assert_one_error(name: str) -> None:
    """One mistake gives one error, not a cascade."""
    errors = errors_of(name)
    assert len(errors) == 1, "\n".join(e.format() for e in errors)
