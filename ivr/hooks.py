"""Python hooks: functions a flow calls by name (`run: lookup_account`), registered with a decorator.

    # hooks.py, named by IVR_HOOKS (or flows/hooks.py beside the flows)
    from ivr import hook

    @hook
    def lookup_account(ctx):
        account = accounts.find(ctx.call["From"])
        if account is None:
            return {"outcome": "not_found"}
        return {"outcome": "found", "vars": {"name": account.name}}

A hook gets a `HookContext` and returns a dict with `vars` (set on the call) and `outcome` (routed
on), a `HookResult`, or None. It runs during the webhook within IVR_HOOK_TIMEOUT seconds and the
webhook's deadline, on its own share of threads; past that, when its share is taken, or when it
raises anything at all (SystemExit included), the state takes its `on_error` route (else the
flow's error state).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ivr.core.call_recording import RecordingCall
from ivr.core.effects import HookCall, HookResult
from ivr.core.engine import Step
from ivr.core.http_step import HttpCall
from ivr.errors import ConfigError

__all__ = ["HookContext", "HookRunner", "Registry", "hook", "load_hooks", "registry", "run_pending"]

log = logging.getLogger("ivr.hooks")


@dataclass(frozen=True, slots=True)
class HookContext:
    """What a hook sees of the call: its parameters, variables, last input, recording and dial."""

    call_sid: str
    flow: str
    state: str
    call: dict
    vars: dict
    input: dict
    recording: dict = field(default_factory=dict)
    dial: dict = field(default_factory=dict)
    now: datetime | None = None
    message: dict | None = None  # for on_message hooks: the stored voicemail
    # CallSid:flow/state:visit. A retried webhook may run a hook again (at least once); the same key
    # then lets the hook recognise a side effect it already made.
    key: str = ""


class Registry:
    """Hooks by name. `register` is the decorator; `override` swaps one in for a test."""

    def __init__(self) -> None:
        self._hooks: dict[str, object] = {}
        self._overrides: dict[str, object] = {}

    def register(self, fn=None, *, name: str | None = None):
        """Register a function as a hook, under its own name or `name`: `@hook` or `@hook(name="x")`."""

        def add(function):
            self._hooks[name or function.__name__] = function
            return function

        return add(fn) if fn is not None else add

    def get(self, name: str):
        """The function registered as `name` (a test's override first); None when there is none."""
        return self._overrides.get(name) or self._hooks.get(name)

    def names(self) -> set[str]:
        """Every registered hook name."""
        return set(self._hooks) | set(self._overrides)

    @contextlib.contextmanager
    def override(self, name: str, function):
        """Use `function` for hook `name` inside the block (test doubles)."""
        before = self._overrides.get(name)
        self._overrides[name] = function
        try:
            yield function
        finally:
            if before is None:
                self._overrides.pop(name, None)
            else:
                self._overrides[name] = before


registry = Registry()
hook = registry.register


def load_hooks(module: str | None, flows_dir: str | Path) -> str | None:
    """Import the module that registers hooks: IVR_HOOKS, else `hooks.py` in the flows directory."""
    if module:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"IVR_HOOKS={module!r} could not be imported: {exc}") from None
        return module
    path = Path(flows_dir) / "hooks.py"
    if not path.is_file():
        return None
    name = "ivr_flow_hooks_" + str(abs(hash(str(path.resolve()))))
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(f"{path}: importing the flows' hooks failed: {exc!r}") from exc
    return str(path)


HOOK_SHARE = 8  # threads one hook name may hold at once: a hanging hook cannot take another hook's threads


