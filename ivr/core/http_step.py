"""HTTP steps: a state that calls an HTTP API without Python (`http:`), as data. No I/O here.

    balance:
      http:
        url: "https://api.example.com/accounts/{{ account }}/balance"
        query: {currency: USD}
        headers: {Authorization: "Bearer {{ secrets.CRM_TOKEN }}"}
        save: {balance: "account.balance", first: "items[0].name"}
        status: balance_status
      routes: {ok: tell_balance, "404": unknown_account, 5xx: later, timeout: later, error: sorry}

The engine pauses at such a state exactly as at a `run:` hook: `Step.pending.hook` is an `HttpCall`
(the request, rendered), which the adapter's HookRunner sends (ivr.outbound.http) within the same
budget and bulkheads as hooks, then resumes with a `HookResult`: its outcome the status code ("404"),
"timeout" or "error", its vars what `save` and `status` name. `http_event` picks the route.

Secrets never enter the data: `{{ secrets.NAME }}` renders as a marker that only the sender replaces,
from the environment, and only for names in IVR_HTTP_SECRETS (checked at load: ivr.core.references).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.core import flow as f
from ivr.core.effects import HookResult
from ivr.core.templates import render

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TEXT",
    "MAX_TIMEOUT",
    "Http",
    "HttpCall",
    "extract",
    "http_call",
    "http_event",
    "http_texts",
    "json_path",
    "resolve_secrets",
    "saved_vars",
    "secret_names",
    "unrouted",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT = 3.0
MAX_TEXT = 64_000  # characters of a whole answer kept in a variable (`answer:`); Studio's limit is 64 kB
MAX_TIMEOUT = 8.0  # the webhook's budget for its hooks (ivr.web.deadline.HOOKS_BY; a test keeps them equal)
OK = "ok"
TIMEOUT = "timeout"
ERROR = "error"
ROUTE_RE = re.compile(r"(?:ok|timeout|[1-5]xx|[1-5][0-9][0-9])\Z")
ORIGIN_RE = re.compile(r"(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(?=/|\Z)")
SECRET_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MARKER = "\x1esecret:{}\x1e"
_MARKER_RE = re.compile("\x1esecret:([A-Za-z_][A-Za-z0-9_]*)\x1e")
_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]")
_KEY, _INDEX = r"[A-Za-z_][A-Za-z0-9_-]*", r"\[[0-9]+\]"
_PATH_RE = re.compile(rf"(?:{_KEY}|{_INDEX})(?:{_INDEX})*(?:\.{_KEY}(?:{_INDEX})*)*\Z")


@dataclass(frozen=True, slots=True)
class Http(f.Run):
    """`http:` (a kind of `run:`): the request a state sends; its answer routes the call.

    `origin` (scheme://host[:port]) is written out in the flow, never templated; `path` is the rest of
    the URL, every value it substitutes percent-encoded. `body` is a tree of plain values and Texts."""

    origin: str = ""
    path: f.Text | None = None
    method: str = "GET"
    query: tuple[tuple[str, f.Text], ...] = ()
    headers: tuple[tuple[str, f.Text], ...] = ()
    body: object = None
    form: bool = False
    timeout: float = DEFAULT_TIMEOUT
    save: tuple[tuple[str, str, tuple], ...] = ()  # (variable, path as written, parsed path)
    status: str | None = None  # the variable that gets the status code
    answer: str | None = None  # the variable that gets the whole answer's body, as text
    sign: bool = False  # `sign: twilio`: X-Twilio-Signature over the final URL and form, from TWILIO_AUTH_TOKEN
    secrets: tuple[tuple[str, f.Pos, str], ...] = ()  # (name, where, key path) of each secret it uses


@dataclass(frozen=True, slots=True)
class HttpCall:
    """A request to send during the webhook, rendered; secrets still markers. `name` ("http:HOST") names
    its bulkhead and its row in the journal; `context` carries the call_sid and key, as a HookCall's."""

    name: str
    flow: str
    state: str
    method: str
    url: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    json: object
    form: tuple[tuple[str, str], ...] | None
    timeout: float
    save: tuple[tuple[str, tuple], ...]
    status: str | None
    context: dict
    answer: str | None = None
    sign: bool = False

    @property
    def origin(self) -> str:
        """scheme://host[:port], for log lines (the path and query may carry a caller's data)."""
        match = ORIGIN_RE.match(self.url)
        return match.group(0) if match else "?"


def http_call(action: Http, flow_id: str, state: str, context: dict, call_sid: str, key: str) -> HttpCall:
    """Render a state's request with the call's template context (secrets as markers)."""
    values = {**context, "secrets": {name: _MARKER.format(name) for name, _, _ in action.secrets}}
    path = _text(action.path, values) if action.path is not None else ""
    query = tuple((k, _text(v, values)) for k, v in action.query)
    headers = tuple((k, _text(v, values)) for k, v in action.headers)
    body = _tree(action.body, values)
    host = action.origin.split("://", 1)[1]
    return HttpCall(
        name=f"http:{host}",
        flow=flow_id,
        state=state,
        method=action.method,
        url=action.origin + path,
        query=query,
        headers=headers,
        json=None if action.form else body,
        form=tuple(body.items()) if action.form and body else None,
        timeout=action.timeout,
        save=tuple((var, steps) for var, _, steps in action.save),
        status=action.status,
        context={"call_sid": call_sid, "key": key},
        answer=action.answer,
        sign=action.sign,
    )


def http_texts(action: Http) -> list[f.Text]:
    """Every text of a request that may carry a template (its path, query, headers and body), for `check`."""
    out = [action.path] if action.path is not None else []
    out += [text for _, text in action.query] + [text for _, text in action.headers]

    def walk(node) -> None:
        if isinstance(node, f.Text):
            out.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    walk(action.body)
    return out


def _text(text: f.Text, values: dict) -> str:
    return text.source if text.template is None else render(text.template, values, f"{text.pos}: {text.path}")


def _tree(node, values: dict):
    if isinstance(node, f.Text):
        return _text(node, values)
    if isinstance(node, dict):
        return {k: _tree(v, values) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_tree(v, values) for v in node]
    return node


def resolve_secrets(value, secrets: dict[str, str]):
    """`value` (a string, or a tree of them) with every secret marker replaced by its value from
    `secrets`; KeyError names a secret that is not there."""
    if isinstance(value, str):
        return _MARKER_RE.sub(lambda m: secrets[m.group(1)], value) if "\x1e" in value else value
    if isinstance(value, dict):
        return {k: resolve_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(resolve_secrets(v, secrets) for v in value)
    return value


def secret_names(setting: str | None) -> frozenset[str]:
    """The names IVR_HTTP_SECRETS allows (separated by commas or spaces)."""
    return frozenset(name for name in re.split(r"[\s,]+", setting or "") if name)


def json_path(text: str) -> tuple | None:
    """`account.balance`, `items[0].name` or `[0].id` as keys and indexes; None when it is not such a path."""
    if not _PATH_RE.match(text):
        return None
    return tuple(name if name else int(index) for name, index in _PATH_PART.findall(text))


def extract(document, steps: tuple):
    """The value at `steps` in a JSON document; LookupError when it is not there."""
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                raise LookupError(step)
        elif not isinstance(value, dict) or step not in value:
            raise LookupError(step)
        value = value[step]
    return value


def saved_vars(
    call: HttpCall, status: int, document, *, parsed: bool, text: str | None = None
) -> tuple[dict, str | None]:
    """The variables an answer sets: the status and the whole body (`answer`, whatever the status), and
    (from a 2xx answer) what `save` names; with the reason when a 2xx answer lacks them (not JSON, or a
    path not in it), or a body is over MAX_TEXT for `answer`: those route to error."""
    variables: dict = {call.status: status} if call.status else {}
    if call.answer:
        if text is not None and len(text) > MAX_TEXT:
            return variables, f"the answer is over {MAX_TEXT // 1000} kB (answer: {call.answer})"
        variables[call.answer] = text or ""
    if not call.save or not 200 <= status < 300:
        return variables, None
    if not parsed:
        return variables, "the answer is not JSON"
    for var, steps in call.save:
        try:
            variables[var] = extract(document, steps)
        except LookupError:
            return variables, f"the answer has no '{_shown(steps)}' (save.{var})"
    return variables, None


def _shown(steps: tuple) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else ("." if i else "") + s for i, s in enumerate(steps))


def http_event(state: f.State, result: HookResult) -> str:
    """The route an HTTP step's result takes: the code ("404"), then its class ("4xx"), then `ok` for a
    2xx (else next); `timeout` when routed; anything else (and a 2xx without what `save` needs) is error."""
    routed = {r.outcome for r in state.routes}
    outcome = result.outcome or ERROR
    if not outcome.isdigit():
        return TIMEOUT if outcome == TIMEOUT and TIMEOUT in routed else f.ERROR_EVENT
    if result.error is not None:
        return f.ERROR_EVENT
    for event in (outcome, outcome[0] + "xx"):
        if event in routed:
            return event
    if outcome.startswith("2"):
        return OK if OK in routed else f.NEXT_EVENT if state.next else f.ERROR_EVENT
    return f.ERROR_EVENT


def unrouted(state: f.State) -> tuple[str, str] | None:
    """(key, message) when a `run:` or `http:` state has outcomes with nowhere to go; None when it has not."""
    if state.next is not None:
        return None
    if isinstance(state.action, Http):
        if OK in {r.outcome for r in state.routes}:
            return None
        return "http", "a 2xx answer needs somewhere to go: route ok or add next: STATE"
    if getattr(state.action, "recording", None) is not None:  # ivr.core.call_recording.ControlRecording
        return "call_recording", "add next: STATE, where the call goes once Twilio has done it"
    return "run", "a hook may return any outcome: add next: STATE for those not in routes"
