"""Liquid, as Studio writes it, rewritten into the flow language's (Jinja) templates.

Studio's texts, URLs and conditions are Liquid (Shopify's template language): `{{ var | filter: arg }}`
outputs and `{% tag %}` tags. The flow language's templates are Jinja in a sandbox
(ivr/core/templates.py). Variables are renamed (`widgets.menu.Digits` -> `input.digits`,
`trigger.call.From` -> `call.From`, `flow.variables.x` -> `x`), filters and tags are rewritten one
by one, and what has no equivalent is reported on the widget (`ctx.report`) and left out, never
dropped quietly. Every result is compiled by the flow language's own sandbox before it is returned.

Liquid's semantics kept where Jinja reads differently:
- only nil and false are false (`""` and `0` are true): a bare condition `x` becomes
  `x is defined and x is not none and x is not false`;
- `and`/`or` have no precedence and group from the right: `a and b or c` is `a and (b or c)`;
- `blank` (nil, false, empty or blank text, empty list) and `empty` (empty text or list) comparisons.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ivr.core.flow import CONTEXT_NAMES, VARIABLE_NAME
from ivr.core.templates import compile_condition, compile_text
from ivr.errors import LiquidUnsupported, TemplateProblem
from ivr.studio.liquid_filters import rewrite

if TYPE_CHECKING:
    from ivr.studio.model import Context, Widget

__all__ = ["expression", "paths", "text", "variable", "variable_name"]

_MARKUP = re.compile(r"(\{\{-?.*?-?\}\}|\{%-?.*?-?%\})", re.S)
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"[^"]*"|'[^']*')|(?P<range>\(\s*[^()]+?\s*\.\.\s*[^()]+?\s*\))|(?P<num>-?\d+(?:\.\d+)?)"""
    r"""|(?P<op>==|!=|<>|<=|>=|<|>)|(?P<punct>[|:,=])|(?P<path>[A-Za-z_][\w-]*(?:\.[\w-]+|\[[^\]]*\])*))"""
)
_CLOSE = {"if": "{% endif %}", "unless": "{% endif %}", "for": "{% endfor %}", "capture": "{% endset %}",
          "case": "{% endif %}", "comment": "", "raw": "{% endraw %}"}  # fmt: skip
_FLOW_DATA = re.compile(r"\bflow\.data\.([A-Za-z_][A-Za-z0-9_]*)")


def variable_name(key: str) -> str:
    """A Studio variable (`flow.variables.KEY`) as a flow variable: valid, never a reserved name."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key.strip()) or "value"
    name = name if name[0].isalpha() else "v_" + name
    return name + "_value" if name in CONTEXT_NAMES else name


def paths(widget: Widget) -> set[str]:
    """Every `flow.data.NAME` a widget reads (REST API parameters and subflow inputs)."""
    return {"flow.data." + m.group(1) for text in widget.texts() for m in _FLOW_DATA.finditer(text)}


def text(ctx: Context, widget: Widget, value: str, where: str, *, url: bool | None = None) -> str:
    """Studio text with Liquid (a say, a URL, a body) as flow-language template text; what has no
    equivalent is reported on `widget` (naming `where`, e.g. "say") and left out.

    A URL (`url`, by default a `where` of "play" or ending in "url") has every value the flow
    substitutes percent-encoded already, so Liquid's `url_encode` is dropped there, not doubled."""
    translator = _Translator(ctx, widget, where)
    translator.url = url if url is not None else where == "play" or where.lower().endswith("url")
    out = []
    for n, piece in enumerate(_MARKUP.split(value)):
        if n % 2 == 1:
            out.append(translator.markup(piece))
        elif translator.blocks[-1:] == ["raw"]:
            out.append(piece)
        elif translator.blocks[-1:] != ["comment"]:
            out.append(piece.replace("{#", '{{ "{#" }}'))  # a Jinja comment opener in plain text
    for block in reversed(translator.blocks):
        ctx.report(widget, f"{where}: {{% {block} %}} is never closed; closed at the end of the text")
        out.append(_CLOSE[block])
    result = "".join(out)
    try:
        compile_text(result)
    except TemplateProblem as exc:
        ctx.report(
            widget, f"{where}: the template does not compile in the flow language ({exc}); its markup is left out"
        )
        return _MARKUP.sub("", value)
    return result


