"""Helpers of the Studio importer's tests: import a fixture definition into a flows directory, check
it as `python -m ivr check --strict` would, and call it with the built-in phone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT

from ivr.cli.check import hooks_for
from ivr.core.lint import run_checks
from ivr.studio import Imported, convert, read_definition
from ivr.web import create_app

STUDIO = ROOT / "tests" / "fixtures" / "studio"


def import_fixture(name: str, flows: Path, flow_id: str | None = None, **options) -> Imported:
    """Import tests/fixtures/studio/NAME.json as flows/FLOW_ID.yaml (default: NAME)."""
    flow_id = flow_id or name
    data = json.loads((STUDIO / f"{name}.json").read_text(encoding="utf-8"))
    flows.mkdir(parents=True, exist_ok=True)
    imported = convert(read_definition(data, f"{name}.json"), flow_id, flows_dir=flows, **options)
    (flows / f"{flow_id}.yaml").write_text(imported.text, encoding="utf-8")
    return imported


def strict_problems(flows: Path) -> list[str]:
    """What `check --strict` would fail on (errors and warnings), formatted."""
    report = run_checks([], flows_dir=flows, hooks=hooks_for(None))
    return [p.format() for p in report.problems]


def app_for(flows: Path, tmp_path: Path):
    return create_app(
        {
            "IVR_ENV": "test",
            "IVR_STORE": "memory://",
            "IVR_SPOOL_DIR": str(tmp_path / "spool"),
            "IVR_FLOWS_DIR": str(flows),
            "IVR_RECORD_DIR": None,
            "IVR_EVENTS": "off",
        }
    )


def fixtures_for(name: str):
    """The `flows` directory and the `ivr_app` (the app the `phone` fixture calls) of a test module
    whose calls go to tests/fixtures/studio/NAME.json, imported: `flows, ivr_app = fixtures_for(NAME)`."""

    @pytest.fixture
    def flows(tmp_path):
        return tmp_path / "flows"

    @pytest.fixture
    def ivr_app(flows, tmp_path):
        import_fixture(name, flows)
        return app_for(flows, tmp_path)

    return flows, ivr_app
