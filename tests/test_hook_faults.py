"""Hooks that fail in ways a plain exception does not: SystemExit and its kin, hangs that would take
every thread, and webhooks whose time is nearly spent (ivr.hooks.HookRunner, ivr.web.deadline)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import BASE, caller_params, document, phone_on, said, sign

from ivr.core.effects import HookCall
from ivr.hooks import HookRunner, Registry
from ivr.web.deadline import ERROR_HOOKS_BY, HOOKS_BY
from ivr.web.services import services

LINE = Path(__file__).resolve().parent / "flows" / "business"
MAIN = "For your account press 1. For support press 2."
SID = "CA" + "b" * 32


@pytest.fixture
def line_app(make_app, hooks):
    """The test line (identify runs lookup_caller, on_error: unknown); hooks have 3 s each."""
    hooks.returns("lookup_caller", outcome="found", vars={"name": "Ada"})
    hooks.returns("balance", outcome="found", vars={"balance": 42})
    return make_app({"IVR_FLOWS_DIR": str(LINE), "IVR_HOOK_TIMEOUT": "3"})


# -- BaseException ------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()], ids=type)
def test_a_hook_raising_a_base_exception_takes_on_error_and_is_logged(line_app, hooks, caplog, error):
    hooks.raises("lookup_caller", error)
    call = phone_on(line_app).dial("line", call_sid=SID)
    assert call.heard == ["Welcome.", MAIN]  # on_error: unknown, in the same document
    [record] = [r for r in caplog.records if r.name == "ivr.hooks"]
    assert f"CallSid={SID} hook 'lookup_caller' failed" in record.getMessage()
    assert type(error).__name__ in record.exc_text


# -- bulkheads ----------------------------------------------------------------------------------


def _call(name: str, sid: str) -> HookCall:
    context = {"call_sid": sid, "flow": "f", "state": "s", "call": {}, "vars": {}, "input": {}}
    return HookCall(name, "f", "s", context)


def test_calls_stuck_in_a_hanging_hook_leave_other_hooks_their_threads(caplog):
    """20 calls hang in one hook: those past its share fail at once, and another hook still answers in time."""
    release = threading.Event()
    hooks = Registry()
    hooks.register(lambda ctx: release.wait(10), name="hangs")
    hooks.register(lambda ctx: {"outcome": "fast"}, name="quick")
    runner = HookRunner(hooks, timeout=0.5)
    results: list = []
    callers = [
        threading.Thread(target=lambda i=i: results.append(runner.run(_call("hangs", f"CA{i:032d}"))[0]))
        for i in range(20)
    ]
    try:
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(5)
        errors = sorted(r.error for r in results)
        assert errors == ["busy"] * (20 - runner.share) + ["timeout"] * runner.share
        started = time.perf_counter()
        result, _ = runner.run(_call("quick", "CA" + "q" * 32))
        assert (result.outcome, result.error) == ("fast", None)
        assert time.perf_counter() - started < 0.25  # never queued behind the hanging calls
        started = time.perf_counter()
        result, _ = runner.run(_call("hangs", SID))
        assert result.error == "busy" and time.perf_counter() - started < 0.05  # fails fast, no wait
        assert f"CallSid={SID} hook 'hangs' not run: all {runner.share} of its threads are busy" in caplog.text
    finally:
        release.set()


def test_a_call_past_its_hooks_share_takes_on_error_at_once(line_app, hooks):
    release = threading.Event()
    hooks.use("lookup_caller", lambda ctx: release.wait(10))
    runner = services(line_app).hooks
    stuck = [threading.Thread(target=runner.run, args=(_call("lookup_caller", f"CA{i:032d}"),)) for i in range(8)]
    try:
        for thread in stuck:
            thread.start()
        time.sleep(0.1)  # every thread of the hook's share is taken
        started = time.perf_counter()
        call = phone_on(line_app).dial("line")
        assert call.heard == ["Welcome.", MAIN]
        assert time.perf_counter() - started < 1.0  # not the 3 s of IVR_HOOK_TIMEOUT
    finally:
        release.set()
        for thread in stuck:
            thread.join(5)


# -- the webhook's deadline ---------------------------------------------------------------------


def _enter(app, seconds_ago: float):
    """The first webhook of a call that reached the app `seconds_ago`."""
    params = caller_params(SID)
    started = time.monotonic() - seconds_ago
    return app.test_client().post(
        "/voice/line",
        data=params,
        headers={"X-Twilio-Signature": sign(BASE + "/voice/line", params)},
        environ_overrides={"ivr.started": started},
    )


def test_a_hook_ends_at_the_webhooks_deadline_counted_from_the_requests_start(line_app, hooks):
    hooks.slow("lookup_caller", 1.0, outcome="found")
    started = time.perf_counter()
    response = _enter(line_app, HOOKS_BY - 0.1)
    assert time.perf_counter() - started < 0.5  # 0.1 s were left of the hooks' time, not IVR_HOOK_TIMEOUT's 3
    assert said(document(response)) == ["Welcome.", MAIN]


def test_a_webhook_whose_hook_time_is_spent_runs_no_hook(line_app, hooks):
    response = _enter(line_app, HOOKS_BY + 0.5)
    assert said(document(response)) == ["Welcome.", MAIN]
    assert "lookup_caller" not in hooks.calls


def test_the_deadlines_leave_time_under_twilios_wait():
    from ivr.web.deadline import ANSWER_BY, TWILIO_WAITS

    assert HOOKS_BY < ERROR_HOOKS_BY < ANSWER_BY <= TWILIO_WAITS - 3