class HookRunner:
    """Runs hooks within their time budget; failures become results, never exceptions.

    Each hook name has its own pool of `share` threads (a bulkhead): calls stuck in one hanging hook
    hold at most that many, and a call beyond them fails at once into its on_error route, while every
    other hook keeps its own threads.
    """

    def __init__(self, hooks: Registry, timeout: float, *, share: int = HOOK_SHARE, http=None, recordings=None) -> None:
        self.hooks = hooks
        self.timeout = timeout
        # Sends HTTP steps' requests (`send(HttpCall, timeout) -> HookResult`: ivr.outbound.http.HttpSender),
        # given by the adapter: this layer has no HTTP client of its own.
        self.http = http
        # Pauses, resumes and stops the call's recording (`send(RecordingCall, timeout) -> HookResult`:
        # ivr.web.call_recording), given by the adapter as `http` is.
        self.recordings = recordings
        self.share = share
        self._bulkheads: dict[str, _Bulkhead] = {}
        self._lock = threading.Lock()
        self.replaying: list[dict] | None = None  # results recorded with a call, fed back by replay

    def run(
        self,
        call: HookCall,
        *,
        message: dict | None = None,
        deadline: float | None = None,
        budget: float | None = None,
    ) -> tuple[HookResult, dict]:
        """Call the hook within its timeout, ending by `deadline` (time.monotonic()) when given; return its
        result and a record of the call. `budget` (a filler's deadline) replaces the timeout."""
        started = time.perf_counter()
        if self.replaying is not None:
            result = self._replayed(call)
        elif isinstance(call, HttpCall):  # an HTTP step: its own timeout, the same budget and bulkheads
            timeout = call.timeout if budget is None else budget
            left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
            result = self._send(call, left)
        elif isinstance(call, RecordingCall):  # Twilio's REST API, in this thread: its client's timeout bounds it
            left = self.timeout if deadline is None else min(self.timeout, deadline - time.monotonic())
            result = self._control_recording(call, left)
        else:
            timeout = self.timeout if budget is None else budget
            left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
            result = self._call(call, message, left)
        record = {
            "name": call.name,
            "state": call.state,
            "outcome": result.outcome,
            "vars": result.vars,
            "error": result.error,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if result.language is not None:  # replayed as answered: the language it chose
            record["language"] = result.language
        return result, record

    def _bulkhead(self, name: str) -> _Bulkhead:
        bulkhead = self._bulkheads.get(name)
        if bulkhead is None:
            with self._lock:
                bulkhead = self._bulkheads.setdefault(name, _Bulkhead(name, self.share))
        return bulkhead

    def _call(self, call: HookCall, message: dict | None, timeout: float) -> HookResult:
        function = self.hooks.get(call.name)
        sid = call.context.get("call_sid", "-")
        if function is None:
            log.error("CallSid=%s hook '%s' is not registered (set IVR_HOOKS)", sid, call.name)
            return HookResult(error=f"hook '{call.name}' is not registered")
        if timeout <= 0:
            log.error("CallSid=%s hook '%s' not run: the request's time for hooks is spent", sid, call.name)
            return HookResult(error="timeout")
        context = HookContext(**call.context, message=message)
        future = self._bulkhead(call.name).submit(function, context)
        if future is None:
            log.error("CallSid=%s hook '%s' not run: all %d of its threads are busy (it hangs or is slow); "
                      "taking its on_error route", sid, call.name, self.share)  # fmt: skip
            return HookResult(error="busy")
        try:
            answer = future.result(timeout=timeout)
        except FutureTimeout:
            # The thread is abandoned, not joined: it keeps its place in the hook's share until it returns.
            log.error("CallSid=%s hook '%s' took longer than %.1fs; taking its on_error route", sid, call.name,
                      timeout)  # fmt: skip
            return HookResult(error="timeout")
        if isinstance(answer, _Raised):
            exc = answer.exc
            log.error("CallSid=%s hook '%s' failed; taking its on_error route", sid, call.name, exc_info=exc)
            return HookResult(error=f"{type(exc).__name__}: {exc}")
        try:
            return _as_result(answer)
        except TypeError as exc:
            log.error("CallSid=%s hook '%s' returned %r: %s", sid, call.name, answer, exc)
            return HookResult(error=str(exc))

    def _send(self, call: HttpCall, timeout: float) -> HookResult:
        sid = call.context.get("call_sid") or "-"
        if self.http is None:
            log.error("CallSid=%s state '%s': no HTTP client to send its request", sid, call.state)
            return HookResult("error", error="no HTTP client")
        if timeout <= 0:
            log.error("CallSid=%s state '%s': request not sent, the request's time for hooks is spent", sid, call.state)
            return HookResult("timeout", error="timeout")
        future = self._bulkhead(call.name).submit(lambda c: self.http.send(c, timeout), call)
        if future is None:
            log.error("CallSid=%s state '%s': request not sent, all %d threads for %s are busy", sid, call.state,
                      self.share, call.origin)  # fmt: skip
            return HookResult("error", error="busy")
        try:  # the client's timeout bounds each phase; this bounds them all together
            answer = future.result(timeout=timeout + 0.05)
        except FutureTimeout:
            log.error("CallSid=%s state '%s': %s took longer than %.1fs", sid, call.state, call.origin, timeout)
            return HookResult("timeout", error="timeout")
        if isinstance(answer, _Raised):
            log.error("CallSid=%s state '%s': sending failed", sid, call.state, exc_info=answer.exc)
            return HookResult("error", error=type(answer.exc).__name__)
        return answer

    def _control_recording(self, call: RecordingCall, timeout: float) -> HookResult:
        sid = call.call_sid or "-"
        if self.recordings is None:
            log.error("CallSid=%s state '%s': no Twilio client to %s the call's recording", sid, call.state, call.op)
            return HookResult(error="no Twilio client")
        if timeout <= 0:
            log.error("CallSid=%s state '%s': recording not %s, no time left", sid, call.state, call.status)
            return HookResult(error="timeout")
        try:
            result = self.recordings.send(call, timeout)
        except Exception as exc:  # Twilio refused (no recording in progress, ...) or could not be reached
            log.error("CallSid=%s state '%s': Twilio did not %s the call's recording (%s); taking the state's error "
                      "route", sid, call.state, call.op, exc)  # fmt: skip
            return HookResult(error=str(exc) or type(exc).__name__)
        return result

    def _replayed(self, call: HookCall) -> HookResult:
        if not self.replaying:
            return HookResult("error" if isinstance(call, HttpCall) else None,
                              error=f"no recorded result for hook '{call.name}'")  # fmt: skip
        recorded = self.replaying.pop(0)
        return HookResult(recorded.get("outcome"), dict(recorded.get("vars") or {}), recorded.get("error"),
                          recorded.get("language"))  # fmt: skip


def _as_result(answer) -> HookResult:
    if answer is None:
        return HookResult()
    if isinstance(answer, HookResult):
        return answer
    if isinstance(answer, dict):
        unknown = set(answer) - {"outcome", "vars", "language"}
        if unknown:
            raise TypeError(f"a hook returns {{'outcome': ..., 'vars': {{...}}, 'language': ...}}; unexpected keys "
                            f"{sorted(unknown)}")  # fmt: skip
        language = answer.get("language")
        if language is not None and not isinstance(language, str):
            raise TypeError("'language' is the language the call goes on in, as text: 'es-MX'")
        variables = answer.get("vars") or {}
        if not isinstance(variables, dict):
            raise TypeError("'vars' must be a dict of variable names to values")
        try:  # the session keeps them as JSON: say so here, not as a crash later
            json.dumps(variables)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"'vars' must hold JSON values (text, numbers, lists, dicts): {exc}") from None
        outcome = answer.get("outcome")
        return HookResult(None if outcome is None else str(outcome), dict(variables), language=language)
    raise TypeError("a hook returns a dict, a HookResult or None")