def expression(ctx: Context, widget: Widget, value: str, where: str) -> str | None:
    """A Studio value that names one variable (`{{widgets.menu.Digits}}`, filters allowed) as a Jinja
    expression (`input.digits`); None, reported, when it has no equivalent."""
    match = re.fullmatch(r"\s*\{\{-?(.*?)-?\}\}\s*", value, re.S)
    if not match:
        return None
    translator = _Translator(ctx, widget, where)
    try:
        result = translator.output(match.group(1))
        compile_condition(result)
    except (LiquidUnsupported, TemplateProblem) as exc:
        ctx.report(widget, f"{where}: {value.strip()}: {exc}; left out")
        return None
    return result


def variable(ctx: Context, widget: Widget, path: str, where: str) -> str | None:
    """One Liquid variable path as a Jinja expression, or None (reported)."""
    try:
        return _Translator(ctx, widget, where).path(path)
    except LiquidUnsupported as exc:
        ctx.report(widget, f"{where}: {{{{{path}}}}}: {exc}; left out")
        return None


class _Translator:
    """One text's translation: the names its `assign`, `capture` and `for` tags made, its open blocks."""

    def __init__(self, ctx: Context, widget: Widget, where: str) -> None:
        self.ctx, self.widget, self.where = ctx, widget, where
        self.url = False  # a URL's values are encoded by the flow: url_encode is not written
        self.locals: set[str] = set()
        self.blocks: list[str] = []  # open Liquid blocks (if, unless, for, case, capture, comment, raw)
        self.case: list[str] = []  # the subject of each open case
        self.case_opened: list[bool] = []  # whether each open case has had its first `when` (an `if` to close)

    def report(self, message: str) -> None:
        self.ctx.report(self.widget, f"{self.where}: {message}")

    # --- markup ----------------------------------------------------------------------------------

    def markup(self, piece: str) -> str:
        if self.blocks and self.blocks[-1] in ("comment", "raw"):
            end = "end" + self.blocks[-1]
            if re.fullmatch(r"\{%-?\s*" + end + r"\s*-?%\}", piece):
                self.blocks.pop()
                return "{% endraw %}" if end == "endraw" else ""
            return piece if self.blocks[-1] == "raw" else ""
        try:
            if piece.startswith("{{"):
                inner = piece[2:-2].strip("-")
                return "{{ " + self.output(inner) + " }}"
            return self.tag(piece[2:-2].strip("-").strip())
        except LiquidUnsupported as exc:
            name = piece[2:-2].strip("-").strip().partition(" ")[0]
            if name in ("if", "unless", "elsif"):  # Liquid reads what it does not know as nil: false
                self.report(f"{piece.strip()}: {exc}; taken as false, as Liquid takes an unknown value")
                if name != "elsif":
                    self.blocks.append(name)
                return "{% elif false %}" if name == "elsif" else "{% if " + str(name == "unless").lower() + " %}"
            self.report(f"{piece.strip()}: {exc}; left out")
            return ""

    def tag(self, body: str) -> str:
        name, _, rest = body.partition(" ")
        rest = rest.strip()
        if name in ("if", "unless", "elsif"):
            condition = self.condition(rest)
            if name == "unless":
                condition = f"not ({condition})"
            if name != "elsif":
                self.blocks.append(name)
            return "{% " + ("elif" if name == "elsif" else "if") + " " + condition + " %}"
        if name == "else":
            return "{% else %}"
        if name in ("endif", "endunless", "endfor", "endcase", "endcapture"):
            opened = name[3:]
            if not self.blocks or self.blocks[-1] != opened:
                raise LiquidUnsupported(f"{{% {name} %}} closes no {{% {opened} %}}")
            self.blocks.pop()
            if opened == "case":
                self.case.pop()
                return "{% endif %}" if self.case_opened.pop() else ""
            return {"endcapture": "{% endset %}", "endfor": "{% endfor %}"}.get(name, "{% endif %}")
        if name == "assign":
            target, eq, value = rest.partition("=")
            local = target.strip()
            if not eq or not VARIABLE_NAME.match(local):
                raise LiquidUnsupported("an assign needs `name = value`")
            result = "{% set " + self.local(local) + " = " + self.output(value) + " %}"
            return result
        if name == "capture":
            self.blocks.append("capture")
            return "{% set " + self.local(rest) + " %}"
        if name == "for":
            return self.loop(rest)
        if name == "case":
            self.blocks.append("case")
            self.case.append(self.value(rest))
            self.case_opened.append(False)
            return ""
        if name == "when":
            if not self.case:
                raise LiquidUnsupported("{% when %} outside a {% case %}")
            options = [self.value(v) for v in re.split(r"\s*(?:,|\bor\b)\s*", rest) if v]
            first = not self.case_opened[-1]
            self.case_opened[-1] = True
            test = f"{self.case[-1]} in [{', '.join(options)}]"
            return "{% " + ("if" if first else "elif") + " " + test + " %}"
        if name in ("comment", "raw"):
            self.blocks.append(name)
            return "{% raw %}" if name == "raw" else ""
        raise LiquidUnsupported(f"the tag {{% {name} %}} has no equivalent in the flow language")

    def local(self, name: str) -> str:
        if not VARIABLE_NAME.match(name) or name in CONTEXT_NAMES:
            raise LiquidUnsupported(f"{name!r} cannot be a template variable")
        self.locals.add(name)
        return name

    def loop(self, rest: str) -> str:
        match = re.fullmatch(r"(\w+)\s+in\s+(\S+(?:\s*\.\.\s*\S+\))?)(.*)", rest)
        if not match:
            raise LiquidUnsupported("a for loop needs `item in collection`")
        item, collection, options = match.groups()
        source = self.value(collection)
        limit = re.search(r"limit:\s*(\d+)", options)
        offset = re.search(r"offset:\s*(\d+)", options)
        if offset or limit:
            start = int(offset.group(1)) if offset else 0
            end = start + int(limit.group(1)) if limit else ""
            source = f"({source})[{start}:{end}]"
        if "reversed" in options:
            source = f"({source}) | reverse"
        self.blocks.append("for")
        return "{% for " + self.local(item) + " in " + source + " %}"

    # --- expressions -----------------------------------------------------------------------------

    def output(self, source: str) -> str:
        """`value | filter: a, b | ...` as a Jinja expression."""
        tokens = _tokens(source)
        parts = _split(tokens, "|")
        result = self.value_tokens(parts[0])
        for part in parts[1:]:
            result = self.filter(result, part)
        return result

    def value(self, source: str) -> str:
        return self.value_tokens(_tokens(source))

    def value_tokens(self, tokens: list[tuple[str, str]]) -> str:
        if len(tokens) != 1:
            raise LiquidUnsupported(f"{' '.join(t for _, t in tokens)!r} is not one value")
        kind, token = tokens[0]
        if kind in ("str", "num"):
            return token
        if kind == "range":
            low, high = token[1:-1].split("..")
            return f"range({self.value(low)}, ({self.value(high)}) + 1)"
        if token in ("true", "false"):
            return token
        if token in ("nil", "null"):
            return "none"
        if token in ("blank", "empty"):
            raise LiquidUnsupported(f"{token} is only compared with ==")
        return self.path(token)

    def path(self, path: str) -> str:
        """A Liquid variable path as a Jinja expression; LiquidUnsupported when it has none."""
        head, _, rest = path.partition(".")
        if head in self.locals or head == "forloop":
            return ("loop" + path[len("forloop") :]) if head == "forloop" else path
        ctx = self.ctx
        if head == "widgets":
            name, _, attr = rest.partition(".")
            if ctx.definition.widget(name) is None:
                raise LiquidUnsupported(f"no widget is named {name!r}")
            found = ctx.output(name, attr)
            if found is None:
                kind = ctx.definition.widget(name).type
                raise LiquidUnsupported(
                    f"the {kind} widget's {attr or 'result'} has no equivalent in the flow language"
                )
            return found
        if head == "trigger":
            kind, _, attr = rest.partition(".")
            if kind == "call" and attr:
                return "call." + attr
            if kind == "message":
                raise LiquidUnsupported("a call has no incoming message (the flow's text branch is left out)")
            raise LiquidUnsupported(f"trigger.{kind} has no equivalent in a call")
        if path in ("contact.channel.address", "flow.channel.address"):
            # The contact is the caller of an inbound call and the person called by a REST API execution;
            # the flow's own number the other one. A subflow may be run by either.
            contact = path.startswith("contact")
            entry = ctx.extras.get("entry")
            if entry == "call":
                return "call.From" if contact else "call.To"
            if entry == "rest":
                return "call.To" if contact else "call.From"
            first, second = ("call.From", "call.To") if contact else ("call.To", "call.From")
            return f'{first} if call.Direction == "inbound" else {second}'
        if head == "flow":
            kind, _, attr = rest.partition(".")
            if kind in ("variables", "data") and attr:
                name, dot, more = attr.partition(".")
                # REST API parameters arrive as an outbound call's variables: `vars.x` (a subflow's are inputs).
                outer = "vars." if kind == "data" and not ctx.extras.get("returns") else ""
                return outer + variable_name(name) + dot + more
            raise LiquidUnsupported(f"flow.{kind} has no equivalent in the flow language")
        raise LiquidUnsupported("no such Studio variable")

    def filter(self, value: str, tokens: list[tuple[str, str]]) -> str:
        if not tokens or tokens[0][0] != "path":
            raise LiquidUnsupported("a filter needs a name")
        args = [self.value_tokens(a) for a in _split(tokens[2:], ",")] if len(tokens) > 2 else []
        if self.url and tokens[0][1] == "url_encode" and not args:
            return value
        return rewrite(tokens[0][1], value, args)

    def condition(self, source: str) -> str:
        """A Liquid condition: `and`/`or` group from the right, comparisons with contains, blank, empty."""
        tokens = _tokens(source)
        words = [i for i, (k, t) in enumerate(tokens) if k == "path" and t in ("and", "or")]
        if not words:
            return self.comparison(tokens)
        i = words[0]
        return f"{self.comparison(tokens[:i])} {tokens[i][1]} ({self.condition(_join(tokens[i + 1 :]))})"

    def comparison(self, tokens: list[tuple[str, str]]) -> str:
        for i, (kind, token) in enumerate(tokens):
            if kind == "op" or (kind == "path" and token == "contains"):
                left, right = tokens[:i], tokens[i + 1 :]
                if right and right[0][1] in ("blank", "empty") and token in ("==", "!=", "<>"):
                    test = self._emptiness(self.value_tokens(left), right[0][1])
                    return test if token == "==" else f"not {test}"
                if token == "contains":
                    return f"{self.value_tokens(right)} in ({self.value_tokens(left)})"
                op = "!=" if token == "<>" else token
                return f"{self.value_tokens(left)} {op} {self.value_tokens(right)}"
        value = self.value_tokens(tokens)
        return f"({value} is defined and {value} is not none and {value} is not false)"

    @staticmethod
    def _emptiness(value: str, word: str) -> str:
        if word == "empty":
            return f"({value} is string or {value} is sequence) and ({value}) | length == 0"
        return f"(not ({value}) and {value} is not number or ({value} is string and not ({value}) | trim))"


def _tokens(source: str) -> list[tuple[str, str]]:
    out, pos, source = [], 0, source.strip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise LiquidUnsupported(f"cannot read {source[pos:]!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(source) and source[pos].isspace():
            pos += 1
    return out


def _split(tokens: list[tuple[str, str]], mark: str) -> list[list[tuple[str, str]]]:
    parts: list[list[tuple[str, str]]] = [[]]
    for kind, token in tokens:
        if kind == "punct" and token == mark:
            parts.append([])
        else:
            parts[-1].append((kind, token))
    return parts


def _join(tokens: list[tuple[str, str]]) -> str:
    return " ".join(token for _, token in tokens)
