"""Test helpers as public API, and the pytest plugin that serves them.

    pytest_plugins = ["ivr.testing"]          # in a project's tests/conftest.py

    def test_sales(phone):
        call = phone.dial("main", from_="+15551230000")
        call.press("1")
        assert call.heard == ["Connecting you to sales."]
        assert call.state == "sales"

Fixtures: `ivr_app` (override it to configure the app under test) and `phone` (a built-in phone
wired to it in-process). Recorded calls (`*.jsonl` under a `calls/` directory) are collected as
tests that replay the call against the current flows; `--ivr-rerecord` rewrites their answers
after an intended change. Every TwiML document the phone or a replay receives is checked against
Twilio's schema when IVR_TWIML_XSD names it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from ivr.agent.model import ScriptedModel, Turn
from ivr.errors import ReplayMismatch
from ivr.phone import Phone, PhoneCall, Transport, WsgiTransport
from ivr.phone.records import Exchange
from ivr.phone.replay import replay
from ivr.web.services import services

__all__ = [
    "HookDoubles",
    "Turn",
    "TwimlSchema",
    "generated_flow",
    "generated_survey",
    "last_document",
    "phone_for",
    "status_callback",
    "use_fake_twilio",
    "use_scripted_model",
]


class TwimlSchema:
    """Twilio's TwiML schema, when present: `check(body)` raises AssertionError on an invalid document."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None
        self.checked = 0
        self._schema = None
        if self.path is not None:
            if not self.path.exists():
                raise pytest.UsageError(f"IVR_TWIML_XSD={self.path} does not exist")
            from lxml import etree

            self._schema = etree.XMLSchema(etree.parse(str(self.path)))

    @classmethod
    def shared(cls) -> TwimlSchema:
        """The schema IVR_TWIML_XSD names, one instance per path (checks are skipped when it is unset)."""
        path = os.environ.get("IVR_TWIML_XSD") or None
        if path not in _SCHEMAS:
            _SCHEMAS[path] = cls(path)
        return _SCHEMAS[path]

    @property
    def active(self) -> bool:
        return self._schema is not None

    def check(self, body: str | bytes) -> None:
        """Assert that a voice document validates; a no-op without a schema."""
        if self._schema is None:
            return
        from lxml import etree

        raw = body.encode("utf-8") if isinstance(body, str) else body
        document = etree.fromstring(raw)
        if not self._schema.validate(document):
            errors = "\n".join(str(e) for e in self._schema.error_log)
            raise AssertionError(f"TwiML does not validate against {self.path}:\n{errors}\n{raw.decode()}")
        self.checked += 1


_SCHEMAS: dict[str | None, TwimlSchema] = {}