@dataclass(frozen=True, slots=True)
class _Raised:
    """What a hook raised, carried back from its thread as a value."""

    exc: BaseException


class _Bulkhead:
    """One hook's threads: at most `share` calls at once; past that, `submit` refuses instead of queueing."""

    def __init__(self, name: str, share: int) -> None:
        self._permits = threading.BoundedSemaphore(share)
        self._pool = ThreadPoolExecutor(max_workers=share, thread_name_prefix=f"ivr-hook-{name}")

    def submit(self, function, context: HookContext) -> Future | None:
        """Start `function(context)` on one of the hook's threads; None when all of them are taken."""
        if not self._permits.acquire(blocking=False):
            return None
        try:
            return self._pool.submit(self._guarded, function, context)
        except BaseException:
            self._permits.release()
            raise

    def _guarded(self, function, context: HookContext):
        try:
            return function(context)
        # SystemExit, KeyboardInterrupt or GeneratorExit raised by a hook is the hook's failure: let
        # through, it would end the gunicorn worker (or the command) with no TwiML for the caller.
        # Ctrl-C itself never arrives here: signals go to the main thread, never to a hook's thread.
        except BaseException as exc:
            return _Raised(exc)
        finally:
            self._permits.release()  # only when the hook returns: a hanging call keeps its place


def run_pending(step: Step, runner: HookRunner, records: list, *, deadline: float | None = None) -> Step:
    """Carry out the hooks (and HTTP steps' requests) a step stops at, each within its timeout, letting the
    engine go on after each.

    With `deadline` (a time.monotonic() value, the web request's: `ivr.web.deadline`), a chain of slow
    hooks ends by then, so the webhook still answers Twilio in time (the rest take their on_error routes)."""
    while step.pending is not None:
        result, record = runner.run(step.pending.hook, deadline=deadline)
        records.append(record)
        step = step.pending.resume(result)
    return step
