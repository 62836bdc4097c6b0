"""docs/operations.md stays true: every setting, command, URL path and metric it names exists, its
YAML (the alert rules above all) parses, and the TwiML it tells operators to paste is the app's own.

An operator copies this guide into production configuration: a misspelt setting is silently ignored
there, and a misspelt metric makes an alert that never fires.
"""

from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, suite_settings

from ivr import create_app
from ivr.cli import cli
from ivr.core.twiml import CALLBACK_OVERRIDES, apology_document
from ivr.settings import DEFAULTS

DOC_PATH = ROOT / "docs" / "operations.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

# Added by issue 12 alongside this guide (k1: /metrics, k2: JSON logs), not yet in every branch's
# DEFAULTS: named here so the guide may use them before they land; DEFAULTS wins once they do.
ISSUE_12_SETTINGS = {"IVR_METRICS_TOKEN", "IVR_LOG_FORMAT"}
# Commands issue 12 adds (k2): backup and restore of the SQLite store, the Fallback URL's TwiML.
ISSUE_12_COMMANDS = {"backup", "restore", "fallback-twiml"}
# Routes issue 12 adds (k1): readiness and metrics.
ISSUE_12_PATHS = {"/readyz", "/metrics"}
# The metrics issue 12 adds (k1), as Prometheus exposes them: counters end in _total, histograms
# come as _bucket, _sum and _count.
COUNTERS = {
    "ivr_webhooks_total",
    "ivr_error_answers_total",
    "ivr_hook_calls_total",
    "ivr_store_errors_total",
    "ivr_texts_total",
    "ivr_deliveries_total",
    "ivr_campaign_calls_total",
}
HISTOGRAMS = {"ivr_webhook_seconds", "ivr_hook_seconds", "ivr_store_seconds"}
GAUGES = {"ivr_spool_depth", "ivr_spool_oldest_seconds", "ivr_calls_in_progress"}
METRICS = COUNTERS | GAUGES | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("", "_bucket", "_sum", "_count")}
# Readiness is probed from outside (the Blackbox exporter's probe_success on /readyz): the one rule
# whose expression cannot be about the app's own metrics.
EXTERNAL_SERIES = {"probe_success"}

# Paths on the operator's machine, not the app's URLs.
FILESYSTEM_ROOTS = ("/etc", "/srv", "/var", "/run", "/usr", "/tmp", "/opt", "/home", "/bin", "/lib")
# The path prefix of the guide's example `IVR_PUBLIC_URL=https://example.com/ivr`: the proxy strips it.
PREFIX = "/ivr"
# Hosts that stand for the app in the guide's examples; other URLs (Twilio's, say) are not checked.
APP_HOSTS = ("ivr.example.com", "example.com", "127.0.0.1", "localhost", "10.0.0.11", "10.0.0.12")

SETTING = re.compile(r"\b(?:IVR|TWILIO)_[A-Z0-9_]+\b")
COMMAND = re.compile(r"python -m ivr ([a-z][a-z-]*)")
URL = re.compile(r"https?://([^/\s`'\"<>)]+)(/[^\s`'\"#?;)]*)?")
BARE_PATH = re.compile(r"(?<![\w.:/~-])(/[A-Za-z][\w<>/.-]*)")
METRIC = re.compile(r"\bivr_[a-z_]+\b")
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
XML_BLOCK = re.compile(r"```xml\n(.*?)```", re.DOTALL)


def settings_named(text: str) -> set[str]:
    return set(SETTING.findall(text))


def commands_named(text: str) -> set[str]:
    return set(COMMAND.findall(text))


def paths_named(text: str) -> set[str]:
    """The app's URL paths the text names: in URLs on the app's hosts, and bare (`/voice/main`).

    TwiML blocks are left out (their closing tags look like paths); a path ending in `/` is a prefix,
    as in a PromQL regex such as `route=~"/voice/.*"`.
    """
    text = XML_BLOCK.sub(" ", text)
    candidates = [path for host, path in URL.findall(text) if host.split(":")[0] in APP_HOSTS and path]
    candidates += BARE_PATH.findall(URL.sub(" ", text))
    found = set()
    for path in candidates:
        path = path.rstrip(".")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            path = path[len(PREFIX) :]
        if path.strip("/.") and not any(path == root or path.startswith(root + "/") for root in FILESYSTEM_ROOTS):
            found.add(path)
    return found


def alert_rules(text: str) -> list[dict]:
    rules = []
    for block in YAML_BLOCK.findall(text):
        loaded = yaml.safe_load(block)
        if isinstance(loaded, dict) and "groups" in loaded:
            for group in loaded["groups"]:
                rules.extend(group["rules"])
    return rules


@pytest.fixture(scope="module")
def url_map(tmp_path_factory):
    """The app's routes with everything optional on: the browser phone and /api/calls."""
    flows = ROOT / "flows"
    settings = suite_settings(flows, tmp_path_factory.mktemp("spool"))
    app = create_app({**settings, "IVR_PHONE": "1", "IVR_API_TOKEN": "t" * 32})
    return app.url_map


