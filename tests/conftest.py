"""Fixtures: the app built through create_app({...}) as flaskr does, Twilio's side of a call
(real parameter sets, real signatures), and a schema check on every TwiML document the suite sees."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest

pytest.register_assert_rewrite("ivr.testing")  # imported here before pytest_plugins loads it

from flask.testing import FlaskClient  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from ivr import create_app  # noqa: E402
from ivr.phone import Phone  # noqa: E402
from ivr.testing import TwimlSchema, last_document, phone_for  # noqa: E402

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


EXAMPLES = ("main.yaml", "hours.yaml", "accounts.yaml", "hooks.py")


@pytest.fixture(scope="session")
def example_flows(tmp_path_factory) -> Path:
    """The shipped example flows alone: flows a user adds are checked by test_loader, not by every test."""
    directory = tmp_path_factory.mktemp("examples")
    for name in EXAMPLES:
        if (FLOWS / name).exists():
            shutil.copy(FLOWS / name, directory / name)
    return directory


@pytest.fixture
def make_app(tmp_path, example_flows):
    """Build an app through create_app({...}); defaults: test env, memory store, a token, main's flows."""

    def make(config: dict | None = None, *, now: datetime = OPEN_HOURS, clock=None):
        settings = {
            "IVR_ENV": "test",
            "IVR_STORE": "memory://",
            "IVR_FLOWS_DIR": str(example_flows),
            "IVR_RECORD_DIR": None,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT,
        }
        settings.update(config or {})
        app = create_app(settings, clock=clock or (lambda: now))
        app.test_client_class = ValidatingClient
        return app

    return make


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


def phone_on(app) -> Phone:
    """A built-in phone on `app` (not the suite's default app), checking every document it gets."""
    return phone_for(app, schema=TwimlSchema.shared())


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


def sign(url: str, params: dict, token: str = TOKEN) -> str:
    """X-Twilio-Signature for a POST to `url` with `params`, by Twilio's algorithm."""
    return RequestValidator(token).compute_signature(url, params)


class Doc:
    """A TwiML document as the caller meets it."""

    def __init__(self, response) -> None:
        self.response = response
        self.status = response.status_code
        self.body = response.get_data(as_text=True)
        self.root = ElementTree.fromstring(self.body) if self.status == 200 else None

    @property
    def verbs(self) -> list:
        return list(self.root) if self.root is not None else []

    @property
    def heard(self) -> list[str]:
        """Every Say text, in order, including those inside Gather."""
        return [el.text or "" for el in self.root.iter("Say")] if self.root is not None else []

    def first(self, tag: str):
        return next(self.root.iter(tag), None) if self.root is not None else None

    @property
    def ended(self) -> bool:
        return bool(self.verbs) and self.verbs[-1].tag in ("Hangup", "Reject")


class Call:
    """One simulated call: posts what Twilio would post after each verb, signed."""

    def __init__(self, client, sid: str, from_: str, to: str, token: str = TOKEN) -> None:
        self.client = client
        self.sid = sid
        self.from_ = from_
        self.to = to
        self.token = token
        self.doc: Doc | None = None
        self.docs: list[Doc] = []
        self.requests = 0

    # the transport
    def post(self, url: str, extra: dict | None = None, status: str = "in-progress") -> Doc:
        params = caller_params(self.sid, self.from_, self.to, status)
        params.update(extra or {})
        absolute = url if url.startswith("http") else BASE + url
        path = urllib.parse.urlsplit(absolute)
        target = path.path + (f"?{path.query}" if path.query else "")
        headers = {"X-Twilio-Signature": sign(absolute, params, self.token)}
        self.requests += 1
        doc = Doc(self.client.post(target, data=params, headers=headers))
        self.doc = doc
        self.docs.append(doc)
        return self._follow(doc)

    def _follow(self, doc: Doc) -> Doc:
        # A document that ends in a Redirect not guarding a Gather/Record is followed at once, as Twilio does.
        verbs = doc.verbs
        if verbs and verbs[-1].tag == "Redirect" and (len(verbs) < 2 or verbs[-2].tag not in ("Gather", "Record")):
            return self.post(verbs[-1].text)
        return doc

    # what the caller does
    def start(self, flow: str = "main", state: str | None = None) -> Doc:
        url = f"/voice/{flow}" + (f"?state={state}" if state else "")
        return self.post(url, status="ringing")

    def _action(self, tag: str) -> str:
        el = self.doc.first(tag)
        assert el is not None, f"no <{tag}> in the last document:\n{self.doc.body}"
        return el.get("action")

    def _redirect_after(self, tag: str) -> str:
        verbs = self.doc.verbs
        tags = [v.tag for v in verbs]
        assert tag in tags, f"no <{tag}> in the last document:\n{self.doc.body}"
        following = verbs[tags.index(tag) + 1]
        assert following.tag == "Redirect", f"<{tag}> is not followed by a Redirect:\n{self.doc.body}"
        return following.text

    def press(self, digits: str, finished_on_key: str = "") -> Doc:
        return self.post(
            self._action("Gather"), {"Digits": digits, "FinishedOnKey": finished_on_key, "msg": "Gather End"}
        )

    def speak(self, text: str, confidence: str = "0.0") -> Doc:
        return self.post(self._action("Gather"), {"SpeechResult": text, "Confidence": confidence, "Language": "en-US"})

    def silence(self) -> Doc:
        return self.post(self._redirect_after("Gather"))

    def dial_result(self, status: str, duration: int = 0) -> Doc:
        extra = {"DialCallStatus": status, "DialCallSid": "CA" + "d" * 32, "DialCallDuration": str(duration)}
        return self.post(self._action("Dial"), extra)

    def record(self, seconds: int = 12, digits: str = "#") -> Doc:
        extra = {
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'1' * 32}",
            "RecordingSid": "RE" + "1" * 32,
            "RecordingDuration": str(seconds),
            "Digits": digits,
        }
        return self.post(self._action("Record"), extra)

    def record_nothing(self) -> Doc:
        return self.post(self._redirect_after("Record"))

    def hang_up_while_recording(self, seconds: int = 5) -> Doc:
        extra = {
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'2' * 32}",
            "RecordingSid": "RE" + "2" * 32,
            "RecordingDuration": str(seconds),
            "Digits": "hangup",
        }
        return self.post(self._action("Record"), extra, status="completed")

    def status(self, call_status: str, duration: int = 30):
        params = caller_params(self.sid, self.from_, self.to, call_status)
        params["CallDuration"] = str(duration)
        headers = {"X-Twilio-Signature": sign(BASE + "/twilio/status", params, self.token)}
        return self.client.post("/twilio/status", data=params, headers=headers)

    @property
    def heard(self) -> list[str]:
        return self.doc.heard


@pytest.fixture
def dial(client):
    """Place a call: `call = dial("main")` returns a Call that has entered the flow."""
    counter = iter(range(1, 10_000))

    def place(flow: str = "main", *, from_: str = "+15551230000", to: str = "+15559870000", state=None, on=None):
        call = Call(on or client, f"CA{next(counter):032d}", from_, to)
        call.start(flow, state)
        return call

    return place
