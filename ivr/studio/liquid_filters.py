"""Liquid's filters as Jinja: each one rewritten over the expression it filters (`value`) and its
arguments, already translated (`args`). Liquid's arithmetic reads text as a number, so `plus`
and its kin convert first: whole when the other operand is whole, else decimal."""

from __future__ import annotations

from ivr.errors import LiquidUnsupported

__all__ = ["rewrite"]


def rewrite(name: str, value: str, args: list[str]) -> str:
    """`value | name: args...` as a Jinja expression; LiquidUnsupported when Jinja has no equivalent."""
    simple = {
        "upcase": "upper", "downcase": "lower", "capitalize": "capitalize", "strip": "trim",
        "size": "length", "first": "first", "last": "last", "abs": "abs", "url_encode": "urlencode",
        "uniq": "unique", "reverse": "reverse", "sort": "sort", "json": "tojson",
    }  # fmt: skip
    if name in simple and not args:
        return f"({value}) | {simple[name]}"
    one = args[0] if args else '""'
    rewrites = {
        "default": f"({value}) | default({one}, true)",
        "join": f"({value}) | join({one})",
        "split": f"({value} | string).split({one})",
        "replace": f"({value} | string).replace({one}, {args[1] if len(args) > 1 else chr(34) * 2})",
        "replace_first": f"({value} | string).replace({one}, {args[1] if len(args) > 1 else chr(34) * 2}, 1)",
        "remove": f"({value} | string).replace({one}, '')",
        "remove_first": f"({value} | string).replace({one}, '', 1)",
        "append": f"({value}) ~ {one}",
        "prepend": f"{one} ~ ({value})",
        "lstrip": f"({value} | string).lstrip()",
        "rstrip": f"({value} | string).rstrip()",
        "strip_newlines": f"({value} | string).replace('\\n', '')",
        "plus": f"{_number(value, one)} + {one}",
        "minus": f"{_number(value, one)} - {one}",
        "times": f"{_number(value, one)} * {one}",
        "divided_by": f"{_number(value, one)} {'//' if one.lstrip('-').isdigit() else '/'} {one}",
        "modulo": f"{_number(value, one)} % {one}",
        "round": f"({value}) | round({one if args else 0}){'' if args else ' | int'}",
        "ceil": f"({value}) | round(0, 'ceil') | int",
        "floor": f"({value}) | round(0, 'floor') | int",
        "truncate": f"({value}) | truncate({one}, true, {args[1] if len(args) > 1 else repr('...')}, 0)",
        # from `one` (negative counts from the end, as in Liquid), `length` items: [-4:][:4], never [-4:0]
        "slice": f"({value})[{one}:][:{args[1] if len(args) > 1 else 1}]",
        "map": f"({value}) | map(attribute={one})",
    }
    if name == "date" and value.strip("'\"") in ("now", "today"):
        return f"now.strftime({one})"
    if name in rewrites:
        return rewrites[name]
    raise LiquidUnsupported(f"the filter {name!r} has no equivalent in the flow language")


def _number(value: str, other: str) -> str:
    """Liquid's arithmetic reads text as a number: whole when the other operand is whole."""
    return f"({value}) | {'int' if other.lstrip('-').isdigit() else 'float'}"
