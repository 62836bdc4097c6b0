"""Flow files in, flows out: reading a directory or a file, every problem reported at once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ivr.core import flow as f
from ivr.core.flow import Pos
from ivr.core.gc_pause import gc_paused
from ivr.core.loader.source import compose
from ivr.core.loader.states import FlowReader
from ivr.core.validate import validate_flows
from ivr.errors import FlowError, FlowLoadError

__all__ = ["display_path", "flow_files", "load_flow", "load_flow_text", "load_flows", "read_flow"]


def display_path(path: Path) -> str:
    """The path as the author knows it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:  # another drive on Windows
        return str(path)


def flow_files(directory: Path) -> list[Path]:
    """Every flow file in a directory: *.yaml and *.yml, sorted."""
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_flows(directory: str | os.PathLike) -> dict[str, f.Flow]:
    """Load and validate every flow in a directory; raise FlowLoadError listing every problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FlowLoadError([FlowError(str(directory), 1, 1, "", "flows directory not found (set IVR_FLOWS_DIR)")])
    flows: dict[str, f.Flow] = {}
    errors: list[FlowError] = []
    for path in flow_files(directory):
        try:
            flow = load_flow(path, validate=False)  # cross-flow checks follow, once all are read
        except FlowLoadError as exc:
            errors.extend(exc.errors)
            continue
        if flow.id in flows:
            errors.append(FlowError(flow.file, 1, 1, "", f"flow id '{flow.id}' is also used by {flows[flow.id].file}"))
            continue
        flows[flow.id] = flow
    with gc_paused():
        errors.extend(e for e in validate_flows(flows) if e.severity == "error")
    if errors:
        raise FlowLoadError(errors)
    return flows


def load_flow(path: str | os.PathLike, *, validate: bool = True) -> f.Flow:
    """Load one flow file; its id is the file name without extension."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FlowLoadError([FlowError(display_path(path), 1, 1, "", f"cannot be read as UTF-8 text: {exc}")]) from None
    return load_flow_text(text, display_path(path), path.stem, validate=validate)


def load_flow_text(text: str, file: str, flow_id: str, *, validate: bool = True) -> f.Flow:
    """Load a flow from YAML text; raise FlowLoadError with every problem found."""
    with gc_paused():
        flow, errors = read_flow(text, file, flow_id)
    if flow is not None and validate:
        errors.extend(e for e in validate_flows({flow.id: flow}, closed=False) if e.severity == "error")
    if errors or flow is None:
        raise FlowLoadError(errors)
    return flow


def read_flow(text: str, file: str, flow_id: str) -> tuple[f.Flow | None, list[FlowError]]:
    """Structural reading only: the flow (None if unusable) and the problems found."""
    try:
        root = compose(text, file)
    except FlowError as exc:
        return None, [exc]
    reader = FlowReader(file)
    if not f.NAME_RE.match(flow_id):
        reader.error(Pos(file, 1, 1), "", f"flow id '{flow_id}' (the file name) must match [A-Za-z0-9_-]+")
    if root is None:
        reader.error(Pos(file, 1, 1), "", "the flow file is empty")
        return None, reader.errors
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    flow = reader.flow(root, flow_id, digest)
    return flow, reader.errors
