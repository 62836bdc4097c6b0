"""`python -m ivr check`: every load error, and warnings about the call graph, before callers meet them."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from ivr.cli.base import Command
from ivr.core.http_step import secret_names
from ivr.core.lint import run_checks
from ivr.hooks import load_hooks, registry

__all__ = ["check", "hooks_for"]


def hooks_for(module: str | None) -> Callable[[Path], set[str]]:
    """The hook names the app would have for a flows directory: IVR_HOOKS, else hooks.py beside the flows."""

    def names(directory: Path) -> set[str]:
        load_hooks(module, directory)
        return registry.names()

    return names


@click.command("check", cls=Command)
@click.argument("flows", nargs=-1)
@click.option("--strict", is_flag=True, help="Warnings count as errors (exit status 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(flows: tuple[str, ...], strict: bool, fmt: str) -> None:
    """Find mistakes in flows before callers do: every load error, and warnings about the call graph.

    FLOWS are flow ids (in IVR_FLOWS_DIR, default flows/) or paths to .yaml files; none: every
    flow. Exit status 1 on errors (with --strict, on warnings too).
    """
    env = os.environ.get
    report = run_checks(
        flows,
        flows_dir=env("IVR_FLOWS_DIR") or "flows",
        hooks=hooks_for(env("IVR_HOOKS") or None),
        schedules=env("IVR_SCHEDULES") or None,
        secrets=secret_names(env("IVR_HTTP_SECRETS")),
        pci_mode=(env("IVR_PCI_MODE") or "0").strip().lower() in ("1", "true", "yes", "on"),
        public_url=env("IVR_PUBLIC_URL") or None,  # an agent state's relay URL is built from it
    )
    lines = [p.format() for p in report.problems] + [report.summary()]
    click.echo(report.as_json() if fmt == "json" else "\n".join(lines))
    if report.failed(strict):
        sys.exit(1)  # as the other commands do: ivr.cli.main lets SystemExit through
