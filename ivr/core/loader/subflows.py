"""Reading subflows: a flow's declared `inputs:` and `returns:`, and the `subflow:` and `return:` actions."""

from __future__ import annotations

import yaml

from ivr.core.hints import path_join
from ivr.core.loader.actions import ActionReader
from ivr.core.subflow import Call, Input, Return

__all__ = ["SubflowReader"]

CALL_KEYS = ("flow", "inputs", "save_as")
RETURN_KEYS = ("outcome", "values")
INPUT_KEYS = ("default", "description")
REQUIRED = "required"


class SubflowReader(ActionReader):
    """Reads what makes a flow a subflow, and the actions that call one and return from one."""

    def action(self, kind: str, node: yaml.Node, path: str):
        if kind == "subflow":
            return self.subflow_call(node, path)
        if kind == "return":
            return self.subflow_return(node, path)
        return super().action(kind, node, path)

    def flow_inputs(self, items: dict) -> tuple:
        """`inputs:` name -> `required`, or {default: VALUE}: what a call of this subflow gives it."""
        if "inputs" not in items:
            return ()
        out = []
        for name, (key_node, value_node) in (self.mapping(items["inputs"][1], "inputs") or {}).items():
            path = path_join("inputs", name)
            if self.variable(key_node, path) is None:
                continue
            if isinstance(value_node, yaml.ScalarNode) and value_node.value == REQUIRED:
                out.append(Input(name, True, None, self.pos(key_node)))
                continue
            entry = self.mapping(value_node, path)
            if entry is None:
                continue
            self.known_keys(entry, INPUT_KEYS, path)
            if "description" in entry:
                self.string(entry["description"][1], path_join(path, "description"))
            if "default" not in entry:
                self.error(value_node, path, "write `required`, or {default: VALUE} for an optional input")
                continue
            out.append(Input(name, False, self.plain(entry["default"][1], path_join(path, "default")),
                             self.pos(key_node)))  # fmt: skip
        return tuple(out)

    def flow_returns(self, items: dict) -> tuple[str, ...]:
        """`returns:` the outcomes the subflow's return states end with (the caller routes on them)."""
        if "returns" not in items:
            return ()
        node = items["returns"][1]
        names = [self.name(n, "returns", "return") for n in self.sequence(node, "returns") or ()]
        if isinstance(node, yaml.SequenceNode) and not node.value:
            self.error(node, "returns", "a subflow returns at least one outcome: returns: [done]")
        return tuple(dict.fromkeys(n for n in names if n))

    def subflow_call(self, node: yaml.Node, path: str) -> Call | None:
        """`subflow: FLOW` or {flow, inputs: {name: value}, save_as: VARIABLE}."""
        if isinstance(node, yaml.ScalarNode):
            name = self.name(node, path, "flow")
            return Call(name, (), None, self.pos(node)) if name else None
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, CALL_KEYS, path)
        if "flow" not in items:
            self.error(node, path, "missing key: flow (the subflow to run)")
            return None
        name = self.name(items["flow"][1], path_join(path, "flow"), "flow")
        save_as = self._opt(items, "save_as", path, self.variable)
        inputs = self.values(items, "inputs", path)
        return Call(name, inputs, save_as, self.pos(node)) if name else None

    def subflow_return(self, node: yaml.Node, path: str) -> Return | None:
        """`return: OUTCOME` or {outcome, values: {name: value}}."""
        if isinstance(node, yaml.ScalarNode):
            outcome = self.name(node, path, "return")
            return Return(outcome, (), self.pos(node)) if outcome else None
        items = self.mapping(node, path)
        if items is None:
            return None
        self.known_keys(items, RETURN_KEYS, path)
        if "outcome" not in items:
            self.error(node, path, "missing key: outcome (what the calling state routes on)")
            return None
        outcome = self.name(items["outcome"][1], path_join(path, "outcome"), "return")
        return Return(outcome, self.values(items, "values", path), self.pos(node)) if outcome else None

    def values(self, items: dict, key: str, path: str) -> tuple:
        """A mapping of variable names to values or templates, as `set:` takes them."""
        if key not in items:
            return ()
        out = []
        key_path = path_join(path, key)
        for var, (key_node, value_node) in (self.mapping(items[key][1], key_path) or {}).items():
            var_path = path_join(key_path, var)
            if self.variable(key_node, var_path) is None:
                continue
            value = self.plain(value_node, var_path)
            if isinstance(value, str):
                value = self.text(value_node, var_path)
            out.append((var, value, self.pos(key_node)))
        return tuple(out)
