"""`python -m ivr import-studio`: a Twilio Studio flow, exported or fetched, as a flow file."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from ivr.cli.base import Command
from ivr.errors import StudioError

__all__ = ["import_studio"]


@click.command("import-studio", cls=Command)
@click.argument("definition", required=False, metavar="FLOW.json")
@click.option("-o", "--output", metavar="flows/NAME.yaml", help="Write the flow there (default: print it).")
@click.option("--strict", is_flag=True, help="Anything not carried over fails the import (exit 1, nothing written).")
@click.option("--sid", metavar="FW...", help="Fetch the flow's latest published revision from Twilio instead.")
@click.option(
    "--subflow", "subflows", multiple=True, metavar="FW...=FLOW", help="The flow id a Run Subflow widget's flow became."
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def import_studio(
    definition: str | None, output: str | None, strict: bool, sid: str | None, subflows: tuple[str, ...], force: bool
) -> None:
    """Import a Twilio Studio flow (its exported JSON, or --sid) as a flow of the flow language.

    What could not be carried over is reported on stderr, one line per widget; the flow written
    always loads, and a widget without an equivalent is a `todo:` state `check` warns about.
    """
    from ivr.studio import convert, read_definition

    data, source, name = _read(definition, sid)
    flows_dir = Path(output).parent if output else Path(_env("IVR_FLOWS_DIR") or "flows")
    flow_id = Path(output).stem if output else _flow_id(name)
    if output and Path(output).suffix not in (".yaml", ".yml"):
        raise StudioError(f"{output}: a flow file ends in .yaml or .yml")
    if output and Path(output).exists() and not force:
        raise StudioError(f"{output} exists: choose another name, or add --force to replace it")
    imported = convert(read_definition(data, source), flow_id, flows_dir=flows_dir, subflows=_subflows(subflows))
    for report in imported.reports:
        click.echo(report.format(), err=True)
    missing = [r for r in imported.reports if not r.note]  # notes (widgets no call reaches) change nothing
    if strict and missing:
        click.echo(f"{source}: {len(missing)} thing(s) not carried over; nothing written (--strict)", err=True)
        sys.exit(1)
    if not output:
        click.echo(imported.text, nl=False)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(imported.text, encoding="utf-8")
    click.echo(f"wrote {output} ({len(imported.reports)} report(s)); run python -m ivr check --strict", err=True)


def _env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def _read(definition: str | None, sid: str | None) -> tuple[object, str, str]:
    if bool(definition) == bool(sid):
        raise StudioError(
            "give either FLOW.json (exported from Studio: the flow's menu, Export to JSON) or --sid FW..."
        )
    if sid:
        from ivr.settings import load_settings
        from ivr.studio.fetch import fetch_definition

        data, name = fetch_definition(sid.strip(), load_settings())
        return data, sid.strip(), name or sid.strip()
    path = Path(definition)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudioError(
            f"{definition}: no such file: export the flow from Studio (Export to JSON), or use --sid"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudioError(f"{definition}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StudioError(
            f"{definition}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}): export the flow from Studio again"
        ) from None
    return data, definition, path.stem


def _flow_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_").lower() or "studio"


def _subflows(pairs: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        sid, eq, flow = pair.partition("=")
        if not eq or not sid.strip().startswith("FW") or not flow.strip():
            raise StudioError(f"--subflow {pair!r}: write it as FW...=FLOW_ID (the Studio flow's SID, the flow id)")
        found[sid.strip()] = flow.strip()
    return found
