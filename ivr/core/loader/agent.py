"""Reading a state's `agent:` (a conversation on Twilio's ConversationRelay): its instructions, tools and their
parameters, the ends it may choose, keys, limits and the relay's attributes."""

from __future__ import annotations

import re

import yaml

from ivr.core import flow as f
from ivr.core.agent import AGENT_OUTCOMES, Agent, AgentEnd, AgentTool
from ivr.core.agent_relay import RELAY_ATTRIBUTES, RELAY_SET_BY_IVR
from ivr.core.hints import did_you_mean, path_join
from ivr.core.loader.source import Reader

__all__ = ["AGENT_KEYS", "PARAMETER_KEYS", "PARAMETER_TYPES", "AgentReader"]

AGENT_KEYS = ("instructions", "welcome", "tools", "ends", "keys", "limits", "save_as", "model", "relay")
TOOL_KEYS = ("description", "parameters")
END_KEYS = ("description", "values")
LIMIT_KEYS = {"turns": (1, 200), "seconds": (10, 14400), "silence": (5, 600)}  # a call lasts at most 4 hours
PARAMETER_TYPES = ("string", "integer", "number", "boolean")
PARAMETER_KEYS = ("type", "description", "pattern", "enum", "minimum", "maximum", "maxLength")
_BY_TYPE = {"pattern": "a string", "maxLength": "a string", "minimum": "an integer or number",
            "maximum": "an integer or number"}  # fmt: skip
# An argument's and a value's name: a variable name (args.X, save_as.X) and a JSON Schema property name.
_ARG_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
_TOOL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")  # what OpenAI-compatible APIs take as a function's name
_KEY_RE = re.compile(r"[0-9*#]\Z")
# relay: attributes whose values Twilio documents as a closed set.
_CHOICES = {"interruptible": ("none", "dtmf", "speech", "any", "true", "false"),
            "welcome_greeting_interruptible": ("none", "dtmf", "speech", "any", "true", "false"),
            "interrupt_sensitivity": ("low", "medium", "high")}  # fmt: skip
END_TOOL_PREFIX = "end_"  # the model ends on a route by calling end_<route> (agent-design.md)


