"""`python -m ivr graph`: a picture of a flow, drawn from the machine the engine runs: Mermaid text
(needs nothing), or SVG and PNG through Graphviz (Debian's graphviz and the graphviz package)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import click

from ivr.cli.base import Command
from ivr.core import flow as f
from ivr.core.graph import FORMATS, NO_GRAPHVIZ, graph_source, mermaid
from ivr.core.loader import display_path, find_flow_files, load_flow
from ivr.errors import IvrError

__all__ = ["DOT_SECONDS", "graph", "render"]

# dot is stopped after this long. The drawings it is given (ivr.core.graph.MAX_RANKS_CROSSED) take it
# under 5 s here; a slower machine, or a shape the estimate misjudges, must not hold the command for minutes.
DOT_SECONDS = 10
TOO_SLOW = (
    "Graphviz did not draw flow '{flow}' as {fmt} within {seconds} s and was stopped. "
    "Use --format mermaid (the default) instead"
)


def render(flow: f.Flow, fmt: str) -> bytes:
    """The flow drawn by Graphviz as `svg` or `png`; IvrError naming what to install without it, or
    `--format mermaid` for a flow too big for dot (ivr.core.graph.MAX_RANKS_CROSSED) or too slow (DOT_SECONDS)."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"render draws svg or png, not {fmt!r}")
    graph = graph_source(flow, "graphviz")
    dot = shutil.which("dot")
    if dot is None:
        raise IvrError(NO_GRAPHVIZ.format(fmt=fmt, missing="its dot program is not on PATH"))
    try:  # the graphviz package's pipe has no timeout; this is the command it runs
        done = subprocess.run(
            [dot, "-Kdot", f"-T{fmt}"], input=graph.source.encode(), capture_output=True, timeout=DOT_SECONDS
        )
    except subprocess.TimeoutExpired:  # run() has killed dot
        raise IvrError(TOO_SLOW.format(flow=flow.id, fmt=fmt, seconds=DOT_SECONDS)) from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise IvrError(f"Graphviz could not draw flow '{flow.id}' as {fmt}: {why}")
    return done.stdout


@click.command("graph", cls=Command)
@click.argument("flow")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="mermaid (the default, needs nothing), svg or png (need Graphviz); else taken from --output's suffix.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to standard output."
)
@click.option("--flows", "flows_dir", default=None, help="Flows directory (default: IVR_FLOWS_DIR or flows).")
def graph(flow: str, fmt: str | None, output: Path | None, flows_dir: str | None) -> None:
    """Draw FLOW (a flow id or a flow file) from the machine the engine runs.

    Mermaid text by default (code hosts render it); SVG or PNG through Graphviz.
    """
    if fmt is None:
        fmt = {".svg": "svg", ".png": "png"}.get(output.suffix.lower() if output else "", "mermaid")
    if fmt == "png" and output is None:
        raise click.UsageError("png is binary: name a file with --output")
    the_flow = _find_flow(flow, flows_dir or os.environ.get("IVR_FLOWS_DIR") or "flows")
    data = mermaid(the_flow).encode() if fmt == "mermaid" else render(the_flow, fmt)
    if output is None:  # mermaid or svg: text
        click.echo(data.decode("utf-8"), nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    click.echo(f"wrote {display_path(output)} ({fmt}, {len(the_flow.states)} states)", err=True)


def _find_flow(name: str, flows_dir: str) -> f.Flow:
    """A flow by id from the flows directory, or from a file path (found as `check` finds them)."""
    [*found], problems = find_flow_files([name], flows_dir)
    if problems:
        raise click.BadParameter(problems[0].message, param_hint="FLOW")
    return load_flow(found[0])
