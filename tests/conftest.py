"""Fixtures: the app built through create_app({...}) as flaskr does, the public phone on it (the one
way to drive a call), Twilio's side of a request the phone cannot make (real parameter sets, real
signatures), and a schema check on every TwiML document the suite sees."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

pytest.register_assert_rewrite("ivr.testing")  # imported here before pytest_plugins loads it

from flask.testing import FlaskClient  # noqa: E402
from helpers import (  # noqa: E402
    NO_POSTGRES,
    NO_REDIS,
    REDIS_URL,
    T0,
    FakeClock,
    delete_own_keys,
    new_prefix,
    postgres_answers,
    postgres_schema,
    redis_answers,
)
from twilio.request_validator import RequestValidator  # noqa: E402

from ivr import create_app  # noqa: E402
from ivr.phone import Phone  # noqa: E402
from ivr.store import MemoryStore  # noqa: E402
from ivr.testing import TwimlSchema, last_document, phone_for  # noqa: E402
from ivr.web.drain import drain_now  # noqa: E402
from ivr.web.services import services  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"
TEST_FLOWS = Path(__file__).resolve().parent / "flows"
TOKEN = "12345678901234567890123456789012"
ACCOUNT = "AC" + "0" * 32
BASE = "http://localhost"
# A Wednesday, 10:00 in New York: the office is open.
OPEN_HOURS = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


# -- the TwiML schema ----------------------------------------------------------------------------

pytest_plugins = ["ivr.testing"]
# Apps the suite builds outside make_app (servers, docs' commands) keep no journal in the checkout's
# instance/; the journal's own tests name a database of their own.
os.environ.setdefault("IVR_EVENTS", "off")

_DEFAULT_XSD = ROOT.parent / "shared" / "twiml-xsd" / "twiml.xsd"
if not os.environ.get("IVR_TWIML_XSD") and _DEFAULT_XSD.exists():
    os.environ["IVR_TWIML_XSD"] = str(_DEFAULT_XSD)  # the plugin checks every document against it


def check_twiml(body: bytes) -> None:
    """Assert that a voice document validates against Twilio's schema (when the schema is present)."""
    TwimlSchema.shared().check(body)


class ValidatingClient(FlaskClient):
    """A test client that checks every TwiML document it receives against the schema."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        # Replies to texts are messaging TwiML: exempt from the voice schema.
        if response.mimetype == "text/xml" and response.status_code == 200 and b"<Message" not in response.data:
            check_twiml(response.get_data())
        return response


# -- the app ------------------------------------------------------------------------------------


EXAMPLES = ("main.yaml", "hours.yaml", "accounts.yaml", "pin.yaml", "hooks.py")


@pytest.fixture(scope="session")
def example_flows(tmp_path_factory) -> Path:
    """The shipped example flows alone: flows a user adds are checked by test_loader, not by every test."""
    directory = tmp_path_factory.mktemp("examples")
    for name in EXAMPLES:
        if (FLOWS / name).exists():
            shutil.copy(FLOWS / name, directory / name)
    return directory


def suite_settings(flows: Path, spool: Path | None = None) -> dict:
    """The suite's settings: test env, memory store, a token, the flows in `flows`, a spool of its own."""
    return {
        "IVR_ENV": "test",
        "IVR_STORE": "memory://",
        "IVR_FLOWS_DIR": str(flows),
        "IVR_RECORD_DIR": None,
        "IVR_SPOOL_DIR": str(spool if spool is not None else Path(tempfile.mkdtemp(prefix="ivr-spool-"))),
        "IVR_EVENTS": "off",  # the journal's own tests turn it on, on a database of their own
        # A key of the suite's: an app without one keeps a development key file (in the working directory
        # for a PostgreSQL journal); the tests of that file say IVR_ANALYTICS_KEY=None.
        "IVR_ANALYTICS_KEY": "suite-analytics-key-" + "0" * 44,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
    }


@pytest.fixture
def make_app(tmp_path, tmp_path_factory, example_flows):
    """Build an app through create_app({...}); defaults: test env, memory store, a token, main's flows."""

    def make(config: dict | None = None, *, now: datetime = OPEN_HOURS, clock=None):
        settings = {**suite_settings(example_flows, tmp_path_factory.mktemp("spool")), **(config or {})}
        app = create_app(settings, clock=clock or (lambda: now))
        app.test_client_class = ValidatingClient
        return app

    return make


@pytest.fixture
def production(tmp_path) -> dict:
    """A production configuration with nothing missing, for make_app (which adds the token)."""
    return {
        "IVR_ENV": "production",
        "IVR_STORE": f"sqlite:///{tmp_path}/s.sqlite3",
        "IVR_PUBLIC_URL": "https://ivr.example.com",
        "IVR_SPOOL_DIR": str(tmp_path / "spool"),
        "IVR_EVENTS": f"sqlite:///{tmp_path}/events.sqlite3",
        "IVR_ANALYTICS_KEY": "k" * 64,
        "TWILIO_AUTH_TOKEN": TOKEN,
    }


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ivr_app(app):
    """The app the plugin's `phone` fixture calls: the suite's app, with main's flows and a token."""
    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    """Serve a WSGI app over HTTP on 127.0.0.1, a thread per request (a relay socket holds its thread
    while webhooks go on); yields a function that returns its base URL."""
    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join()
        server.server_close()


