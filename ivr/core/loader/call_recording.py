"""Reading a state's `call_recording:` (start, pause, resume or stop recording the whole call) and its
`announces_recording:` mark (ivr.core.call_recording says what they do)."""

from __future__ import annotations

import yaml

from ivr.core.call_recording import CHANNELS, OPERATIONS, PAUSE_BEHAVIORS, TRACKS, CallRecording, ControlRecording
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.source import Reader

__all__ = ["CallRecordingReader"]

_START_KEYS = ("channels", "track", "trim")
_PAUSE_KEYS = ("behavior",)


class CallRecordingReader(Reader):
    """`call_recording: start | pause | resume | stop`, or `{start: {channels, track, trim}}`, `{pause: {behavior}}`."""

    def call_recording(self, items: dict, path: str) -> CallRecording | None:
        """The state's recording operation; None without one (or after an error)."""
        if "call_recording" not in items:
            return None
        node, key_path = items["call_recording"][1], path_join(path, "call_recording")
        options: dict = {}
        if isinstance(node, yaml.MappingNode):
            entry = self.mapping(node, key_path) or {}
            if len(entry) != 1:
                self.error(node, key_path, f"one of {', '.join(OPERATIONS)}, with its options: {{start: {{...}}}}")
                return None
            [(op, (op_node, value))] = entry.items()
            op_path = path_join(key_path, op)
            if op not in OPERATIONS:
                self.error(op_node, op_path, f"not one of {', '.join(OPERATIONS)}{did_you_mean(op, OPERATIONS)}")
                return None
            if not (isinstance(value, yaml.ScalarNode) and value.value in ("", "true")):
                options = self._options(op, value, op_path)
                if options is None:
                    return None
        else:
            op = self.string(node, key_path)
            if op is None:
                return None
            if op not in OPERATIONS:
                hint = did_you_mean(op, OPERATIONS)
                self.error(node, key_path, f"'{op}' is not one of {', '.join(OPERATIONS)}{hint}")
                return None
        return CallRecording(op, self.pos(node), **options)

    def _options(self, op: str, node: yaml.Node, path: str) -> dict | None:
        items = self.mapping(node, path)
        if items is None:
            return None
        if op not in ("start", "pause"):
            self.error(node, path, f"{op} takes no options: write call_recording: {op}")
            return None
        self.known_keys(items, _START_KEYS if op == "start" else _PAUSE_KEYS, path)
        out: dict = {}
        for key, allowed, field in (("channels", CHANNELS, "channels"), ("track", TRACKS, "track"),
                                    ("behavior", PAUSE_BEHAVIORS, "pause_behavior")):  # fmt: skip
            if key in items:
                value = self.string(items[key][1], path_join(path, key))
                if value is not None and value not in allowed:
                    self.error(items[key][1], path_join(path, key), f"'{value}' is not one of {', '.join(allowed)}")
                elif value is not None:
                    out[field] = value
        if "trim" in items and op == "start":
            out["trim"] = self.boolean(items["trim"][1], path_join(path, "trim"))
        return out

    def recording_action(self, recording: CallRecording | None, action, items: dict, path: str):
        """The state's action: a pause, resume or stop is one (the REST request), and so the state's only one."""
        if recording is None or recording.op == "start":
            return action
        if action is not None:
            first = next(k for k in items if k in _ACTIONS)
            self.error(items[first][0], path_join(path, first),
                       f"a state that does call_recording: {recording.op} does nothing else; put {first} in the "
                       "next state")  # fmt: skip
            return action
        return ControlRecording("call_recording", recording.pos, recording)

    def announces(self, items: dict, path: str) -> bool:
        """`announces_recording: true`: the state's prompts tell the caller the call is recorded."""
        if "announces_recording" not in items:
            return False
        return bool(self.boolean(items["announces_recording"][1], path_join(path, "announces_recording")))


_ACTIONS = ("gather", "record", "dial", "enqueue", "redirect", "hangup", "reject", "run", "http", "subflow", "return",
            "pay")  # fmt: skip
