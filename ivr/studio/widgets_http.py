"""Studio's Make HTTP Request and Run Function widgets as the flow language's `http:` steps.

What Studio does (Twilio's docs, "Make HTTP Request widget" and "Run Function widget"): the widget
sends its request and waits up to 10 seconds (Studio FAQ, "HTTP requests"); a 2xx answer takes
`success`, anything else (4xx, 5xx, no answer) takes `failed` (Run Function: `fail`). Redirects
are followed. Later widgets read the answer as `{{widgets.W.status_code}}`, `.body` (the whole
answer, text) and `.parsed.a.b` (a JSON answer). Run Function POSTs its parameters as a form to
the function's URL; a Protected function accepts only requests signed by Twilio.

In the flow language: `routes: {ok: SUCCESS, error: FAILED}` (every answer that is not 2xx, and a
timeout, is an error without its own route); what later widgets read is saved: `status`,
`answer` (the body) and `save` (each parsed path read), in variables named after the state
(`lookup_status`, `lookup_order_status`). A function's request is signed (`sign: twilio`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from ivr.core.http_step import MAX_TIMEOUT, METHODS, ORIGIN_RE, json_path
from ivr.studio import liquid
from ivr.studio.model import Context, Piece, Widget, converts, reads

__all__ = ["http_output", "parameters", "result_variable"]

STUDIO_SECONDS = 10  # how long Studio waits for an answer (Studio FAQ, "HTTP requests")
_LIQUID = re.compile(r"\{\{.*?\}\}", re.S)
_MARK = re.compile("\x00([0-9]+)\x00")
_SLUG = re.compile(r"[^A-Za-z0-9]+")
_URL_FILTER = re.compile(r"\|\s*(?:url_encode|uri_escape|escape_uri|cgi_escape)\s*(?=\||\}\})")


def parameters(widget: Widget) -> list[tuple[str, str]]:
    """A widget's `parameters` list (`[{"key", "value"}]`) as pairs, in order; keyless items left out."""
    raw = widget.prop("parameters", [])
    pairs = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, Mapping) and str(item.get("key") or "").strip():
            pairs.append((str(item["key"]).strip(), "" if item.get("value") is None else str(item["value"])))
    return pairs


def result_variable(ctx: Context, widget: Widget, suffix: str) -> str:
    """The variable that holds one of a widget's results: `<state>_<suffix>`, a valid variable name."""
    base = ctx.state(widget)
    return f"{base if base[:1].isalpha() else 'w_' + base}_{suffix}"


def _parsed_path(path: str) -> str | None:
    """`parsed.items.0.name` (Liquid) as a path into the JSON answer (`items[0].name`); None when the
    flow language cannot save it (the whole `parsed`, `first`, `size`)."""
    rest = path.removeprefix("parsed").lstrip(".")
    rest = re.sub(r"\.([0-9]+)(?=\.|\[|\Z)", r"[\1]", rest)
    if not rest or rest.rsplit(".", 1)[-1] in ("first", "last", "size"):
        return None
    return rest if json_path(rest) is not None else None


@reads("make-http-request", "run-function")
def http_output(widget: Widget, path: str, ctx: Context) -> str | None:
    """`status_code`, `body` and `parsed.*` as the variables the widget's step saves them in."""
    if path == "status_code":
        return result_variable(ctx, widget, "status")
    if path == "body":
        return result_variable(ctx, widget, "body")
    if path == "parsed" or path.startswith(("parsed.", "parsed[")):
        written = _parsed_path(path)
        return result_variable(ctx, widget, _SLUG.sub("_", written).strip("_")) if written else None
    return None


def _results(ctx: Context, widget: Widget, http: dict) -> list[str]:
    """Save what later widgets read of the answer; the comments that says how it differs from Studio."""
    uses = ctx.uses(widget)
    if "status_code" in uses:
        http["status"] = result_variable(ctx, widget, "status")
    if "body" in uses:
        http["answer"] = result_variable(ctx, widget, "body")
    save = {}
    for path in sorted(uses):
        written = _parsed_path(path) if path.startswith("parsed") else None
        if written:
            save[result_variable(ctx, widget, _SLUG.sub("_", written).strip("_"))] = written
    if save:
        http["save"] = save
        return ["A value missing from the answer fails here; Studio went on with it empty."]
    return []