class AgentReader(Reader):
    """Reads `agent:`; the action reader builds on it (texts, names and variables come from there)."""

    def _agent(self, items, path, pos, node):
        self.known_keys(items, AGENT_KEYS, path)
        if "instructions" not in items:
            self.error(node, path, "missing key: instructions (what the model is told to do, templated)")
        if "ends" not in items:
            self.error(node, path, "missing key: ends (the routes the model may end the conversation on)")
        instructions = self._opt(items, "instructions", path, self.text)
        ends = self._ends(items["ends"][1], path_join(path, "ends")) if "ends" in items else ()
        tools = self._tools(items["tools"][1], path_join(path, "tools")) if "tools" in items else ()
        keys = self._keys(items["keys"][1], path_join(path, "keys"), ends) if "keys" in items else ()
        limits = self._limits(items["limits"][1], path_join(path, "limits")) if "limits" in items else {}
        save_as = self._opt(items, "save_as", path, self.variable)
        if save_as is None and "save_as" not in items:
            for end in ends:
                if end.values:
                    message = "its values are kept in a variable: add agent.save_as: NAME"
                    self.error(end.pos, path_join(path_join(path_join(path, "ends"), end.name), "values"), message)
        relay = self._relay(items["relay"][1], path_join(path, "relay")) if "relay" in items else ()
        if instructions is None or not ends:
            return None
        return Agent(
            pos=pos,
            instructions=instructions,
            ends=ends,
            tools=tools,
            welcome=self._opt(items, "welcome", path, self.text),
            keys=keys,
            model=self._opt(items, "model", path, self.string),
            save_as=save_as,
            relay=relay,
            **limits,
        )

    def _ends(self, node: yaml.Node, path: str) -> tuple[AgentEnd, ...]:
        out = []
        for name, (key_node, value_node) in (self.mapping(node, path) or {}).items():
            end_path = path_join(path, name)
            if name in (*AGENT_OUTCOMES, f.NEXT_EVENT):
                why = "is an outcome of every agent state: route it under the state's routes, not as an end"
                self.error(key_node, end_path, f"'{name}' {why}")
                continue
            if not f.NAME_RE.match(name) or len(name) > 64 - len(END_TOOL_PREFIX):
                self.error(key_node, end_path, "an end's name may use only letters, digits, '_' and '-' (60 at most)")
                continue
            entry = self.mapping(value_node, end_path)
            if entry is None:
                continue
            self.known_keys(entry, END_KEYS, end_path)
            description = self._description(entry, value_node, end_path, "when the model should end here")
            values = ()
            if "values" in entry:
                values_path = path_join(end_path, "values")
                values = tuple(self._described(entry["values"][1], values_path, "value"))
            if description is not None:
                out.append(AgentEnd(name, description, values, self.pos(key_node)))
        if not out and isinstance(node, yaml.MappingNode) and not node.value:
            self.error(node, path, "an agent needs at least one end, e.g. resolved: {description: ...}")
        return tuple(out)

    def _described(self, node: yaml.Node, path: str, what: str):
        """name -> description pairs (an end's values)."""
        for name, (key_node, value_node) in (self.mapping(node, path) or {}).items():
            if not _ARG_RE.match(name):
                why = f"a {what}'s name is a variable name: letters, digits, '_'"
                if " " in name and isinstance(value_node, yaml.ScalarNode) and value_node.value == "":
                    why += " (inside {...} a comma ends a value: put text with commas in quotes)"
                self.error(key_node, path_join(path, name), why)
                continue
            said = self.string(value_node, path_join(path, name))
            if said is not None:
                yield name, said

    def _description(self, entry: dict, node: yaml.Node, path: str, what: str) -> str | None:
        if "description" not in entry:
            self.error(node, path, f"missing key: description (what the model reads: {what})")
            return None
        return self.string(entry["description"][1], path_join(path, "description"))

    def _tools(self, node: yaml.Node, path: str) -> tuple[AgentTool, ...]:
        out = []
        for name, (key_node, value_node) in (self.mapping(node, path) or {}).items():
            tool_path = path_join(path, name)
            if not _TOOL_RE.match(name):
                self.error(key_node, tool_path, "a tool's name is a hook's or a state's: letters, digits, '_', '-'")
                continue
            if name.startswith(END_TOOL_PREFIX):
                self.error(key_node, tool_path, f"tools named {END_TOOL_PREFIX}... are the ends': rename it")
                continue
            entry = self.mapping(value_node, tool_path)
            if entry is None:
                continue
            self.known_keys(entry, TOOL_KEYS, tool_path)
            description = self._description(entry, value_node, tool_path, "what the tool does")
            properties = {}
            if "parameters" in entry:
                params_path = path_join(tool_path, "parameters")
                for arg, (arg_key, arg_node) in (self.mapping(entry["parameters"][1], params_path) or {}).items():
                    arg_path = path_join(params_path, arg)
                    if not _ARG_RE.match(arg):
                        self.error(arg_key, arg_path, "a parameter's name is a variable name: letters, digits, '_'")
                    elif (schema := self._parameter(arg_node, arg_path)) is not None:
                        properties[arg] = schema
            if description is not None:
                parameters = {"type": "object", "properties": properties, "required": list(properties),
                              "additionalProperties": False}  # fmt: skip
                out.append(AgentTool(name, description, parameters, self.pos(key_node)))
        return tuple(out)

    def _parameter(self, node: yaml.Node, path: str) -> dict | None:
        """One argument's JSON Schema: type, and what limits it (pattern, enum, minimum/maximum, maxLength)."""
        entry = self.mapping(node, path)
        if entry is None:
            return None
        self.known_keys(entry, PARAMETER_KEYS, path)
        if "type" not in entry:
            self.error(node, path, f"missing key: type ({', '.join(PARAMETER_TYPES)})")
            return None
        kind = self.string(entry["type"][1], path_join(path, "type"))
        if kind not in PARAMETER_TYPES:
            if kind is not None:
                hint = did_you_mean(kind, PARAMETER_TYPES)
                self.error(entry["type"][1], path_join(path, "type"),
                           f"unknown type '{kind}'{hint}; one of {', '.join(PARAMETER_TYPES)}")  # fmt: skip
            return None
        schema: dict = {"type": kind}
        for key, (key_node, value_node) in entry.items():
            key_path = path_join(path, key)
            if key in _BY_TYPE and kind not in _BY_TYPE[key]:
                self.error(key_node, key_path, f"{key} is for {_BY_TYPE[key]} parameter")
            elif key == "description":
                schema[key] = self.string(value_node, key_path)
            elif key == "pattern":
                schema[key] = self._pattern(value_node, key_path)
            elif key == "maxLength":
                schema[key] = self.number(value_node, key_path, minimum=1, maximum=1000)
            elif key in ("minimum", "maximum"):
                schema[key] = self.number(value_node, key_path, minimum=-1e15, integer=kind == "integer")
            elif key == "enum":
                choices = [self.plain(n, key_path) for n in self.sequence(value_node, key_path) or ()]
                schema[key] = [c for c in choices if c is not None] or None
                wanted = {"string": str, "integer": int, "number": (int, float), "boolean": bool}[kind]
                fit = [c for c in choices if isinstance(c, wanted) and (kind == "boolean" or not isinstance(c, bool))]
                if not choices or len(fit) < len(choices):  # a value no argument of the type could be
                    self.error(value_node, key_path, f"list the {kind} values the argument may take, at least one")
                    schema[key] = None
        if None in schema.values():
            return None
        if schema.get("minimum", float("-inf")) > schema.get("maximum", float("inf")):
            self.error(node, path, f"minimum {schema['minimum']} is above maximum {schema['maximum']}: no value fits")
            return None
        if kind == "string" and not {"pattern", "enum", "maxLength"} & set(schema):
            schema["maxLength"] = 200  # the model's arguments are caller input: never unbounded
        return schema

    def _pattern(self, node: yaml.Node, path: str) -> str | None:
        source = self.string(node, path)
        if source is not None:
            try:
                re.compile(source)
            except re.error as exc:
                self.error(node, path, f"not a regular expression: {exc}")
                return None
        return source

    def _keys(self, node: yaml.Node, path: str, ends: tuple[AgentEnd, ...]) -> tuple[tuple[str, str], ...]:
        """`keys: {"0": operator}`: a key pressed during the conversation ends it on that end."""
        names = [e.name for e in ends]
        out = []
        for key, (key_node, value_node) in (self.mapping(node, path) or {}).items():
            key_path = path_join(path, key)
            if not _KEY_RE.match(key):
                self.error(key_node, key_path, "expected one key: 0-9, * or #")
                continue
            end = self.string(value_node, key_path)
            if end is not None and end not in names:
                self.error(value_node, key_path, f"unknown end '{end}'{did_you_mean(end, names)}; ends: "
                           + ", ".join(names))  # fmt: skip
            elif end is not None:
                out.append((key, end))
        return tuple(out)

    def _limits(self, node: yaml.Node, path: str) -> dict:
        entry = self.mapping(node, path) or {}
        self.known_keys(entry, tuple(LIMIT_KEYS), path)
        out = {}
        for key, (low, high) in LIMIT_KEYS.items():
            if key in entry and (value := self.number(entry[key][1], path_join(path, key), minimum=low, maximum=high)):
                out[key] = value
        return out

    def _relay(self, node: yaml.Node, path: str) -> tuple[tuple[str, object], ...]:
        """`relay:` <ConversationRelay>'s attributes, named as twilio-python's builder names them."""
        out = []
        for key, (key_node, value_node) in (self.mapping(node, path) or {}).items():
            key_path = path_join(path, key)
            if key in RELAY_SET_BY_IVR:
                why = {"url": "the app's own /relay/<flow>/<state>, from IVR_PUBLIC_URL", "welcome_greeting":
                       "agent.welcome", "dtmf_detection": "on when agent.keys has keys"}[key]  # fmt: skip
                self.error(key_node, key_path, f"ivr sets {key} itself: {why}")
                continue
            if key not in RELAY_ATTRIBUTES:
                hint = did_you_mean(key, RELAY_ATTRIBUTES) or " (see twilio-python's ConversationRelay attributes)"
                self.error(key_node, key_path, f"unknown ConversationRelay attribute{hint}")
                continue
            value = (
                self.language_tag(value_node, key_path)
                if key.endswith("language")
                else self.plain(value_node, key_path)
            )
            if value is None:
                if isinstance(value_node, yaml.ScalarNode):  # written empty or null: Twilio's default is no value
                    self.error(value_node, key_path, "give a value, or remove the key for Twilio's default")
                continue
            if key in _CHOICES and str(value).lower() not in _CHOICES[key]:
                self.error(value_node, key_path, f"expected one of {', '.join(_CHOICES[key])}, got '{value}'")
                continue
            out.append((key, value))
        return tuple(out)
