"""Replay a recorded call against the current flows and show, step by step, where the TwiML differs.

Replays are deterministic: a fresh memory store, each request at its recorded time, no signature
check, and the recorded public URL (host and path prefix) mapped onto the local app.
"""

from __future__ import annotations

import difflib
import json
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from ivr.hooks import HookRunner
from ivr.phone.recording import FORMAT_VERSION, mask_numbers, read_recording
from ivr.phone.transport import REPLAY_SOURCE

__all__ = ["ReplayResult", "ReplayTarget", "StepResult", "replay"]


@dataclass(slots=True)
class StepResult:
    """One recorded webhook and how the current flows answered it."""

    index: int
    method: str
    url: str
    params: dict
    expected_status: int
    actual_status: int
    expected: str
    actual: str
    compared: bool = True
    conversation: dict | None = None  # a conversation's step (method WS): what it is now

    @property
    def ok(self) -> bool:
        """Whether the answer is the recorded one (always, for redacted steps)."""
        if not self.compared:
            return True
        return self.expected_status == self.actual_status and _pretty(self.expected) == _pretty(self.actual)

    def diff(self) -> str:
        """A unified diff of the recorded and the current TwiML, one element per line."""
        lines = difflib.unified_diff(
            _pretty(self.expected).splitlines(),
            _pretty(self.actual).splitlines(),
            "recorded",
            "now",
            lineterm="",
        )
        status = ""
        if self.expected_status != self.actual_status:
            status = f"  status: recorded {self.expected_status}, now {self.actual_status}\n"
        return status + "\n".join(f"  {line}" for line in lines)


@dataclass(slots=True)
class ReplayResult:
    """The outcome of replaying one recording."""

    path: Path
    header: dict
    steps: list[StepResult] = field(default_factory=list)
    changed_flows: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def report(self) -> str:
        """What a developer reads: each differing step with its request and a diff."""
        lines = []
        for step in self.steps:
            if step.ok:
                continue
            inputs = {k: v for k, v in step.params.items() if k in _SHOWN}
            shown = " ".join(f"{k}={v}" for k, v in inputs.items())
            what = "the conversation differs" if step.method == "WS" else "the TwiML differs"
            lines.append(f"step {step.index}: {step.method} {step.url} {shown}".rstrip() + f": {what}")
            lines.append(step.diff())
        total = len(self.steps)
        bad = sum(not s.ok for s in self.steps)
        verdict = "same as recorded" if not bad else f"{bad} of {total} steps differ"
        changed = f" (changed since recording: {', '.join(self.changed_flows)})" if self.changed_flows else ""
        lines.append(f"{self.path}: {total} steps, {verdict}{changed}")
        return "\n".join(lines)


_SHOWN = ("Digits", "SpeechResult", "DialCallStatus", "RecordingDuration", "QueueResult", "CallStatus")


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """What a replay drives: a Flask app, the content hash of each flow it serves, and its hook runner
    (fed the results recorded with the call instead of running live hooks)."""

    app: Any
    flow_hashes: dict[str, str]
    hooks: HookRunner
    # Talks a recorded conversation again: (flow, state, call params, recorded summary) -> its summary now.
    converse: Callable[[str, str, dict, dict], dict | None] | None = None


def replay(
    path: str | Path,
    target_factory: Callable[..., ReplayTarget],
    *,
    flows_dir: str | Path = "flows",
    rerecord: bool = False,
    source: str = REPLAY_SOURCE[1],
    config: dict | None = None,
) -> ReplayResult:
    """Re-send a recorded call to an app serving `flows_dir`; with rerecord, rewrite the file's answers.

    `target_factory(config, clock=...)` builds that app (`ivr.web.replay_target`), passed in by the
    caller because the phone sits below the web room. Its journal notes the calls with `source`
    (`import` when recordings are loaded into it); `config` adds settings (the journal's, say).
    """
    path = Path(path)
    header, lines = read_recording(path)
    with tempfile.TemporaryDirectory(prefix="ivr-replay-spool-") as spool:  # callbacks stay out of the real spool
        settings = {**(config or {}), "IVR_SPOOL_DIR": spool}
        return _replay(path, header, lines, target_factory, flows_dir, rerecord, settings, source)


