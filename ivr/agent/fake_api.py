"""A local fake of an OpenAI-compatible chat completions API, for tests and benchmarks (no network, no model).

`FakeChatAPI` is a real HTTP server on 127.0.0.1 (a thread per request) that answers
`POST {base_url}/chat/completions` with scripted replies, streamed as the real APIs stream them
(server-sent events over chunked HTTP/1.1, `data: [DONE]` last): text tokens at a chosen pace, tool
calls with their arguments split across deltas, and the faults a model API has: an error status with
an OpenAI-style error body, a stream broken off, an event that is not JSON, a stall (with or without
keep-alive comments). It records every request (path, headers, JSON body) so that tests can check
exactly what was sent. It ships in the package because the agent benchmark drives it too.

    with FakeChatAPI() as api:
        api.reply(Reply(tokens=["Hel", "lo"]), Reply(calls=[("end_resolved", {})]))
        model = OpenAIModel(api.base_url, "fake-model")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeChatAPI", "Reply", "Request"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `tokens` stream first, `pace` seconds apart; `calls` are (name, arguments) pairs, their
    arguments' JSON sent `chunk` characters per delta. Before token number `hold_at` the server waits for `hold`
    (a threading.Event the test sets) or `pause` seconds. Faults: `status` >= 400 answers `error` as an OpenAI
    error body; `cut_after` tokens then the connection closes mid-stream; `garbage` is sent as an event that is
    not JSON; `stall` seconds of silence after the tokens (a `keepalive` comment every so many seconds)."""

    tokens: Sequence[str] = ()
    calls: Sequence[tuple[str, dict | str]] = ()
    pace: float = 0.0
    chunk: int = 8
    hold_at: int | None = None
    hold: threading.Event | None = None
    pause: float = 0.0
    status: int = 200
    error: str = "scripted error"
    cut_after: int | None = None
    garbage: str | None = None
    stall: float = 0.0
    keepalive: float | None = None


@dataclass(frozen=True)
class Request:
    """A request the fake API received: path, headers (names lowercased), and its body parsed as JSON (None if not)."""

    path: str
    headers: dict[str, str]
    body: object


@dataclass
class FakeChatAPI:
    """The fake API: `reply(...)` queues answers (one per request); when the queue is empty, `answer(body)` decides
    from the request's JSON body (a benchmark's many conversations at once), else `default`."""

    default: Reply | None = None
    answer: Callable[[object], Reply | None] | None = None
    prefix: str = "/v1"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What IVR_AGENT_BASE_URL would be: http://127.0.0.1:PORT/v1."""
        assert self._server is not None, "start the fake API first"
        return f"http://127.0.0.1:{self._server.server_port}{self.prefix}"

    def reply(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._replies.extend(replies)

    def next_reply(self, body: object = None) -> Reply | None:
        """The queued answer, else `answer(body)`, else `default`."""
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        return self.answer(body) if self.answer is not None else self.default

    def start(self) -> FakeChatAPI:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-chat-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled and held answers are let go."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeChatAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, seconds: float) -> None:
        """Sleep, cut short when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the listen backlog: the benchmark opens hundreds of streams at once

    def handle_error(self, request: object, client_address: object) -> None:
        """A client closing an idle kept-alive connection (its pool trimmed) is normal; anything else is shown."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def chunk_event(model: str, delta: dict, finish: str | None = None) -> bytes:
    """One `chat.completion.chunk` as a server-sent event."""
    chunk = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streams over kept-alive connections, as the real APIs serve them

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        api: FakeChatAPI = self.server.api  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with api._lock:
            api.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path != f"{api.prefix}/chat/completions":
            return self._error(404, f"unknown path {self.path}")
        reply = api.next_reply(body)
        if reply is None:
            return self._error(500, "the fake API has no reply left")
        if reply.status >= 400:
            return self._error(reply.status, reply.error)
        model = body.get("model", "") if isinstance(body, dict) else ""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._stream(api, reply, model)
        except (BrokenPipeError, ConnectionResetError):  # the client went away (a cancelled reply)
            self.close_connection = True

    def _stream(self, api: FakeChatAPI, reply: Reply, model: str) -> None:
        self._send(chunk_event(model, {"role": "assistant", "content": ""}))
        for n, token in enumerate(reply.tokens):
            if n == reply.hold_at:
                while reply.hold is not None and not reply.hold.wait(0.05) and not api._stopping.is_set():
                    pass
                api.wait(reply.pause)
            if reply.cut_after is not None and n >= reply.cut_after:
                return self._cut()
            api.wait(reply.pace)
            self._send(chunk_event(model, {"content": token}))
        if reply.cut_after is not None:
            return self._cut()
        if reply.garbage is not None:
            self._send(b"data: " + reply.garbage.encode() + b"\n\n")
        self._stall(api, reply)
        for index, (name, arguments) in enumerate(reply.calls):
            text = arguments if isinstance(arguments, str) else json.dumps(arguments)
            first = {"index": index, "id": f"call_fake_{index}", "type": "function"}
            self._send(chunk_event(model, {"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]}))
            for i in range(0, len(text), max(reply.chunk, 1)):
                piece = {"index": index, "function": {"arguments": text[i : i + reply.chunk]}}
                self._send(chunk_event(model, {"tool_calls": [piece]}))
        self._send(chunk_event(model, {}, "tool_calls" if reply.calls else "stop"))
        self._send(b"data: [DONE]\n\n")
        self._chunk(b"")  # the last chunk: the answer is complete

    def _stall(self, api: FakeChatAPI, reply: Reply) -> None:
        end = time.monotonic() + reply.stall
        while not api._stopping.is_set() and (left := end - time.monotonic()) > 0:
            api.wait(min(left, reply.keepalive or left))
            if reply.keepalive and end - time.monotonic() > 0:
                self._send(b": keep-alive\n\n")

    def _send(self, data: bytes) -> None:
        self._chunk(data)
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Close the connection mid-answer: no last chunk, no [DONE]."""
        self.close_connection = True
        self.wfile.flush()

    def _error(self, status: int, message: str) -> None:
        payload = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": status}})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())
