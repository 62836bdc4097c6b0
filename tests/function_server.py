"""A stand-in for an HTTP API and a Twilio Function on 127.0.0.1, for tests of HTTP steps.

Paths under /protected/ check X-Twilio-Signature as a Protected Twilio Function does (Twilio's
Functions gateway rejects a request whose signature is missing or wrong with HTTP 400, "Function
Request Flow" in Twilio's docs), over the URL the server was asked for and the form it got. Every
other path answers what the test set in `answers` (path -> (status, content type, body)), else a
JSON echo of what it got.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator


@dataclass
class FunctionServer:
    base: str
    token: str
    seen: list[dict] = field(default_factory=list)
    answers: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)


@contextmanager
def function_server(token: str) -> Iterator[FunctionServer]:
    """Serve on 127.0.0.1 (a thread) until the block ends."""
    validator = RequestValidator(token)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = (
                dict(parse_qsl(raw, keep_blank_values=True))
                if "form" in (self.headers.get("Content-Type") or "")
                else {}
            )
            url = found.base + self.path
            signature = self.headers.get("X-Twilio-Signature")
            got = {"method": self.command, "path": urlsplit(self.path).path, "url": url, "form": form, "body": raw,
                   "signature": signature, "content_type": self.headers.get("Content-Type")}  # fmt: skip
            found.seen.append(got)
            path = urlsplit(self.path).path
            if path.startswith("/protected/") and not (signature and validator.validate(url, form, signature)):
                status, kind, body = 400, "text/plain", b"Invalid Twilio signature"
            else:
                status, kind, body = found.answers.get(path, (200, "application/json", json.dumps(got).encode()))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    found = FunctionServer(f"http://127.0.0.1:{server.server_port}", token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