def _url(ctx: Context, widget: Widget, raw: str) -> tuple[str, dict[str, str]] | str:
    """The URL as the step's `url` and `query`; or what makes it impossible to carry over."""
    raw = raw.strip()
    if "{%" in raw:
        return f"its URL {raw!r} uses Liquid tags: write the URL out"
    if "#" in raw:
        ctx.report(widget, "the URL's #fragment is never sent; left out")
        raw = raw.split("#", 1)[0]
    base, _, query_text = raw.partition("?")
    if re.match(r"https?://[^/]*@", base):
        return ("its URL carries credentials (user:password@host): send them in a header instead, "
                'headers: {Authorization: "Basic {{ secrets.NAME }}"}, with NAME in IVR_HTTP_SECRETS')  # fmt: skip
    match = ORIGIN_RE.match(base)
    if match is None or "{" in match.group(0):
        return (f"its URL {raw!r} does not write out its scheme and host; in the flow language they are never "
                "templated (no caller input or variable chooses where a request goes): write them out")  # fmt: skip
    reported = len(ctx.reports)
    url = match.group(0) + liquid.text(ctx, widget, _unescaped(base[match.end() :]), "url")
    query = {}
    for pair in filter(None, query_text.split("&")):
        key, _, value = pair.partition("=")
        query[unquote_plus(key)] = liquid.text(ctx, widget, _unescaped(unquote_plus(value)), "url")
    if len(ctx.reports) > reported:  # a value left out of a URL asks another resource: never quietly
        return f"a value of its URL {raw!r} has no equivalent (reported above): write the URL out"
    return url, query


def _unescaped(text: str) -> str:
    """Liquid for a URL without its `url_encode` filters: a step encodes every value it puts in the path
    or the query itself, and encoding twice would send `%252B` for a `+`."""
    return _URL_FILTER.sub("", text)


def _json_body(ctx: Context, widget: Widget, raw: str) -> Any:
    """A JSON body with Liquid as a YAML tree with templates; a str says why it cannot be carried over."""
    if "{%" in raw:
        return "its JSON body uses Liquid tags"
    pieces: list[str] = []

    def mark(match: re.Match) -> str:
        pieces.append(match.group(0))
        return f"\x00{len(pieces) - 1}\x00"

    marked, bare = _quote_bare(_LIQUID.sub(mark, raw))
    try:
        tree = json.loads(marked, strict=False)
    except ValueError:
        return "its body is not JSON once its Liquid is set aside"
    if bare:
        ctx.report(widget, f"body: {', '.join(pieces[i] for i in bare)} written without quotes is sent as text")

    def convert(node):
        if isinstance(node, str):
            text = _MARK.sub(lambda m: pieces[int(m.group(1))], node)
            return liquid.text(ctx, widget, text, "body") if "{{" in text else text
        if isinstance(node, dict):
            return {_MARK.sub(lambda m: pieces[int(m.group(1))], k): convert(v) for k, v in node.items()}
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    return convert(tree)


def _quote_bare(text: str) -> tuple[str, list[int]]:
    """Markers outside JSON strings put in quotes (`{"n": {{x}}}`), with their numbers."""
    out, bare, in_string, escaped, i = [], [], False, False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\x00" and not in_string:
            end = text.index("\x00", i + 1)
            bare.append(int(text[i + 1 : end]))
            out.append(f'"{text[i : end + 1]}"')
            i = end + 1
            continue
        if not in_string:
            in_string = ch == '"'
        elif escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            in_string = False
        out.append(ch)
        i += 1
    return "".join(out), bare


def _form_text(ctx: Context, widget: Widget, raw: str) -> dict[str, str]:
    """A form body written as text (`a=1&b={{x}}`) as pairs."""
    pairs = {}
    for pair in filter(None, raw.strip().split("&")):
        key, _, value = pair.partition("=")
        pairs[unquote_plus(key)] = liquid.text(ctx, widget, unquote_plus(value), "body")
    return pairs


def _routes(ctx: Context, widget: Widget, failed: str) -> dict[str, str]:
    return {"ok": ctx.target(widget, "success"), "error": ctx.target(widget, failed)}


