"""Flow files in, flows out: reading a directory or a file, every problem reported at once."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from ivr.core import flow as f
from ivr.core.flow import Pos
from ivr.core.gc_pause import gc_paused
from ivr.core.hints import did_you_mean
from ivr.core.loader.catalogs import CATALOGS_DIR, localize_flow
from ivr.core.loader.source import compose
from ivr.core.loader.states import FlowReader
from ivr.core.validate import validate_flows
from ivr.errors import FlowError, FlowLoadError

__all__ = [
    "FlowFile",
    "display_path",
    "find_flow_files",
    "flow_files",
    "graph_errors",
    "load_flow",
    "load_flow_text",
    "load_flows",
    "missing_directory",
    "read_directory",
    "read_flow",
]


def display_path(path: Path) -> str:
    """The path as the author knows it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:  # another drive on Windows
        return str(path)


def flow_files(directory: Path) -> list[Path]:
    """Every flow file in a directory: *.yaml and *.yml, sorted."""
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


@dataclass(frozen=True, slots=True)
class FlowFile:
    """One flow file as read: its text, its flow (None when unusable) and the problems of its reading."""

    path: Path
    file: str  # as the author knows it (display_path)
    text: str
    flow: f.Flow | None
    problems: list[FlowError]


def missing_directory(directory: str | os.PathLike) -> FlowError:
    """The problem of a flows directory that is not there."""
    return FlowError(str(directory), 1, 1, "", "flows directory not found (set IVR_FLOWS_DIR)")


def read_directory(directory: str | os.PathLike) -> list[FlowFile]:
    """Read every flow file of a directory (structure only): what the app, hot reload and `check` all read.

    A flow id that two files give (main.yaml and main.yml) is a problem of the second, whose flow is
    dropped; a missing directory raises FlowLoadError.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FlowLoadError([missing_directory(directory)])
    out: list[FlowFile] = []
    taken: dict[str, str] = {}
    with gc_paused():
        for path in flow_files(directory):
            file = display_path(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                out.append(
                    FlowFile(path, file, "", None, [FlowError(file, 1, 1, "", f"cannot be read as UTF-8 text: {exc}")])
                )
                continue
            flow, problems = read_flow(text, file, path.stem, path.parent / CATALOGS_DIR)
            if flow is not None and flow.id in taken:
                flow, problems = (
                    None,
                    [FlowError(file, 1, 1, "", f"flow id '{flow.id}' is also used by {taken[flow.id]}")],
                )
            if flow is not None:
                taken[flow.id] = file
            out.append(FlowFile(path, file, text, flow, problems))
    return out


def find_flow_files(targets, flows_dir: str | os.PathLike) -> tuple[list[Path], list[FlowError]]:
    """The flow files that flow ids (in `flows_dir`) and paths name, resolved; and what cannot be found.

    No targets: every flow file of `flows_dir`."""
    flows_dir = Path(flows_dir)
    problems: list[FlowError] = []
    if not targets and not flows_dir.is_dir():
        problems.append(missing_directory(flows_dir))
    if not targets:
        return ([p.resolve() for p in flow_files(flows_dir)] if flows_dir.is_dir() else []), problems
    known = [p.stem for p in flow_files(flows_dir)] if flows_dir.is_dir() else []
    files = []
    for target in dict.fromkeys(targets):
        path = Path(target)
        missing = f"no flow file {target}" if path.suffix in (".yaml", ".yml") else "flow files end in .yaml or .yml"
        if not path.suffix and "/" not in target and os.sep not in target:  # a flow id
            path = flows_dir / f"{target}.yaml"
            path = path.with_suffix(".yml") if not path.is_file() and path.with_suffix(".yml").is_file() else path
            listed = f" (flows: {', '.join(sorted(known)) or 'none'})"
            missing = f"no flow '{target}' in {display_path(flows_dir)}{did_you_mean(target, known)}{listed}"
        if path.suffix in (".yaml", ".yml") and path.is_file():
            files.append(path.resolve())
        else:
            problems.append(FlowError(display_path(path), 1, 1, "", missing))
    return list(dict.fromkeys(files)), problems


def load_flows(directory: str | os.PathLike) -> dict[str, f.Flow]:
    """Load and validate every flow in a directory; raise FlowLoadError listing every problem."""
    flows: dict[str, f.Flow] = {}
    errors: list[FlowError] = []
    for read in read_directory(directory):
        errors.extend(read.problems)
        if read.flow is not None and not read.problems:
            flows[read.flow.id] = read.flow
        elif read.flow is not None:  # what the file's other mistakes did to its graph, all in one report
            errors.extend(graph_errors(read.flow))
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


def load_flow_text(
    text: str, file: str, flow_id: str, *, validate: bool = True, catalogs: str | os.PathLike | None = None
) -> f.Flow:
    """Load a flow from YAML text (its catalogs from `catalogs`, else beside `file`); raise FlowLoadError with
    every problem found."""
    with gc_paused():
        flow, errors = read_flow(text, file, flow_id, catalogs)
    if flow is not None and validate:
        errors.extend(graph_errors(flow))
    if errors or flow is None:
        raise FlowLoadError(errors)
    return flow


def graph_errors(flow: f.Flow) -> list[FlowError]:
    """The errors of one flow's own graph (a redirect to another flow is not checked): run on a flow read with
    mistakes too, so that one report lists every problem of a file."""
    return [e for e in validate_flows({flow.id: flow}, closed=False) if e.severity == "error"]


def read_flow(
    text: str, file: str, flow_id: str, catalogs: str | os.PathLike | None = None
) -> tuple[f.Flow | None, list[FlowError]]:
    """Structural reading only: the flow (None if unusable) and the problems found. A flow that offers
    languages is read with its catalogs (`catalogs`, else `catalogs/` beside the file) into a view per language."""
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
    if flow is not None and flow.defaults.languages and not reader.errors:
        directory = Path(catalogs) if catalogs is not None else Path(file).parent / CATALOGS_DIR
        flow, problems, catalog_digest = localize_flow(flow, directory, display_path)
        reader.errors.extend(problems)
        flow = replace_hash(flow, hashlib.sha256(f"{digest}:{catalog_digest}".encode()).hexdigest()[:16])
    return flow, reader.errors


def replace_hash(flow: f.Flow, content_hash: str) -> f.Flow:
    """The flow and each of its language views with the hash of what they were read from (flow and catalogs)."""
    views = {tag: replace(view, content_hash=content_hash) for tag, view in flow.localized.items()}
    base = replace(views[next(iter(views))], localized=views) if views else replace(flow, content_hash=content_hash)
    if views:
        views[next(iter(views))] = base
    return base
