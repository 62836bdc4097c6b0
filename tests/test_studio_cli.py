"""`python -m ivr import-studio`: files and --sid in, YAML out, reports on stderr, --strict, clear errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from studio_support import STUDIO

import ivr.errors
import ivr.studio.fetch
from ivr.cli import cli
from ivr.outbound.client import make_client
from ivr.phone.fakes import FakeTwilioHttp, error_body
from ivr.studio.fetch import fetch_definition

SID = "FW" + "0123456789abcdef" * 2
ACCOUNT = "AC" + "0" * 32
SETTINGS = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "token"}
REVISION_URL = f"https://studio.twilio.com/v2/Flows/{SID}/Revisions/LatestPublished"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_FLOWS_DIR", str(tmp_path / "flows"))
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)

    def invoke(*args):
        return CliRunner().invoke(cli, ["import-studio", *map(str, args)])

    return invoke


def test_without_output_the_flow_is_printed(run):
    result = run(STUDIO / "say_play.json")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Imported from Twilio Studio (")
    assert '  greeting:\n    say: "Thanks for calling, {{ call.From }}."\n' in result.stdout
    assert result.stderr == ""


def test_output_is_written_and_reports_go_to_stderr_in_the_studio_format(run, tmp_path):
    out = tmp_path / "flows" / "streams.yaml"
    result = run(STUDIO / "set_variables.json", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("# Imported from Twilio Studio")
    lines = result.stderr.splitlines()
    source = str(STUDIO / "set_variables.json")
    assert f"{source}: states[3] \"stream\" (fork-stream): no converter for Studio's 'fork-stream' widget; " \
           "marked todo, going to 'error'" in lines  # fmt: skip
    assert lines[-1] == f"wrote {out} (3 report(s)); run python -m ivr check --strict"
    assert run(STUDIO / "set_variables.json", "-o", out).exit_code == 1  # exists: not replaced without --force
    assert run(STUDIO / "set_variables.json", "-o", out, "--force").exit_code == 0


def test_strict_fails_on_any_report_and_writes_nothing(run, tmp_path):
    out = tmp_path / "flows" / "streams.yaml"
    result = run(STUDIO / "set_variables.json", "-o", out, "--strict")
    assert result.exit_code == 1
    assert not out.exists()
    assert "3 thing(s) not carried over; nothing written (--strict)" in result.stderr
    assert run(STUDIO / "gather_menu.json", "--strict").exit_code == 0  # nothing to report: it passes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "flow.json: no such file: export the flow from Studio (Export to JSON), or use --sid"),
        ('{"states": [', "flow.json:1:13: not JSON (Expecting value): export the flow from Studio again"),
        ('{"widgets": []}', "flow.json: not a Studio Flow Definition: it needs a list of widgets under 'states'"),
    ],
)
def test_a_file_that_is_not_a_definition_says_what_to_do(run, tmp_path, content, message):
    if content is not None:
        (tmp_path / "flow.json").write_text(content, encoding="utf-8")
    result = run("flow.json")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {message}"


def test_a_bad_sid_says_where_to_find_the_right_one(run):
    result = run("--sid", "FWnope")
    assert result.exit_code == 1
    assert "'FWnope' is not a Studio flow SID: those are FW and 32 hex digits; copy it from the Twilio Console" in (
        result.stderr
    )
    assert "give either FLOW.json" in run().stderr


def _revision(definition: dict) -> dict:
    return {
        "sid": SID, "account_sid": ACCOUNT, "friendly_name": "Main IVR", "definition": definition,
        "status": "published", "revision": 7, "commit_message": "menu", "valid": True, "errors": [],
        "warnings": [], "date_created": "2026-12-01T10:00:00Z", "date_updated": "2026-12-01T10:00:00Z",
        "url": REVISION_URL,
    }  # fmt: skip


def test_sid_fetches_the_latest_published_revision_with_the_exact_request():
    definition = json.loads((STUDIO / "say_play.json").read_text(encoding="utf-8"))
    http = FakeTwilioHttp().respond("GET", r"/Revisions/LatestPublished$", json=_revision(definition))
    fetched, name = fetch_definition(SID, SETTINGS, http_client=http)
    assert (fetched, name) == (definition, "Main IVR")
    (request,) = http.requests
    assert (request.method, request.url, request.params, request.data) == ("GET", REVISION_URL, {}, {})
    assert request.auth == ACCOUNT


def test_sid_through_the_command_names_reports_by_the_sid(run, monkeypatch):
    definition = json.loads((STUDIO / "set_variables.json").read_text(encoding="utf-8"))
    http = FakeTwilioHttp().respond("GET", r"/Revisions/LatestPublished$", json=_revision(definition))
    monkeypatch.setattr(
        ivr.studio.fetch, "make_client", lambda settings, http_client=None: make_client(settings, http_client=http)
    )
    result = run("--sid", SID)
    assert result.exit_code == 0, result.output
    assert f'{SID}: states[3] "stream" (fork-stream): ' in result.stderr
    assert "title: Variables and a widget the importer does not know" in result.stdout
    assert [r.url for r in http.requests] == [REVISION_URL]


def test_a_flow_never_published_says_so(monkeypatch):
    http = FakeTwilioHttp().respond("GET", r"/Revisions/", 404, json=error_body(20404, "not found", 404))
    with pytest.raises(ivr.errors.StudioError, match="has never been published"):
        fetch_definition(SID, SETTINGS, http_client=http)


def test_subflow_names_must_be_sid_equals_flow(run):
    result = run(STUDIO / "say_play.json", "--subflow", "check_pin")
    assert result.exit_code == 1
    assert "--subflow 'check_pin': write it as FW...=FLOW_ID" in result.stderr
    assert run(STUDIO / "say_play.json", "--subflow", f"{SID}=check_pin").exit_code == 0


def test_strict_passes_a_widget_nothing_leads_to_and_notes_it(run, tmp_path):
    """Exported flows keep widgets left on the canvas: Studio never runs them, so --strict does not fail."""
    data = json.loads((STUDIO / "say_play.json").read_text(encoding="utf-8"))
    data["states"].append({"name": "old_unused", "type": "say-play", "properties": {"say": "Old."}, "transitions": []})
    (tmp_path / "orphan.json").write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "flows" / "orphan.yaml"
    result = run(tmp_path / "orphan.json", "-o", out, "--strict")
    assert result.exit_code == 0, result.output
    assert f'{tmp_path / "orphan.json"}: states[{len(data["states"]) - 1}] "old_unused" (say-play): nothing in ' \
           "Studio leads to this widget; left out" in result.stderr.splitlines()  # fmt: skip
    assert "Old." not in out.read_text(encoding="utf-8")