def _timeout(ctx: Context, widget: Widget) -> tuple[float, str]:
    """The step's timeout: Studio waits 10 s (or the widget's own timeout); a step at most MAX_TIMEOUT."""
    wanted = widget.prop("timeout", STUDIO_SECONDS)
    try:
        seconds = float(wanted)
    except (TypeError, ValueError):
        seconds = STUDIO_SECONDS
    if seconds <= MAX_TIMEOUT:
        return seconds, ""
    if widget.prop("timeout") is not None:
        ctx.report(widget, f"timeout {wanted} s is over an HTTP step's {MAX_TIMEOUT:g} s; waits {MAX_TIMEOUT:g} s")
    return (
        MAX_TIMEOUT,
        f"Studio waited {seconds:g} s and followed redirects; this waits {MAX_TIMEOUT:g}, and a 3xx fails.",
    )


@converts("make-http-request")
def make_http_request(widget: Widget, ctx: Context) -> Piece:
    """An `http:` step: method, URL (query split out), form or JSON body, what later widgets read."""
    method = str(widget.prop("method", "GET")).upper()
    if method not in METHODS:
        return ctx.todo(widget, f"Studio sent a {method} request, which an HTTP step cannot", "failed")
    found = _url(ctx, widget, str(widget.prop("url", "")))
    if isinstance(found, str):
        return ctx.todo(widget, f"Studio sent an HTTP request, but {found}", "failed")
    url, query = found
    http: dict[str, Any] = {"method": method, "url": url} if method != "GET" else {"url": url}
    params = {key: liquid.text(ctx, widget, value, f"parameters.{key}") for key, value in parameters(widget)}
    is_json = "json" in str(widget.prop("content_type", "application/x-www-form-urlencoded")).lower()
    body = str(widget.prop("body", ""))
    if method != "GET" and is_json and body.strip():
        tree = _json_body(ctx, widget, body)
        if isinstance(tree, str):
            return ctx.todo(widget, f"Studio sent a JSON body, but {tree}: write it as http.json", "failed")
        http["json"] = tree
    elif method != "GET" and not is_json and (params or body.strip()):
        if params and body.strip():
            ctx.report(widget, "the body text is left out: Studio sends the HTTP parameters as the form")
        http["form"] = params or _form_text(ctx, widget, body)
        params = {}
    elif body.strip():
        ctx.report(widget, f"a {method} request sends no body; its body text is left out")
    query.update(params)
    if query:
        http["query"] = query
    seconds, waited = _timeout(ctx, widget)
    http["timeout"] = int(seconds) if float(seconds).is_integer() else seconds
    comments = [waited or "Studio followed redirects; a step does not: a 3xx answer takes the failed way."]
    comments += _results(ctx, widget, http)
    if widget.prop("add_twilio_auth") in (True, "true"):
        ctx.report(widget, "Studio added the account's credentials (Basic auth); not carried over: add "
                   'headers: {Authorization: "Basic {{ secrets.NAME }}"} with NAME in IVR_HTTP_SECRETS')  # fmt: skip
    return Piece().add(ctx.state(widget), {"http": http, "routes": _routes(ctx, widget, "failed")}, *comments)


@converts("run-function")
def run_function(widget: Widget, ctx: Context) -> Piece:
    """A signed POST of the parameters, as a form, to the function's URL."""
    raw = str(widget.prop("url", ""))
    if not raw.strip():
        what = "Studio ran a Twilio Function whose URL the definition does not hold (only its SIDs): write its URL"
        return ctx.todo(widget, what, "fail")
    found = _url(ctx, widget, raw)
    if isinstance(found, str):
        return ctx.todo(widget, f"Studio ran a Twilio Function, but {found}", "fail")
    url, query = found
    http: dict[str, Any] = {"method": "POST", "url": url}
    if query:
        http["query"] = query
    form = {key: liquid.text(ctx, widget, value, f"parameters.{key}") for key, value in parameters(widget)}
    if form:
        http["form"] = form
    http["sign"] = "twilio"
    seconds, waited = _timeout(ctx, widget)
    http["timeout"] = int(seconds) if float(seconds).is_integer() else seconds
    comments = ["A Twilio Function: signed with TWILIO_AUTH_TOKEN, as Studio's requests are (a Protected one checks)."]
    comments += [waited or "Studio followed redirects; a step does not: a 3xx answer takes the failed way."]
    comments += _results(ctx, widget, http)
    return Piece().add(ctx.state(widget), {"http": http, "routes": _routes(ctx, widget, "fail")}, *comments)
