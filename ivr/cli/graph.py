"""`python -m ivr graph`: a picture of a flow, drawn from the machine the engine runs: Mermaid text
(needs nothing), or SVG and PNG through Graphviz (Debian's graphviz and the graphviz package).
With --heat, the picture is painted with the journal's figures (ivr/core/heat.py)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ivr.cli.base import Command
from ivr.cli.reports import journal, window, with_window
from ivr.core import flow as f
from ivr.core.graph import FORMATS, mermaid
from ivr.core.graph_subflows import calls_subflows, mermaid_with_subflows
from ivr.core.heat import heat_mermaid
from ivr.core.loader import display_path, find_flow_files, load_flow, read_directory

__all__ = ["graph"]


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
@click.option(
    "--heat",
    is_flag=True,
    help="A heat map from the journal (IVR_EVENTS): states by traffic and hang-ups, edges by the times taken.",
)
@with_window
@click.pass_context
def graph(
    ctx: click.Context,
    flow: str,
    fmt: str | None,
    output: Path | None,
    flows_dir: str | None,
    heat: bool,
    since: str | None,
    until: str | None,
    source: str,
) -> None:
    """Draw FLOW (a flow id or a flow file) from the machine the engine runs.

    Mermaid text by default (code hosts render it); SVG or PNG through Graphviz. With --heat, painted
    with the calls in the journal (--since, --until and --source choose which, as `report` does).
    """
    if fmt is None:
        fmt = {".svg": "svg", ".png": "png"}.get(output.suffix.lower() if output else "", "mermaid")
    if fmt == "png" and output is None:
        raise click.UsageError("png is binary: name a file with --output")
    given = [
        p for p in ("since", "until", "source") if ctx.get_parameter_source(p) != click.core.ParameterSource.DEFAULT
    ]
    if given and not heat:
        raise click.UsageError(f"--{given[0]} chooses the calls of a heat map: add --heat")
    the_flow = _find_flow(flow, flows_dir or os.environ.get("IVR_FLOWS_DIR") or "flows")
    report = _report(the_flow, window(since, until, source)) if heat else None
    if fmt != "mermaid":
        from ivr.web.drawing import render  # the web room (and Flask) only for a picture

        data = render(the_flow, fmt, report, _beside(the_flow))
    elif report is None and calls_subflows(the_flow):  # each subflow opened inside the state that runs it
        data = mermaid_with_subflows(the_flow, _beside(the_flow)).encode()
    else:
        data = (mermaid(the_flow) if report is None else heat_mermaid(the_flow, report)).encode()
    if output is None:  # mermaid or svg: text
        click.echo(data.decode("utf-8"), nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    click.echo(f"wrote {display_path(output)} ({fmt}, {len(the_flow.states)} states)", err=True)


def _beside(flow: f.Flow) -> dict[str, f.Flow]:
    """The flows beside `flow` in its directory (the subflows it runs), itself included."""
    if not calls_subflows(flow):
        return {flow.id: flow}
    beside = {read.flow.id: read.flow for read in read_directory(Path(flow.file).parent) if read.flow}
    return {**beside, flow.id: flow}


def _report(flow: f.Flow, chosen) -> dict:
    """The flow's report from the journal, for the heat map."""
    from ivr.analytics.report import build_report

    db = journal()
    try:
        return build_report(db, flow, chosen)
    finally:
        db.close()


def _find_flow(name: str, flows_dir: str) -> f.Flow:
    """A flow by id from the flows directory, or from a file path (found as `check` finds them)."""
    [*found], problems = find_flow_files([name], flows_dir)
    if problems:
        raise click.BadParameter(problems[0].message, param_hint="FLOW")
    return load_flow(found[0])