def _replay(path: Path, header: dict, lines: list[dict], target_factory, flows_dir, rerecord: bool,
            config: dict, source: str) -> ReplayResult:  # fmt: skip
    public_url = header.get("public_url")
    moment = {"now": _parse_time(header.get("started") or lines[0]["t"]) if lines else None}
    target = target_factory(
        {
            **config,
            "IVR_ENV": "test",
            "IVR_STORE": "memory://",
            "IVR_FLOWS_DIR": str(flows_dir),
            "IVR_PUBLIC_URL": public_url,
            "IVR_TRUSTED_PROXIES": 0,
            "TWILIO_AUTH_TOKEN": None,
            "IVR_RECORD_DIR": None,
        },
        clock=lambda: moment["now"],
    )
    marked = {REPLAY_SOURCE[0]: source}
    hashes = target.flow_hashes
    result = ReplayResult(path, header)
    result.changed_flows = sorted(
        fid for fid, digest in header.get("flows", {}).items() if fid in hashes and hashes[fid] != digest
    )
    client = target.app.test_client()
    runner = target.hooks
    converse = target.converse
    for index, line in enumerate(lines, 1):
        moment["now"] = _parse_time(line["t"])
        params = line.get("params", {})
        if line.get("agent") and converse is not None:  # the conversation before its <Connect action> request
            step, params = _conversation(index, line, params, converse, bool(header.get("masked")))
            result.steps.append(step)
        runner.replaying = list(line.get("hooks", []))  # the results recorded with the call, not live hooks
        target = _local_target(line["url"], public_url)
        # Marked as replay (or import): the app's journal counts these calls apart from Twilio's.
        if line["method"].upper() == "GET":
            response = client.get(target, environ_base=marked)
        else:
            response = client.open(target, method=line["method"], data=params, environ_base=marked)
        actual = response.get_data(as_text=True)
        if header.get("masked"):
            actual = mask_numbers(actual)
        result.steps.append(
            StepResult(
                index=index,
                method=line["method"],
                url=line["url"],
                params=params,
                expected_status=line.get("status", 200),
                actual_status=response.status_code,
                expected=line.get("twiml", ""),
                actual=actual,
                compared=not line.get("redacted", False),
            )
        )
    if rerecord and not result.ok:  # only an answer that changed is rewritten, with today's hashes
        _rewrite(path, header, lines, result, dict(hashes))
    return result


def _conversation(index: int, line: dict, params: dict, converse, masked: bool) -> tuple[StepResult, dict]:
    """Talk the line's recorded conversation again; its step, and the action request's parameters as the
    conversation now ends (HandoffData naming the route it chose now)."""
    recorded = line["agent"]
    flow_id, state = _agent_state(line["url"])
    call = {k: params.get(k, "") for k in ("CallSid", "From", "To")}
    now = converse(flow_id, state, call, recorded) if flow_id and state else None
    actual = _conversation_text(now) if now is not None else "(no conversation: the state is no agent now)"
    step = StepResult(index, "WS", f"/relay/{flow_id}/{state}", {}, 200, 200, _conversation_text(recorded),
                      mask_numbers(actual) if masked else actual, conversation=now)  # fmt: skip
    if now is not None and now.get("outcome") != "hangup" and "HandoffData" in params:
        handoff = {"route": now.get("outcome"), "values": now.get("values") or {}}
        params = {**params, "HandoffData": json.dumps(handoff, separators=(",", ":"))}
    return step, params


def _agent_state(url: str) -> tuple[str | None, str | None]:
    parts = [p for p in urllib.parse.urlsplit(url).path.split("/") if p]
    return (parts[-2], parts[-1]) if len(parts) >= 3 and parts[-3] == "voice" else (None, None)


def _conversation_text(summary: dict) -> str:
    """A conversation as replay compares it: what the caller said and heard, its tool calls, how it ended."""
    lines = []
    for said in summary.get("transcript") or ():
        if "caller" in said:
            lines.append(f"caller: {said['caller']}")
        elif "key" in said:
            lines.append(f"caller presses {said['key']}")
        elif "agent" in said:
            lines.append(f"agent: {said['agent']}" + (" (interrupted)" if said.get("interrupted") else ""))
    for tool in summary.get("tools") or ():
        error = f" ({tool['error']})" if tool.get("error") else ""
        lines.append(f"tool {tool.get('name')}: {tool.get('outcome')}{error}")
    values = json.dumps(summary.get("values") or {}, sort_keys=True)
    lines.append(f"ends on {summary.get('outcome')} {values}")
    return "\n".join(lines)


def _rewrite(path: Path, header: dict, lines: list[dict], result: ReplayResult, hashes: dict) -> None:
    header = {**header, "ivr_recording": FORMAT_VERSION, "flows": hashes}
    out = [header]
    conversations = {s.index: s.conversation for s in result.steps if s.method == "WS" and s.conversation}
    webhooks = [s for s in result.steps if s.method != "WS"]
    for index, (line, step) in enumerate(zip(lines, webhooks, strict=True), 1):
        if index in conversations:
            line = {**line, "agent": conversations[index]}
        out.append({**line, "status": step.actual_status, "twiml": step.actual if step.compared else line["twiml"]})
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(item, separators=(",", ":")) + "\n" for item in out), encoding="utf-8")
    tmp.replace(path)


def _local_target(url: str, public_url: str | None) -> str:
    """The recorded URL as a path on the local app: the recorded host and path prefix removed."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path
    if public_url:
        prefix = urllib.parse.urlsplit(public_url).path.rstrip("/")
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix) :]
    return path + (f"?{parts.query}" if parts.query else "")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _pretty(body: str) -> str:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return body
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode")
