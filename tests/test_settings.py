"""Settings: the production start-up check lists every missing or inconsistent setting at once."""

from __future__ import annotations

import pytest

from ivr.errors import ConfigError
from ivr.settings import load_settings, production_problems

PUBLIC = "https://ivr.example.com"


def not_a_directory(tmp_path) -> str:
    """A spool path under a plain file: no one, root included, can create or write it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return str(blocker / "spool")


def test_a_complete_production_configuration_has_no_problems(production, tmp_path):
    assert production_problems(production) == []
    assert (tmp_path / "spool").is_dir()  # created, so the spool can write there from the first callback


@pytest.mark.parametrize(
    ("change", "names", "fix"),
    [
        ({"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN is not set", "Set TWILIO_AUTH_TOKEN"),
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN is not set", "Set TWILIO_AUTH_TOKEN"),
        ({"IVR_PUBLIC_URL": None}, "IVR_PUBLIC_URL is not set", "Set IVR_PUBLIC_URL"),
        ({"IVR_PUBLIC_URL": "https://"}, "is not an absolute http(s) base URL", "https://ivr.example.com/ivr"),
        ({"IVR_PUBLIC_URL": "ftp://ivr.example.com"}, "is not an absolute http(s) base URL", "set it"),
        ({"IVR_PUBLIC_URL": f"{PUBLIC}/?x=1"}, "is not an absolute http(s) base URL", "no query"),
        ({"IVR_STORE": "memory://"}, "IVR_STORE=memory://", "set IVR_STORE=sqlite:///"),
        ({"TWILIO_API_KEY": "SK" + "0" * 32}, "TWILIO_API_KEY is set without TWILIO_API_SECRET", "set both"),
        ({"TWILIO_API_SECRET": "secret"}, "TWILIO_API_SECRET is set without TWILIO_API_KEY", "set both"),
    ],
)
def test_each_production_problem_names_its_setting_and_the_fix(production, change, names, fix):
    production.update(change)
    (problem,) = production_problems(production)
    assert names in problem
    assert fix in problem


def test_an_unwritable_spool_directory_is_a_production_problem(production, tmp_path):
    production["IVR_SPOOL_DIR"] = not_a_directory(tmp_path)
    (problem,) = production_problems(production)
    assert problem.startswith(f"IVR_SPOOL_DIR={production['IVR_SPOOL_DIR']!r} is not writable")
    assert "persistent disk" in problem


def test_the_spool_directory_defaults_to_instance_spool(production, tmp_path, monkeypatch):
    del production["IVR_SPOOL_DIR"]
    monkeypatch.chdir(tmp_path)
    assert production_problems(production) == []
    assert (tmp_path / "instance" / "spool").is_dir()


def test_production_refuses_to_start_listing_every_problem_in_one_error(make_app, tmp_path):
    config = {
        "IVR_ENV": "production",
        "IVR_STORE": "memory://",
        "IVR_PUBLIC_URL": None,
        "IVR_SPOOL_DIR": not_a_directory(tmp_path),
        "TWILIO_AUTH_TOKEN": None,
    }
    with pytest.raises(ConfigError) as raised:
        make_app(config)
    lines = str(raised.value).splitlines()
    assert [line.split(" ", 1)[0].split("=", 1)[0] for line in lines] == [
        "TWILIO_AUTH_TOKEN",
        "IVR_PUBLIC_URL",
        "IVR_STORE",
        "IVR_SPOOL_DIR",
    ]


def test_production_without_public_url_refuses_to_start(make_app, production):
    production["IVR_PUBLIC_URL"] = None
    with pytest.raises(ConfigError, match=r"^IVR_PUBLIC_URL is not set"):
        make_app(production)


def test_the_problems_are_checked_in_production_only(make_app, tmp_path):
    """Development and tests keep their defaults: no public URL, no token, the memory store."""
    config = {"IVR_ENV": "test", "IVR_PUBLIC_URL": None, "TWILIO_AUTH_TOKEN": None,
              "IVR_SPOOL_DIR": not_a_directory(tmp_path)}  # fmt: skip
    assert make_app(config).config["IVR_ENV"] == "test"


@pytest.mark.parametrize(("given", "read"), [(None, "text"), ("", "text"), ("json", "json"), ("JSON", "json")])
def test_log_format_is_text_unless_json_is_asked_for(given, read):
    assert load_settings({"IVR_LOG_FORMAT": given}, environ={})["IVR_LOG_FORMAT"] == read


def test_an_unknown_log_format_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match=r"IVR_LOG_FORMAT='jsonl' is not one of text, json"):
        load_settings({"IVR_LOG_FORMAT": "jsonl"}, environ={})
