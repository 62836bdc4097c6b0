"""Graph size: `python -m ivr graph FLOW --format svg` on flows of 10, 100 and 300 states, three shapes.

The shapes: `generated` (ivr.testing.generated_flow, the chain of three-option menus the other
size benchmarks use, every state's retries ending in one goodbye), `survey` (ivr.testing.
generated_survey: questions in a row, with the flow's ways out 0/*/9 and retries ending in goodbye;
a deep flow), `menu tree` (benchmarks/common.py: menus of four options, dials, hooks, an error
state, the same ways out; a shallow flow). Deep flows are the hard ones for Graphviz: an edge is
laid out as a chain of hidden nodes, one per rank it crosses.

Each drawing is the whole command in a fresh process (Python's start, loading the flow, building
the graph, dot), once; its wall time and its peak memory (the largest resident set of the command
and of dot, as /usr/bin/time reports it). "dot alone" is dot on the same graph, fed its source.

Run (about a minute):

    python -m benchmarks.graph_size
    python -m benchmarks.graph_size --code /path/to/other/checkout --limit 120   # another version's command

Target: every drawing under 5 s, or a refusal (the command's error naming --format mermaid) as quick.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common
from ivr.testing import generated_flow, generated_survey

SIZES = (10, 100, 300)
SHAPES = {"generated": generated_flow, "survey": generated_survey, "menu tree": common.menu_tree_flow}
TARGET = 5.0
TIME = "/usr/bin/time"  # Debian's time package


def run(command: list[str], *, cwd: Path, limit: float, stdin: bytes | None = None) -> tuple[float, int, int, bytes]:
    """(seconds, peak bytes, exit status, stderr) of `command`; status -9 when it was killed after `limit` s.

    Peak memory is /usr/bin/time's: the largest resident set of the command and what it waited for
    (dot). Not this process's own wait4: a child forked from it starts with its resident set (~50 MiB).
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak_file, err_file = Path(tmp) / "peak", Path(tmp) / "stderr"
        start = time.perf_counter()
        with err_file.open("wb") as err:
            process = subprocess.Popen([TIME, "-f", "%M", "-o", str(peak_file), *command], cwd=cwd,
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                       start_new_session=True)  # fmt: skip
            try:
                process.communicate(stdin, timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)  # time, the command and its dot
                process.wait()
                return time.perf_counter() - start, 0, -9, b""
        elapsed = time.perf_counter() - start
        peak = int(peak_file.read_text().split()[-1]) * 1024  # its last line, in KiB
        return elapsed, peak, process.returncode, err_file.read_bytes()  # time exits with the command's status


def dot_source(text: str) -> str:
    from ivr.core.graph import graph_source
    from ivr.core.loader import load_flow_text

    return graph_source(load_flow_text(text, "graph.yaml", "graph"), "graphviz").source


def outcome(status: int, stderr: bytes) -> str:
    if status == -9:
        return "killed"
    if status == 0:
        return "drawn"
    text = stderr.decode(errors="replace")
    if "too big" in text:
        return "refused: too big"
    if "was stopped" in text:
        return "refused: dot stopped"
    return f"failed ({status})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="numbers of states (default 10,100,300)")
    parser.add_argument("--code", type=Path, default=common.ROOT, help="the checkout whose command runs (default this)")
    parser.add_argument("--limit", type=float, default=60.0, help="kill a drawing after this many seconds (default 60)")
    parser.add_argument("--no-dot-alone", action="store_true", help="skip timing dot alone")
    args = parser.parse_args(argv)
    common.clean_environ()
    common.print_header("Graph size: python -m ivr graph FLOW --format svg, by the flow's shape and number of states")
    print(f"Command from {args.code}; each drawing killed after {args.limit:.0f} s.\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ivr-graph-") as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            for shape, make in SHAPES.items():
                text = make(size)
                path = Path(tmp) / f"{shape.replace(' ', '_')}{size}.yaml"
                path.write_text(text, encoding="utf-8")
                command = [sys.executable, "-m", "ivr", "graph", str(path), "--format", "svg", "-o", f"{path}.svg"]
                seconds, peak, status, stderr = run(command, cwd=args.code, limit=args.limit)
                result = outcome(status, stderr)
                alone = ""
                if not args.no_dot_alone and result == "drawn":
                    source = dot_source(text).encode() if args.code == common.ROOT else None
                    if source is not None:
                        dot_seconds, dot_peak, _, _ = run(
                            ["dot", "-Tsvg"], cwd=Path(tmp), limit=args.limit, stdin=source
                        )
                        alone = f"{dot_seconds:.2f} s, {dot_peak / 2**20:.0f} MiB"
                shown = f"> {args.limit:.0f} s" if status == -9 else f"{seconds:.2f} s"
                memory = "unknown (killed)" if status == -9 else f"{peak / 2**20:.0f} MiB"
                rows.append([shape, f"{size:,}", result, shown, memory, alone])
                print(f"  {shape} {size}: {result}, {shown}", file=sys.stderr, flush=True)
    print(common.table(["shape", "states", "outcome", "command", "peak memory", "dot alone"], rows))
    print()
    slow = [f"{r[0]} {r[1]} ({r[2]}, {r[3]})" for r in rows if r[3].startswith(">") or float(r[3].split()[0]) >= TARGET]
    verdict = "met" if not slow else "MISSED: " + ", ".join(slow)
    print(f"- Every drawing or refusal under {TARGET:.0f} s: {verdict}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
