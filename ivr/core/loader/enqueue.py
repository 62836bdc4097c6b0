"""Reading a state's `enqueue:`: a named queue, or a TaskRouter workflow with the task it creates."""

from __future__ import annotations

import re

import yaml

from ivr.core import flow as f
from ivr.core.hints import path_join
from ivr.core.loader.source import Reader

__all__ = ["EnqueueReader"]

ENQUEUE_KEYS = ("name", "wait_url", "workflow", "task")
TASK_KEYS = ("attributes", "priority", "timeout")
WORKFLOW_SID = re.compile(r"WW[0-9a-fA-F]{32}\Z")
# TaskRouter keeps a task at most this long (seconds): a task's timeout cannot exceed it.
TASK_TIMEOUT_MAX = 1_209_600


class EnqueueReader(Reader):
    """Reads `enqueue:`; the action reader builds on it (texts come from there)."""

    def _enqueue(self, items, path, pos, node):
        self.known_keys(items, ENQUEUE_KEYS, path)
        if ("name" in items) == ("workflow" in items):
            self.error(node, path, "give the queue's name, or a TaskRouter workflow (not both)")
            return None
        wait = self.text(items["wait_url"][1], path_join(path, "wait_url"), url=True) if "wait_url" in items else None
        if "name" in items:
            if "task" in items:
                self.error(items["task"][0], path_join(path, "task"), "a task goes with a workflow, not a named queue")
            name = self.text(items["name"][1], path_join(path, "name"))
            return f.Enqueue(name, wait, pos) if name else None
        workflow = self.string(items["workflow"][1], path_join(path, "workflow"))
        if workflow is not None and not WORKFLOW_SID.match(workflow):
            self.error(
                items["workflow"][1],
                path_join(path, "workflow"),
                f"expected a TaskRouter workflow SID (WW and 32 hex digits), got '{workflow}'",
            )
            return None
        task = self._task(items["task"][1], path_join(path, "task")) if "task" in items else None
        if workflow is None or ("task" in items and task is None):
            return None
        return f.Enqueue(None, wait, pos, workflow, task)

    def _task(self, node: yaml.Node, path: str) -> f.Task | None:
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, TASK_KEYS, path)
        attributes: tuple = ()
        if "attributes" in items:
            attributes = self._attributes(items["attributes"][1], path_join(path, "attributes"))
        priority = timeout = None
        if "priority" in items:
            priority = self.number(items["priority"][1], path_join(path, "priority"), minimum=0)
        if "timeout" in items:
            timeout = self.number(items["timeout"][1], path_join(path, "timeout"), minimum=1, maximum=TASK_TIMEOUT_MAX)
        return f.Task(attributes, priority, timeout)

    def _attributes(self, node: yaml.Node, path: str) -> tuple:
        """A JSON object: (key, value) pairs; texts are templates, other scalars keep their YAML 1.2 type."""
        items = self.mapping(node, path)
        if items is None:
            return ()
        return tuple((key, self._attribute(value, path_join(path, key))) for key, (_, value) in items.items())

    def _attribute(self, node: yaml.Node, path: str):
        if isinstance(node, yaml.MappingNode):
            return dict(self._attributes(node, path))  # a nested object, kept as pairs in a dict's order
        if isinstance(node, yaml.SequenceNode):
            return [self._attribute(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        value = self.plain(node, path)
        return self.text(node, path) if isinstance(value, str) else value
