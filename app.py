"""WSGI entry: `app = create_app()`; `python app.py` serves every flow on http://127.0.0.1:5000.

`gunicorn app:app` serves production (IVR_ENV defaults to production there and needs
TWILIO_AUTH_TOKEN); `python app.py` runs in development mode with no account needed.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from ivr import IvrError, create_app
from ivr.web.analytics import journal_lines
from ivr.web.services import services

HOST, PORT = "127.0.0.1", 5000
APP_LOAD_ERROR = 4  # gunicorn's Arbiter.APP_LOAD_ERROR: the master stops instead of booting workers forever


def _cannot_start(exc: IvrError) -> None:
    print(f"ivr: cannot start:\n{exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Serve the flows for development on http://127.0.0.1:5000 (`--port N` for another port)."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve the flows in flows/ for development.")
    parser.add_argument("--port", type=int, default=PORT, help=f"port on {HOST} (default {PORT})")
    port = parser.parse_args(argv).port
    try:  # say so before anything else when the port is taken
        with socket.create_server((HOST, port)):
            pass
    except OSError as exc:
        print(f"ivr: cannot serve on {HOST}:{port} ({exc.strerror}); try: python app.py --port {port + 1}",
              file=sys.stderr)  # fmt: skip
        return 1
    os.environ.setdefault("IVR_ENV", "development")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app()
    except IvrError as exc:
        _cannot_start(exc)
        return 1
    base = app.config.get("IVR_PUBLIC_URL") or f"http://{HOST}:{port}"
    engines = services(app).flows.engines
    print(f"ivr ({app.config['IVR_ENV']}): serving {len(engines)} flow(s)")
    for flow_id in sorted(engines):
        if engines[flow_id].flow.returns:  # a subflow: entered only from a state that runs it
            print(f"  {flow_id:<12} subflow (no webhook of its own: states of other flows run it)")
            continue
        flow = engines[flow_id].flow
        languages = f"  (in {', '.join(flow.localized)}: ?language=...)" if flow.localized else ""
        print(f"  {flow_id:<12} voice webhook: {base.rstrip('/')}/voice/{flow_id}{languages}")
    print(f"  status callback: {base.rstrip('/')}/twilio/status    fallback: {base.rstrip('/')}/twilio/fallback")
    for line in journal_lines(app.config, base):
        print(line)
    if not app.config.get("TWILIO_AUTH_TOKEN"):
        print("  WARNING: TWILIO_AUTH_TOKEN is not set: requests are NOT verified; only local requests are served.")
    if app.config["IVR_PHONE"]:
        print(f"  browser phone: {base.rstrip('/')}/phone")
    if app.config["IVR_HOT_RELOAD"]:
        print("  Flow edits are served as soon as they are saved (a bad edit is reported, never served).")
    else:
        print("  Flow edits take effect when the app restarts (IVR_HOT_RELOAD=0).")
    app.run(host=HOST, port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:
    # Under gunicorn a setting or flow that stops the app is the author's to fix, not a 44-line traceback to read.
    try:
        app = create_app()
    except IvrError as exc:
        _cannot_start(exc)
        sys.exit(APP_LOAD_ERROR)
