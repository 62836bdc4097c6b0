"""The loader: the one part of ivr that reads YAML. Flow files become the frozen model of
`ivr.core.flow`, with every problem reported at once as file:line:col (`flow.schema.json`, beside
it, describes the same language for editors)."""

from ivr.core.loader.files import (
    FlowFile,
    display_path,
    find_flow_files,
    flow_files,
    graph_errors,
    load_flow,
    load_flow_text,
    load_flows,
    missing_directory,
    read_directory,
    read_flow,
)
from ivr.core.loader.schedules import load_schedules_file, read_schedules
from ivr.core.loader.source import key_paths

__all__ = [
    "FlowFile",
    "display_path",
    "find_flow_files",
    "flow_files",
    "graph_errors",
    "key_paths",
    "load_flow",
    "load_flow_text",
    "load_flows",
    "load_schedules_file",
    "missing_directory",
    "read_directory",
    "read_flow",
    "read_schedules",
]