class _CheckingTransport:
    """A transport that checks every TwiML answer against the schema before the phone reads it."""

    def __init__(self, inner: Transport, schema: TwimlSchema) -> None:
        self.inner = inner
        self.schema = schema

    def request(self, method: str, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        status, body = self.inner.request(method, url, params, headers)
        if status == 200 and "<Response" in body[:200] and "/twilio/status" not in url:
            self.schema.check(body)
        return status, body

    def open_relay(self, url: str, headers: dict[str, str]):
        return self.inner.open_relay(url, headers)


class HookDoubles:
    """Test doubles for hooks: `hooks.returns("lookup", outcome="found", vars={...})`, `.raises`, `.slow`.

    Each double records the HookContext of every call in `hooks.calls[name]`. Doubles replace the
    registered hooks until the test ends; register them before the app is built when no real hook
    of that name exists (the app refuses flows that run unknown hooks).
    """

    def __init__(self, registry) -> None:
        self.registry = registry
        self.calls: dict[str, list] = {}
        self._stack = contextlib.ExitStack()

    def returns(self, name: str, *, outcome: str | None = None, vars: dict | None = None) -> None:
        """Hook `name` answers with this outcome and these variables."""
        self.use(name, lambda ctx: {"outcome": outcome, "vars": dict(vars or {})})

    def raises(self, name: str, error: BaseException) -> None:
        """Hook `name` raises `error`."""

        def fail(ctx):
            raise error

        self.use(name, fail)

    def slow(self, name: str, seconds: float, *, outcome: str | None = None) -> None:
        """Hook `name` takes `seconds` (past the budget it counts as failed)."""

        def wait(ctx):
            time.sleep(seconds)
            return {"outcome": outcome}

        self.use(name, wait)

    def use(self, name: str, function) -> None:
        """Hook `name` is `function`, called with the HookContext."""

        def recorded(ctx):
            self.calls.setdefault(name, []).append(ctx)
            return function(ctx)

        self._stack.enter_context(self.registry.override(name, recorded))

    def close(self) -> None:
        self._stack.close()


def generated_flow(states: int) -> str:
    """A flow of `states` three-option menus (about 200 bytes of YAML each): for tests and benchmarks of size."""
    lines = ["title: generated", "start: s0", "states:"]
    for i in range(states):
        a, b, c = ((i + k) % states for k in (1, 2, 3))
        lines += [
            f"  s{i}:",
            f"    say: Menu {i}. For A press 1, for B press 2, for C press 3.",
            "    gather: {timeout: 5}",
            f'    routes: {{"1": s{a}, "2": s{b}, "3": s{c}}}',
            "    on_max: bye",
        ]
    lines += ["  bye:", "    say: Goodbye.", "    hangup: true"]
    return "\n".join(lines) + "\n"


def generated_survey(states: int) -> str:
    """A flow of `states` states shaped like real ones: a main menu, then question menus in a row (each
    with its retries ending in goodbye), the flow's ways out ("0" operator, "*" repeat, "9" main menu),
    an operator, an error state; for tests and benchmarks of size (deep flows are the hard ones to draw)."""
    questions = max(states - 5, 1)
    lines = [
        "title: generated survey",
        "start: main_menu",
        "error_state: apology",
        "defaults:",
        '  routes: {"0": operator, "*": repeat, "9": main_menu}',
        "states:",
        "  main_menu:",
        "    say: To take our survey, press 1. For the operator, press 0.",
        "    gather: {timeout: 5}",
        '    routes: {"1": q1}',
        "    on_max: goodbye",
    ]
    for i in range(1, questions + 1):
        after = f"q{i + 1}" if i < questions else "thanks"
        lines += [
            f"  q{i}:",
            f"    say: Question {i}. For yes press 1, for no press 2. Press 9 for the main menu.",
            "    gather: {timeout: 5}",
            f'    routes: {{"1": {after}, "2": {after}}}',
            '    no_input: {say: "Sorry, I did not hear you.", max: 2}',
            "    on_max: goodbye",
        ]
    lines += [
        "  operator:",
        "    say: Connecting you to the operator.",
        '    dial: "+15005550006"',
        "    next: goodbye",
        "  thanks:",
        "    say: Thank you for your answers.",
        "    next: goodbye",
        "  goodbye:",
        "    say: Goodbye.",
        "    hangup: true",
        "  apology:",
        "    say: Sorry, something went wrong.",
        "    hangup: true",
    ]
    return "\n".join(lines) + "\n"


def phone_for(app, *, schema: TwimlSchema | None = None, base_url: str = "http://localhost") -> Phone:
    """A built-in phone that calls `app` in-process, signing requests when the app has a token."""
    transport: Transport = WsgiTransport(app)
    if schema is not None and schema.active:
        transport = _CheckingTransport(transport, schema)
    return Phone(transport, base_url, auth_token=app.config.get("TWILIO_AUTH_TOKEN"), effects=services(app).journal)


def last_document(call: PhoneCall) -> ElementTree.Element:
    """The last TwiML document the app answered in `call`, parsed, for what the caller cannot hear:
    `last_document(call).find("Gather").get("action")`."""
    assert call.exchanges, "the call has made no request"
    return ElementTree.fromstring(call.exchanges[-1].body)


def use_fake_twilio(app, http) -> None:
    """From now on `app` sends texts and calls through `http`, a FakeTwilioHttp (tests never reach Twilio)."""
    services(app).twilio_http = http


def use_scripted_model(app, turns) -> ScriptedModel:
    """From now on the agent states of `app` talk to a model that plays `turns` in order, one `Turn(text, calls)`
    per reply: `calls` are (tool, arguments) pairs, `("end_resolved", {})` ends on a route. The model is
    returned: its `asked` holds what each reply was asked (messages and tools), its `turns` what is left."""
    model = ScriptedModel(list(turns))
    services(app).agent_model = lambda agent: model
    return model


def status_callback(call: PhoneCall, status: str, *, duration: int = 30) -> Exchange:
    """Twilio posts a status callback with CallStatus `status` for `call` now (the phone posts one by
    itself only when the call ends, unless its `status_callback` is None); the exchange is returned
    and kept in `call.callbacks`."""
    assert call.exchanges, "the call has made no request"
    return call.post_status(status, duration)


# -- the pytest plugin --------------------------------------------------------------------------


def pytest_addoption(parser):
    group = parser.getgroup("ivr")
    group.addoption(
        "--ivr-rerecord",
        action="store_true",
        default=False,
        help="rewrite the answers of recorded calls (tests/calls/**/*.jsonl) after an intended flow change",
    )
    parser.addini("ivr_flows", "flows directory recorded calls replay against (default: flows)", default="flows")


def pytest_configure(config):
    TwimlSchema.shared()  # a wrong IVR_TWIML_XSD stops the run before any test, as a usage error


def pytest_report_header(config):
    schema = TwimlSchema.shared()
    if not schema.active:
        return "ivr: TwiML schema checks SKIPPED (set IVR_TWIML_XSD to Twilio's twiml.xsd)"
    return f"ivr: TwiML checked against {schema.path}"


def pytest_terminal_summary(terminalreporter):
    schema = TwimlSchema.shared()
    if schema.active:
        terminalreporter.write_line(f"ivr: {schema.checked} TwiML documents validated against {schema.path}")
    else:
        terminalreporter.write_line("ivr: TwiML schema checks skipped: IVR_TWIML_XSD is not set")


def pytest_sessionfinish(session, exitstatus):
    # CI must prove the checks ran, not merely that nothing failed them.
    schema = TwimlSchema.shared()
    if os.environ.get("CI") and schema.active and schema.checked == 0 and session.testscollected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _flows_dir(config) -> Path:
    given = Path(os.environ.get("IVR_FLOWS_DIR") or config.getini("ivr_flows"))
    return given if given.is_absolute() else config.rootpath / given


@pytest.fixture
def hooks():
    """Doubles for the flows' hooks, undone when the test ends."""
    from ivr.hooks import registry

    doubles = HookDoubles(registry)
    yield doubles
    doubles.close()


@pytest.fixture
def ivr_app(pytestconfig, tmp_path):
    """The app under test: test mode, memory store, the project's flows. Override to configure it."""
    from ivr.web import create_app

    return create_app(
        {
            "IVR_ENV": "test",
            "IVR_STORE": "memory://",
            "IVR_SPOOL_DIR": str(tmp_path / "spool"),
            "IVR_FLOWS_DIR": str(_flows_dir(pytestconfig)),
            "IVR_RECORD_DIR": None,
        }
    )


@pytest.fixture
def phone(ivr_app) -> Phone:
    """A built-in phone wired to `ivr_app`: `call = phone.dial("main")`, then press, say, wait..."""
    return phone_for(ivr_app, schema=TwimlSchema.shared())


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".jsonl" and "calls" in file_path.parts:
        return RecordedCallFile.from_parent(parent, path=file_path)
    return None


class RecordedCallFile(pytest.File):
    """A recorded call, collected as one test."""

    def collect(self):
        yield RecordedCallItem.from_parent(self, name=self.path.stem)


class RecordedCallItem(pytest.Item):
    """Replays a recorded call; passes while the flows still answer every step the same way."""

    def runtest(self) -> None:
        from ivr.web import replay_target

        config = self.config
        rerecord = config.getoption("ivr_rerecord")
        result = replay(self.path, replay_target, flows_dir=_flows_dir(config), rerecord=rerecord)
        schema = TwimlSchema.shared()
        for step in result.steps:
            if step.actual_status == 200 and "<Response" in step.actual[:200] and "/twilio/status" not in step.url:
                schema.check(step.actual)
        if not config.getoption("ivr_rerecord") and not result.ok:
            raise ReplayMismatch(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ReplayMismatch):
            return excinfo.value.result.report() + "\n(run pytest --ivr-rerecord to accept the new answers)"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"recorded call {self.name}"


__all__ += ["PhoneCall", "RecordedCallItem", "ReplayMismatch"]
