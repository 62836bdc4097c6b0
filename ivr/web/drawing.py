"""Pictures drawn by Graphviz: a flow (ivr/core/graph.py) or its heat map (ivr/core/heat.py) as SVG or PNG.

    render(flow, "svg")              # the flow
    heat_svg(flow, report)           # painted with a report's figures (ivr.analytics.report)

dot runs in a subprocess with a time limit (DOT_SECONDS), so that the command line and the
reports page alike stop a drawing that would take minutes.
"""

from __future__ import annotations

import shutil
import subprocess

from ivr.core import flow as f
from ivr.core.graph import NO_GRAPHVIZ, graph_source
from ivr.core.graph_subflows import calls_subflows, graphviz_with_subflows
from ivr.core.heat import heat_source
from ivr.errors import IvrError

__all__ = ["DOT_SECONDS", "heat_svg", "render"]

# dot is stopped after this long. The drawings it is given (ivr.core.graph.MAX_RANKS_CROSSED) take it
# under 5 s here; a slower machine, or a shape the estimate misjudges, must not hold the command for minutes.
DOT_SECONDS = 10
TOO_SLOW = (
    "Graphviz did not draw flow '{flow}' as {fmt} within {seconds} s and was stopped. "
    "Use --format mermaid (the default) instead"
)


def render(flow: f.Flow, fmt: str, report: dict | None = None, flows: dict | None = None) -> bytes:
    """The flow drawn by Graphviz as `svg` or `png`, as a heat map of `report` when given one; IvrError
    naming what to install without Graphviz, or `--format mermaid` for a flow too big for dot
    (ivr.core.graph.MAX_RANKS_CROSSED) or too slow (DOT_SECONDS). With `flows`, the subflows the flow runs
    are drawn in clusters beside the states that run them."""
    if fmt not in ("svg", "png"):
        raise ValueError(f"render draws svg or png, not {fmt!r}")
    graph = graph_source(flow, "graphviz") if report is None else heat_source(flow, report, "graphviz")
    if report is None and flows and calls_subflows(flow):
        graph = graphviz_with_subflows(flow, flows)
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


def heat_svg(flow: f.Flow, report: dict) -> bytes:
    """The flow's heat map (ivr.core.heat) as SVG: `report` is ivr.analytics.report.build_report's dict."""
    return render(flow, "svg", report)
