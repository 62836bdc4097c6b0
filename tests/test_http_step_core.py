"""The pure parts of HTTP steps (ivr.core.http_step: paths into JSON, routing an answer, secrets as
markers) and how the HookRunner carries out their requests (budget, bulkhead, no client)."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import FLOWS

from ivr.core.effects import HookResult
from ivr.core.graph import mermaid
from ivr.core.http_step import HttpCall, extract, http_event, json_path, resolve_secrets, secret_names
from ivr.core.loader import load_flow, load_flow_text
from ivr.hooks import HookRunner, Registry


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("account.balance", ("account", "balance")),
        ("items[0].name", ("items", 0, "name")),
        ("a[1][2]", ("a", 1, 2)),
        ("total", ("total",)),
        ("a..b", None),
        ("a b", None),
        ("[0].id", (0, "id")),
        ("a.[0]", None),
        ("a[x]", None),
        ("a[0]b", None),
        ("", None),
    ],
)
def test_a_path_into_the_answer_is_keys_and_indexes(text, steps):
    assert json_path(text) == steps


def test_a_path_finds_its_value_or_says_it_is_not_there():
    document = {"items": [{"name": "Ada"}], "n": None}
    assert extract(document, ("items", 0, "name")) == "Ada"
    assert extract(document, ("n",)) is None
    for steps in [("items", 1), ("items", "0"), ("n", "x"), ("missing",)]:
        with pytest.raises(LookupError):
            extract(document, steps)


ROUTED = """\
start: s
states:
  s:
    http: {url: 'https://a.example.com'}
    routes: {ok: t, "404": t, 5xx: t, timeout: t}
    next: t
  t: {hangup: true}
"""


@pytest.mark.parametrize(
    ("result", "event"),
    [
        (HookResult("200"), "ok"),
        (HookResult("204"), "ok"),
        (HookResult("404"), "404"),
        (HookResult("403"), "error"),  # neither its code nor 4xx is routed
        (HookResult("503"), "5xx"),
        (HookResult("301"), "error"),  # redirects are not followed
        (HookResult("timeout", error="timeout"), "timeout"),
        (HookResult("error", error="ConnectError"), "error"),
        (HookResult("200", error="the answer is not JSON"), "error"),
    ],
)
def test_an_answer_takes_its_code_then_its_class_then_ok(result, event):
    state = load_flow_text(ROUTED, "f.yaml", "f").states["s"]
    assert http_event(state, result) == event


def test_without_ok_a_2xx_goes_to_next_and_an_unrouted_timeout_to_error():
    text = ROUTED.replace("ok: t, ", "").replace(", timeout: t", "")
    state = load_flow_text(text, "f.yaml", "f").states["s"]
    assert http_event(state, HookResult("200")) == "next"
    assert http_event(state, HookResult("timeout", error="timeout")) == "error"


def test_secrets_are_replaced_only_where_their_markers_are():
    marker = "\x1esecret:TOKEN\x1e"
    assert resolve_secrets({"a": [f"Bearer {marker}", 3], "b": "x"}, {"TOKEN": "t"}) == {"a": ["Bearer t", 3], "b": "x"}
    with pytest.raises(KeyError):
        resolve_secrets(marker, {})
    assert secret_names(" A, B C,,") == {"A", "B", "C"}
    assert secret_names(None) == frozenset()


def _call(timeout: float = 1.0) -> HttpCall:
    return HttpCall("http:api.example.com", "f", "s", "GET", "https://api.example.com/x", (), (), None, None,
                    timeout, (), None, {"call_sid": "CA1"})  # fmt: skip


class _Sender:
    def __init__(self, wait: threading.Event | None = None) -> None:
        self.sent: list[tuple[HttpCall, float]] = []
        self.wait = wait

    def send(self, call: HttpCall, timeout: float) -> HookResult:
        self.sent.append((call, timeout))
        if self.wait is not None:
            self.wait.wait(5)
        return HookResult("200", {"status": 200})


def test_the_runner_sends_within_the_steps_timeout_and_the_requests_deadline():
    sender = _Sender()
    runner = HookRunner(Registry(), timeout=3, http=sender)
    result, record = runner.run(_call(timeout=2.0), deadline=time.monotonic() + 0.5)
    assert result == HookResult("200", {"status": 200})
    assert record["name"] == "http:api.example.com" and record["outcome"] == "200"
    assert sender.sent[0][1] <= 0.5


def test_a_spent_deadline_sends_nothing_and_times_out():
    sender = _Sender()
    result, _ = HookRunner(Registry(), timeout=3, http=sender).run(_call(), deadline=time.monotonic() - 1)
    assert (result.outcome, sender.sent) == ("timeout", [])


def test_without_a_client_the_step_errs():
    result, _ = HookRunner(Registry(), timeout=3).run(_call())
    assert result.outcome == "error"


def test_a_hanging_host_holds_only_its_share_of_threads():
    release = threading.Event()
    sender = _Sender(release)
    runner = HookRunner(Registry(), timeout=3, share=2, http=sender)
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(runner.run(_call(0.3))[0])) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r.error for r in results) == ["busy", "timeout", "timeout"]
    finally:
        release.set()


def test_replay_feeds_back_the_recorded_answer_without_sending():
    sender = _Sender()
    runner = HookRunner(Registry(), timeout=3, http=sender)
    runner.replaying = [{"name": "http:api.example.com", "outcome": "404", "vars": {"code": 404}, "error": None}]
    result, _ = runner.run(_call())
    assert (result, sender.sent) == (HookResult("404", {"code": 404}), [])
    assert runner.run(_call())[0].outcome == "error"  # nothing more was recorded


def test_the_graph_labels_an_http_steps_edges_with_its_routes():
    text = mermaid(load_flow(FLOWS / "orders.yaml"))
    lines = [line.strip() for line in text.splitlines()]
    for edge in [
        "lookup --> tell_status: ok",
        "lookup --> unknown_order: 404",
        "lookup --> unavailable: timeout, error",
    ]:
        assert edge in lines