def is_route(url_map, path: str) -> bool:
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    if path.endswith("/"):
        return any(rule.rule.startswith(path) for rule in url_map.iter_rules())
    concrete = re.sub(r"<[^>]*>", "x", path)  # /voice/<flow_id>/<state> names any flow and state
    adapter = url_map.bind("ivr.example.com")
    try:
        adapter.match(concrete, method="POST")
    except MethodNotAllowed:
        return True
    except NotFound:
        return False
    return True


# -- settings -----------------------------------------------------------------------------------


def test_every_setting_named_exists():
    unknown = settings_named(DOC) - set(DEFAULTS) - ISSUE_12_SETTINGS
    assert not unknown, f"docs/operations.md names settings ivr does not read: {sorted(unknown)}"


def test_the_guide_names_the_settings_a_production_line_needs():
    assert {"IVR_PUBLIC_URL", "IVR_TRUSTED_PROXIES", "TWILIO_AUTH_TOKEN", "IVR_STORE", "IVR_SPOOL_DIR"} <= (
        settings_named(DOC)
    )


# -- commands -----------------------------------------------------------------------------------


def test_every_command_named_exists():
    unknown = commands_named(DOC) - set(cli.commands) - ISSUE_12_COMMANDS
    assert not unknown, f"docs/operations.md names commands `python -m ivr` does not have: {sorted(unknown)}"


def test_the_guide_names_the_recovery_commands():
    assert {"backup", "restore", "reconcile", "drain", "fallback-twiml"} <= commands_named(DOC)


# -- URL paths ----------------------------------------------------------------------------------


def test_every_url_path_named_is_a_route(url_map):
    paths = paths_named(DOC)
    assert {"/voice/main", "/twilio/status", "/healthz", "/readyz"} <= paths  # the extraction works
    unknown = {p for p in paths - ISSUE_12_PATHS if not is_route(url_map, p)}
    assert not unknown, f"docs/operations.md names URL paths the app does not serve: {sorted(unknown)}"


def test_the_status_callback_fragment_is_the_apps_own():
    assert f"/twilio/status{CALLBACK_OVERRIDES}" in DOC


# -- the Fallback URL's TwiML -------------------------------------------------------------------


def test_the_fallback_twiml_shown_is_the_apps_apology():
    blocks = [b.strip() for b in XML_BLOCK.findall(DOC)]
    assert blocks == [apology_document()]


def test_the_fallback_twiml_shown_is_what_the_command_prints():
    if "fallback-twiml" not in cli.commands:
        pytest.skip("python -m ivr fallback-twiml is not on this branch yet (issue 12)")
    result = CliRunner().invoke(cli, ["fallback-twiml"])
    assert result.exit_code == 0, result.output
    assert [b.strip() for b in XML_BLOCK.findall(DOC)] == [result.output.strip()]


# -- YAML and the alert rules -------------------------------------------------------------------


def test_every_yaml_block_parses():
    blocks = YAML_BLOCK.findall(DOC)
    assert blocks
    for block in blocks:
        yaml.safe_load(block)


def test_every_alert_rule_is_about_the_apps_metrics_and_says_why():
    rules = alert_rules(DOC)
    assert len(rules) >= 8
    for rule in rules:
        assert rule.get("alert") and isinstance(rule.get("expr"), str), rule
        mentioned = set(METRIC.findall(rule["expr"]))
        assert mentioned <= METRICS, f"{rule['alert']}: unknown metrics {sorted(mentioned - METRICS)}"
        external = {name for name in EXTERNAL_SERIES if name in rule["expr"]}
        assert mentioned or external, f"{rule['alert']}: its expr names none of the app's metrics"
        assert len(rule.get("annotations", {}).get("description", "")) > 40, f"{rule['alert']}: no why"


def test_the_alerts_cover_what_the_issue_asks_for():
    exprs = " ".join(rule["expr"] for rule in alert_rules(DOC))
    for wanted in (
        "ivr_error_answers_total",
        "ivr_webhook_seconds_bucket",
        "ivr_hook_calls_total",
        "ivr_store_errors_total",
        "ivr_spool_depth",
        "ivr_spool_oldest_seconds",
        'ivr_texts_total{result="failed"}',
        "probe_success",
    ):
        assert wanted in exprs, wanted


def test_every_metric_named_anywhere_exists():
    unknown = set(METRIC.findall(DOC)) - METRICS
    assert not unknown, f"docs/operations.md names metrics the app does not export: {sorted(unknown)}"


# -- the README links it ------------------------------------------------------------------------


def test_the_readme_links_the_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in readme.split("## Layout", 1)[1]
    assert "docs/operations.md" in readme.split("## Production", 1)[1].split("\n## ", 1)[0]
