"""Reading a state's `http:` request, and the routes its answer takes."""

from __future__ import annotations

import yaml
from jinja2 import nodes

from ivr.core import flow as f
from ivr.core.hints import path_join
from ivr.core.http_step import (
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
    METHODS,
    ORIGIN_RE,
    ROUTE_RE,
    SECRET_NAME_RE,
    Http,
    json_path,
)
from ivr.core.loader.source import Reader
from ivr.core.templates import parse_text

__all__ = ["HttpReader"]

HTTP_KEYS = ("method", "url", "query", "headers", "json", "form", "timeout", "save", "status", "answer", "sign")
SIGNERS = ("twilio",)
_HOST_HINT = (
    "the scheme and host of an HTTP step are written out in the flow, never templated "
    "(put values in the path, the query or the body)"
)


class HttpReader(Reader):
    """Reads `http:`; the action reader builds on it (its `text` compiles the templates)."""

    def _http(self, items, path, pos, node):
        self.known_keys(items, HTTP_KEYS, path)
        self._secrets: list = []
        method = "GET"
        if "method" in items:
            value = self.string(items["method"][1], path_join(path, "method"))
            if value is not None and value not in (*METHODS, *(m.lower() for m in METHODS)):
                self.error(items["method"][1], path_join(path, "method"), f"expected one of {', '.join(METHODS)}")
            method = (value or "GET").upper()
        if "url" not in items:
            self.error(node, path, "missing key: url (https://host/path)")
            return None
        origin, rest = self._url(items["url"][1], path_join(path, "url"))
        if "json" in items and "form" in items:
            self.error(items["form"][0], path_join(path, "form"), "a request has one body: json or form")
        form = "form" in items
        body = None
        if "json" in items:
            body = self._body(items["json"][1], path_join(path, "json"))
        elif form:
            body = dict(self._pairs(items, "form", path))
        timeout = DEFAULT_TIMEOUT
        if "timeout" in items:
            timeout_path = path_join(path, "timeout")
            timeout = self.number(items["timeout"][1], timeout_path, minimum=0.1, maximum=MAX_TIMEOUT, integer=False)
        status = self._variable(items["status"][1], path_join(path, "status")) if "status" in items else None
        answer = self._variable(items["answer"][1], path_join(path, "answer")) if "answer" in items else None
        sign = self._sign(items, path)
        query, headers = self._pairs(items, "query", path), self._pairs(items, "headers", path)
        save = self._save(items, path)
        return Http(  # with a URL that could not be read too (its error is reported): the rest is checked
            "http",
            pos,
            origin=origin or "",
            path=rest,
            method=method,
            query=query,
            headers=headers,
            body=body,
            form=form,
            timeout=timeout or DEFAULT_TIMEOUT,
            save=save,
            status=status,
            answer=answer,
            sign=sign,
            secrets=tuple(self._secrets),
        )

    def _sign(self, items: dict, path: str) -> bool:
        """`sign: twilio`: Twilio signs a form (or no body), never JSON; the signature covers the URL and form."""
        if "sign" not in items:
            return False
        sign_path = path_join(path, "sign")
        value = self.string(items["sign"][1], sign_path)
        if value is not None and value not in SIGNERS:
            self.error(items["sign"][1], sign_path, f"expected one of {', '.join(SIGNERS)}")
            return False
        if "json" in items:
            message = "a signed request sends a form (or no body), as Twilio's own requests do: use form"
            self.error(items["sign"][0], sign_path, message)
        return value is not None

    def _url(self, node: yaml.Node, path: str) -> tuple[str | None, f.Text | None]:
        value = self.string(node, path)
        if value is None:
            return None, None
        match = ORIGIN_RE.match(value)
        if match is None or "{" in match.group(0):
            head = value.split("/", 3)
            if len(head) > 2 and ("{" in head[2] or "{" in head[0]):
                self.error(node, path, _HOST_HINT)
            else:
                self.error(node, path, "expected an http:// or https:// URL with its host written out")
            return None, None
        rest = value[match.end() :]
        if "?" in rest or "#" in rest:
            self.error(node, path, "the query goes under query: (a mapping, encoded), not in the URL")
            return None, None
        if "secrets" in rest:
            self.error(node, path, "secrets go in headers, the query or the body, never in the URL's path")
            return None, None
        text = self._template(node, path, rest, url=True) if rest else None
        return match.group(0), text

    def _template(self, node: yaml.Node, path: str, source: str, *, url: bool = False) -> f.Text | None:
        scalar = yaml.ScalarNode("tag:yaml.org,2002:str", source, node.start_mark, node.end_mark, style='"')
        text = self.text(scalar, path, url=url)
        if text is not None and text.template is not None:
            for name in _secrets_used(source):
                self._secrets.append((name, text.pos, path))
        return text

    def _pairs(self, items: dict, key: str, path: str) -> tuple[tuple[str, f.Text], ...]:
        if key not in items:
            return ()
        key_path = path_join(path, key)
        out = []
        for name, (_key_node, value_node) in (self.mapping(items[key][1], key_path) or {}).items():
            value = self._leaf(value_node, path_join(key_path, name))
            if value is not None:
                out.append((name, value))
        return tuple(out)

    def _leaf(self, node: yaml.Node, path: str) -> f.Text | None:
        value = self.plain(node, path)
        if value is None:
            if isinstance(node, yaml.ScalarNode):
                self.error(node, path, "expected a value (text, a number or true/false)")
            return None
        source = value if isinstance(value, str) else ("true" if value is True else "false" if value is False
                                                       else str(value))  # fmt: skip
        return self._template(node, path, source)

    def _body(self, node: yaml.Node, path: str):
        if isinstance(node, yaml.MappingNode):
            return {k: self._body(v, path_join(path, k)) for k, (_kn, v) in (self.mapping(node, path) or {}).items()}
        if isinstance(node, yaml.SequenceNode):
            return [self._body(v, path_join(path, i)) for i, v in enumerate(self.sequence(node, path) or ())]
        value = self.plain(node, path)
        return self._template(node, path, value) if isinstance(value, str) else value

    def _save(self, items: dict, path: str) -> tuple:
        if "save" not in items:
            return ()
        save_path = path_join(path, "save")
        out = []
        for var, (key_node, value_node) in (self.mapping(items["save"][1], save_path) or {}).items():
            var_path = path_join(save_path, var)
            if self._variable(key_node, var_path, var) is None:
                continue
            where = self.string(value_node, var_path)
            steps = json_path(where) if where else None
            if where is not None and steps is None:
                message = f"expected a path into the JSON answer (a.b, items[0].name), got '{where}'"
                self.error(value_node, var_path, message)
            if steps is not None:
                out.append((var, where, steps))
        return tuple(out)

    def _variable(self, node: yaml.Node, path: str, value: str | None = None) -> str | None:
        value = self.string(node, path) if value is None else value
        if value is not None and not f.VARIABLE_NAME.match(value):
            self.error(node, path, "a variable name starts with a letter: letters, digits and '_'")
            return None
        if value in f.CONTEXT_NAMES:
            self.error(node, path, f"'{value}' is a name templates already have; choose another variable name")
            return None
        return value

    def http_routes(self, routes: tuple, on_error: f.Target | None, path: str) -> tuple[tuple, f.Target | None]:
        """An HTTP step's routes: ok, timeout, a status class (4xx) or code (404); `error` is its on_error."""
        kept = []
        for route in routes:
            route_path = path_join(path_join(path, "routes"), route.outcome)
            if route.outcome == "error":
                if on_error is not None:
                    self.error(route.pos, route_path, "the state has on_error too: keep one of them")
                on_error = f.Target(route.target, route.target_pos, route_path)
            elif not ROUTE_RE.match(route.outcome):
                self.error(route.pos, route_path, f"an HTTP step routes on ok, a status class (4xx), a status code "
                           f"(404), timeout or error, not '{route.outcome}'")  # fmt: skip
            else:
                kept.append(route)
        return tuple(kept), on_error


def _secrets_used(source: str) -> list[str]:
    """The names a template reads as `secrets.NAME` or `secrets['NAME']`."""
    tree = parse_text(source)
    out = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "secrets":
            name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(name, str) and SECRET_NAME_RE.match(name):
                out.append(name)
    return out