def phone_on(app, *, base_url: str = BASE) -> Phone:
    """A built-in phone on `app` (not the suite's default app), checking every document it gets."""
    return phone_for(app, schema=TwimlSchema.shared(), base_url=base_url)


def verb(call, tag: str):
    """The first <tag> of the call's last TwiML document, nested ones included (None without one)."""
    return next(last_document(call).iter(tag), None)


@pytest.fixture
def flows_dir(tmp_path):
    """A scratch flows directory for tests that write their own flow files."""
    directory = tmp_path / "flows"
    directory.mkdir()
    return directory


def copy_flows(dest: Path, *names: str) -> Path:
    """Copy shipped flows into a scratch directory."""
    for name in names:
        shutil.copy(FLOWS / name, dest / name)
    return dest


# -- stores, clocks and Redis --------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when the test (or the code's sleep) moves it."""
    return FakeClock()


@pytest.fixture
def store():
    """A memory store, for code that takes a store (test_store and test_redis_store run every kind)."""
    return MemoryStore()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The tests' database of the shared Redis; the test skips where none answers."""
    if not redis_answers():
        pytest.skip(NO_REDIS)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A Redis key prefix for this test alone; its keys are deleted afterwards (never FLUSHDB)."""
    prefix = new_prefix()
    yield prefix
    delete_own_keys(prefix)


@pytest.fixture(scope="session")
def postgres() -> bool:
    """A PostgreSQL for the journal's tests; the test skips, saying why, where none answers."""
    if not postgres_answers():
        pytest.skip(NO_POSTGRES)
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request, tmp_path) -> str:
    """An IVR_EVENTS URL of an empty journal: a SQLite file, then a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/events.sqlite3"
        return
    request.getfixturevalue("postgres")
    with postgres_schema() as url:
        yield url


# -- the call journal's desk: tests/flows/reports/desk.yaml, driven by the phone on one clock ---------

DESK = Path(__file__).parent / "flows" / "reports"


class Desk:
    """The desk flow's app, a phone on it, and one clock for both."""

    def __init__(self, app, clock: FakeClock) -> None:
        self.app, self.clock = app, clock
        self.phone = phone_for(app, schema=TwimlSchema.shared())
        self.phone.clock = clock
        self.numbers = iter(f"+1555000{n:04d}" for n in range(100, 200))

    def dial(self, from_: str | None = None):
        return self.phone.dial("desk", from_=from_ or next(self.numbers))

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def finish(self):
        """Callbacks stored, the journal written: what a report reads."""
        drain_now(self.app)
        services(self.app).events.flush()
        return services(self.app).events.database


@pytest.fixture
def desk(make_app, journal_url, hooks):
    hooks.slow("look_up_account", 0.02, outcome="found")
    clock = FakeClock(T0)
    app = make_app(
        {"IVR_FLOWS_DIR": str(DESK), "IVR_EVENTS": journal_url},
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
    )
    yield Desk(app, clock)
    services(app).events.close()


# -- Twilio's side ------------------------------------------------------------------------------


def caller_params(sid: str, from_: str = "+15551230000", to: str = "+15559870000", status: str = "ringing") -> dict:
    """The parameters Twilio sends with every voice webhook of an inbound call."""
    params = {
        "AccountSid": ACCOUNT,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": from_,
        "To": to,
        "Caller": from_,
        "Called": to,
    }
    for prefix in ("From", "To", "Caller", "Called"):
        for part in ("City", "State", "Zip", "Country"):
            params[prefix + part] = "US" if part == "Country" else ""
    return params


def recording_params(call_sid: str, recording_sid: str, duration: int = 9) -> dict:
    """The parameters of Twilio's recording status callback for a completed recording."""
    return {
        "AccountSid": ACCOUNT,
        "CallSid": call_sid,
        "RecordingSid": recording_sid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{recording_sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": str(duration),
    }


def document(response) -> ElementTree.Element:
    """The TwiML document of a test client's response, parsed (for requests the phone cannot make)."""
    assert response.status_code == 200, response.status_code
    return ElementTree.fromstring(response.get_data())


def said(root: ElementTree.Element) -> list[str]:
    """Every Say text of a TwiML document, in order, including those inside Gather."""
    return [say.text or "" for say in root.iter("Say")]


def sign(url: str, params: dict, token: str = TOKEN) -> str:
    """X-Twilio-Signature for a POST to `url` with `params`, by Twilio's algorithm."""
    return RequestValidator(token).compute_signature(url, params)


# -- a real browser -------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def chromium(tmp_path):
    """Debian's headless Chromium through its own chromedriver: nothing is downloaded."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            pytest.skip(f"{path} is missing (apt-get install {package}); the browser test needs Debian's Chromium")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements.txt)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A driver path given: selenium skips Selenium Manager, which would otherwise download one.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
