"""The built-in model: any OpenAI-compatible chat completions API (hosted, vLLM, Ollama), streamed.

`OpenAIModel.stream` posts `{base_url}/chat/completions` with `stream: true` and reads the answer's
server-sent events as they arrive: each content delta becomes a `Text` at once (the caller hears the
first words while the model writes the rest), `tool_calls` deltas are put together by their index
(id and name from the first piece, the arguments' pieces concatenated) and come out as `ToolCall`s
when the reply ends, then `Done`. Every failure is a `ModelError` that says what happened and where
(the API's own message for an HTTP error), never the key: it is sent only as `Authorization: Bearer`,
and only when given.

Timeouts are per phase: connecting, then each wait for bytes (a stall), bounded by the `timeout` the
conversation gives; keep-alive comments that carry no delta do not keep a stalled reply alive.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import httpx

from ivr.agent.model import Delta, Done, Text, ToolCall
from ivr.errors import ModelError
from ivr.outbound.http import http_client

__all__ = ["CONNECT_TIMEOUT", "POOL", "OpenAIModel", "model_from_settings"]

CONNECT_TIMEOUT = 5.0  # seconds to open a connection, at most (the stream's own timeout when shorter)
MAX_ERROR_BODY = 64_000  # bytes of an error answer read for its message
MAX_MESSAGE = 300  # characters of the API's error message kept
MAX_STREAM = 4_000_000  # bytes of one reply: far beyond anything said on a phone call
# A reply holds its connection for seconds, one per live conversation: hundreds at once per process, more than
# the webhooks' pool of HTTP steps allows.
POOL = httpx.Limits(max_connections=512, max_keepalive_connections=64, keepalive_expiry=30)

_shared: httpx.Client | None = None
_shared_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    """One pooled client for every model of this process, made on first use (after a server's fork)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = http_client(POOL)
    return _shared


class OpenAIModel:
    """A `Model` over an OpenAI-compatible chat completions API (`base_url` is the part before /chat/completions)."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, http_client: httpx.Client | None = None
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        parts = urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # for messages: no credentials
        self.model = model
        self._key = api_key or None
        self._client = http_client

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks' locals
        return f"OpenAIModel({self.url!r}, {self.model!r}, api_key={'***' if self._key else None})"

    @property
    def client(self) -> httpx.Client:
        """The HTTP client: the one given, else the process's shared pooled client."""
        return self._client if self._client is not None else _shared_client()

    def request_body(self, messages: Sequence[Mapping], tools: Sequence[Mapping]) -> dict:
        """The JSON posted: model, messages, stream, and tools when there are any (some APIs refuse `[]`)."""
        body: dict = {"model": self.model, "messages": [dict(m) for m in messages], "stream": True}
        if tools:
            body["tools"] = [dict(t) for t in tools]
        return body

    def stream(self, messages: Sequence[dict], tools: Sequence[dict], *, timeout: float) -> Iterator[Delta]:
        """Stream the reply: `Text` as each token arrives, then `ToolCall`s, then `Done`; else `ModelError`."""
        headers = {"Accept": "text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        timeout = max(float(timeout), 0.001)
        phases = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        where = f"the model API at {self.origin} (model {self.model!r})"
        try:
            with self.client.stream(
                "POST", self.url, json=self.request_body(messages, tools), headers=headers, timeout=phases
            ) as response:
                if response.status_code >= 400:
                    raise ModelError(f"{where} answered {response.status_code}: {self._error_message(response)}")
                kind = response.headers.get("content-type", "")
                if "text/event-stream" not in kind:
                    raise ModelError(
                        f"{where} answered {kind or 'no content type'}, not an event stream: "
                        "is the base URL an OpenAI-compatible API that streams?"
                    )
                yield from _Reply(where, timeout).read(response.iter_lines())
        except httpx.PoolTimeout:
            raise ModelError(f"{where}: no free connection within {timeout:g}s (too many replies at once)") from None
        except httpx.ConnectTimeout:
            raise ModelError(f"{where}: no connection within {phases.connect:g}s") from None
        except httpx.TimeoutException:
            raise ModelError(f"{where} stalled: nothing came for {timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise ModelError(f"{where} cannot be reached ({_reason(exc)}): check IVR_AGENT_BASE_URL") from None
        except httpx.HTTPError as exc:
            raise ModelError(f"{where} broke off its answer ({type(exc).__name__})") from None

    def _error_message(self, response: httpx.Response) -> str:
        """The API's own message from an error answer (OpenAI's `error.message`, vLLM's `message`), without the key."""
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ERROR_BODY:
                break
        text = body.decode("utf-8", "replace").strip()
        try:
            document = json.loads(text)
        except ValueError:
            message = text
        else:
            error = document.get("error", document) if isinstance(document, dict) else document
            message = error.get("message") or error.get("detail") or text if isinstance(error, dict) else error
        message = " ".join(str(message).split())[:MAX_MESSAGE] or response.reason_phrase or "no message"
        if self._key:
            message = message.replace(self._key, "***")
        return message


class _Reply:
    """One streamed reply being read: SSE events in, deltas out."""

    def __init__(self, where: str, timeout: float) -> None:
        self.where, self.timeout = where, timeout
        self.calls: dict[int, dict] = {}
        self.finished = False
        self.size = 0

    def read(self, lines: Iterator[str]) -> Iterator[Delta]:
        data: list[str] = []
        last = time.monotonic()
        for line in lines:
            self.size += len(line) + 1
            if self.size > MAX_STREAM:
                raise ModelError(f"{self.where} streamed more than {MAX_STREAM} bytes in one reply")
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                continue
            if line or not data:  # a comment (keep-alive), event:, id:, retry:, or a blank line between events
                if time.monotonic() - last > self.timeout:
                    raise ModelError(f"{self.where} stalled: only keep-alives for {self.timeout:g}s")
                continue
            payload, data = "\n".join(data), []
            if payload == "[DONE]":
                yield from self.end()
                return
            yield from self.event(payload)
            last = time.monotonic()
        if data:  # the last event without its blank line
            payload = "\n".join(data)
            if payload == "[DONE]":
                yield from self.end()
                return
            yield from self.event(payload)
        if not self.finished:
            raise ModelError(f"{self.where} ended its stream before the reply was complete (no [DONE])")
        yield from self.end()  # a finish_reason came, only the [DONE] is missing: the reply is whole

    def event(self, payload: str) -> Iterator[Delta]:
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise ModelError(f"{self.where} streamed an event that is not JSON: {payload[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise ModelError(f"{self.where} streamed an event that is not a JSON object: {payload[:80]!r}")
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelError(f"{self.where} failed mid-reply: {' '.join(str(message).split())[:MAX_MESSAGE]}")
        for choice in chunk.get("choices") or ():  # the usage chunk has none
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise ModelError(f"{self.where} streamed a choice whose delta is not an object: {payload[:80]!r}")
            content = delta.get("content")
            if content and isinstance(content, str):
                yield Text(content)
            for piece in delta.get("tool_calls") or ():
                self.tool_piece(piece)
            if choice.get("finish_reason"):
                self.finished = True

    def tool_piece(self, piece: object) -> None:
        """Add one `tool_calls` delta to the call at its index."""
        if not isinstance(piece, dict) or not isinstance(piece.get("function") or {}, dict):
            raise ModelError(f"{self.where} streamed a malformed tool call piece: {str(piece)[:80]!r}")
        function = piece.get("function") or {}
        index = piece.get("index")
        if index is None:  # servers that send each call whole, without an index (older Ollama): a new call each
            index = len(self.calls) if piece.get("id") or function.get("name") or not self.calls else max(self.calls)
        if not isinstance(index, int) or isinstance(index, bool):
            raise ModelError(f"{self.where} streamed a tool call piece with index {index!r}")
        call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": []})
        if piece.get("id"):
            call["id"] = piece["id"]
        if function.get("name"):
            call["name"] += function["name"] if not call["name"] or call["name"] != function["name"] else ""
        if function.get("arguments"):
            call["arguments"].append(function["arguments"])

    def end(self) -> Iterator[Delta]:
        for index in sorted(self.calls):
            call = self.calls[index]
            if not call["name"]:
                raise ModelError(f"{self.where} streamed a tool call (index {index}) without a function name")
            yield ToolCall(call["id"] or f"call_{index}", call["name"], "".join(call["arguments"]) or "{}")
        self.calls = {}
        yield Done()


def _reason(exc: Exception) -> str:
    """A connection error's cause in a few words (the OS's reason), without any URL or header."""
    cause = exc.__context__ or exc.__cause__
    while cause is not None and (cause.__context__ or cause.__cause__) is not None:
        cause = cause.__context__ or cause.__cause__
    text = getattr(cause, "strerror", None) or (str(cause) if cause else "") or type(exc).__name__
    return text[:MAX_MESSAGE]


def model_from_settings(settings: Mapping, model: str | None = None, *, http_client=None) -> OpenAIModel | None:
    """The built-in model for IVR_AGENT_BASE_URL and `model` (else IVR_AGENT_MODEL); None when either is unset."""
    base = settings.get("IVR_AGENT_BASE_URL")
    name = model or settings.get("IVR_AGENT_MODEL")
    if not base or not name:
        return None
    return OpenAIModel(base, name, settings.get("IVR_AGENT_API_KEY"), http_client)
