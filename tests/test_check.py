"""`python -m ivr check`: every load error, and warnings about the call graph, at file:line:col."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FLOWS

from ivr.cli.check import check as check_command
from ivr.cli.check import hooks_for
from ivr.core.lint import run_checks
from ivr.core.loader import display_path

CHECK = Path(__file__).resolve().parent / "flows" / "check"
NO_ENV = {"IVR_FLOWS_DIR": None, "IVR_HOOKS": None, "IVR_SCHEDULES": None}


def problems_of(name: str, **options) -> list[tuple]:
    """Check one fixture; its problems as (line, column, severity, path, message), all in that file."""
    report = run_checks([str(CHECK / name)], **{"hooks": hooks_for(None), **options})
    assert all(Path(p.file).resolve() == CHECK / name for p in report.problems)
    return [(p.line, p.column, p.severity, p.path, p.message) for p in report.problems]


def check(*args: str, **env) -> tuple[int, list[str]]:
    """Run the click command; its exit status and output lines."""
    result = CliRunner().invoke(check_command, list(args), env={**NO_ENV, **env})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output.splitlines()


NOT_E164 = "'555-0100' is not an E.164 number (+, country code and number, no spaces: +15551230100)"
NOT_CLIENT = "'jane doe' is not a client identity (no spaces or <>#%\"{}|\\^[]`)"
MIXED = (
    'route "01" beside one-key routes turns off the one-key default: every choice waits for the timeout;'
    " set gather.num_digits or use one-key routes"
)
LONG = (
    "callers hear about 32 s of prompts before they can act (from here to 'menu', at 150 words a minute);"
    " shorten them, or move them into a menu's prompt, which a key interrupts"
)
NO_END = "a call that comes here can never end: no path leads to a hangup, reject, redirect out or menu goodbye"
RETRY = "never lets a silent caller go: on_max leads back to it"
ENDS = "; send on_max to a state that ends the call"
CHOOSES = "; a caller could choose the {}; limit it with gather.pattern (and save_as), or use a fixed value"

# fixture -> every problem it has: (line, column, severity, key path, message)
TRIPS = {
    "unreachable.yaml": [
        (7, 5, "warning", "states.orphan",
         "no call can reach this state: nothing leads here from start, error_state or a redirect"),
    ],
    "no_end.yaml": [(8, 5, "warning", "states.hold", NO_END)],
    "key_without_route.yaml": [
        (4, 10, "warning", "states.menu.say",
         'the prompt announces key "4" but no route takes it (add routes."4" or reword the prompt)'),
    ],
    "route_not_announced.yaml": [
        (8, 24, "warning", 'states.menu.routes."2"',
         'key "2" has a route but the prompt never announces it (say "press 2" or remove the route)'),
    ],
    "key_too_long.yaml": [
        (6, 24, "warning", 'states.menu.routes."12"',
         'route "12" needs 2 keys but gather.num_digits is 1: callers can never enter it'),
    ],
    "key_drops_default.yaml": [(6, 34, "warning", 'states.menu.routes."01"', MIXED)],
    "retries_self.yaml": [(7, 13, "warning", "states.menu.on_max", f"menu 'menu' {RETRY} (menu -> menu){ENDS}")],
    "retries_through.yaml": [
        (2, 11, "warning", "defaults.on_max", f"menu 'menu' {RETRY} (menu -> sorry -> menu){ENDS}"),
    ],
    "dial_targets.yaml": [
        (5, 15, "warning", "states.transfer.dial.number", NOT_E164),
        (6, 15, "warning", "states.transfer.dial.client", NOT_CLIENT),
        (7, 12, "warning", "states.transfer.dial.sip", "'alice@example.com' is not a SIP URI (sip:user@host)"),
    ],
    "play_url.yaml": [
        (7, 15, "warning", "states.welcome.prompts[2].play",
         "Play needs an http(s) URL Twilio can fetch, got 'sounds/welcome.mp3'"),
    ],
    "unknown_flow/main.yaml": [
        (4, 15, "error", "states.hours.redirect.flow", "unknown flow 'hour' (did you mean 'hours'?)"),
    ],
    "unknown_names.yaml": [
        (8, 10, "error", "states.lookup.run",
         "unknown hook 'zzz_unregistered' (register it with @ivr.hook in the IVR_HOOKS module)"),
        (12, 13, "error", "states.hours.when[0].if", "unknown schedule 'ofice' (did you mean 'office'?)"),
        (16, 10, "error", "states.shop.say",
         "unknown schedule 'shop' (add it under schedules:, or to IVR_SCHEDULES)"),
        (18, 17, "error", "states.shop.on_message", "unknown hook 'check_lookp' (did you mean 'check_lookup'?)"),
    ],
    "say_too_long.yaml": [
        (6, 10, "error", "states.terms.say",
         "Say text is 3289 bytes; Twilio's limit for voice Polly.Joanna is 3000 (split it into several prompts)"),
    ],
    "long_prompts.yaml": [(4, 5, "warning", "states.welcome", LONG)],
    "unset_variables.yaml": [
        (5, 10, "warning", "states.welcome.say",
         "variable 'ordr' is never set by set: or gather.save_as and is not part of the call's context"
         " (did you mean 'order'?)"),
        (9, 13, "warning", "states.check.when[0].if",
         "variable 'vip' is never set by set: or gather.save_as and is not part of the call's context"),
    ],
    "http_variables.yaml": [
        (9, 12, "warning", "states.look.http.url",
         "variable 'ordr' is never set by set: or gather.save_as (unless a hook sets it) (did you mean 'order'?)"),
    ],
    "hook_variables.yaml": [
        (4, 10, "warning", "states.menu.say",
         "variable 'balance' is never set by set: or gather.save_as (unless a hook sets it)"),
    ],
    "structural.yaml": [(4, 5, "error", "states.welcome.sya", "unknown key (did you mean 'say'?)")],
    "next_drops_one_key.yaml": [
        (7, 11, "warning", "states.menu.next",
         "next: as a catch-all turns off the one-key default (numDigits 1): each key waits out the timeout;"
         " set gather.num_digits: 1 to keep it"),
    ],
    "dial_caller_input.yaml": [
        (8, 11, "warning", "states.call.play",
         "Play URL built from caller input (input.speech)" + CHOOSES.format("URL")),
        (9, 20, "warning", "states.call.dial.number",
         "dial number built from caller input (input.digits)" + CHOOSES.format("number called")),
        (9, 47, "warning", "states.call.dial.sip",
         "dial sip built from caller input (number)" + CHOOSES.format("number called")),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", TRIPS)
def test_each_check_reports_its_mistake_at_the_key_it_is_about(name):
    assert problems_of(name) == TRIPS[name]


# fixture -> the near miss it shows: each is free of every problem
NEAR_MISSES = {
    "clean.yaml": "keys, dial targets, Play URLs, variables, hooks and schedules that are all fine",
    "menu_ends.yaml": "no hangup anywhere, but the menu's retries end in the built-in goodbye",
    "retries_bounded.yaml": "on_max goes to another menu, which waits for the caller",
    "keys_fit.yaml": "two-key routes with num_digits 2",
    "keys_in_a_list.yaml": 'keys announced as "press 1, 2 or 3", and the finish key, which needs no route',
    "long_menu_prompt.yaml": "a long prompt inside the gather, where a key interrupts it",
    "redirected/side.yaml": "a state reached only by a redirect from another flow in the directory",
    "redirected/main.yaml": "a redirect to a flow and state that exist in the directory",
    "next_keeps_one_key.yaml": "a one-key menu with a catch-all next: and num_digits 1",
    "dial_caller_input_limited.yaml": "a dial target and a Play URL from input that a gather's pattern limits",
    "outbound_and_texts.yaml": "states reached only through answered_by; on_message: {sms: ...}; an sms: step",
}


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_near_misses_get_no_warning(name):
    assert problems_of(name) == []


def test_a_shared_schedules_file_makes_its_schedules_known():
    shared = str(CHECK / "schedules" / "shared.yaml")
    found = problems_of("unknown_names.yaml", schedules=shared)
    assert [p[4] for p in found if "schedule" in p[4]] == ["unknown schedule 'ofice' (did you mean 'office'?)"]


def test_the_shipped_flows_have_no_problems():
    report = run_checks([], flows_dir=FLOWS, hooks=hooks_for(None))
    assert [p.format() for p in report.problems] == []
    assert report.flows == len(list(FLOWS.glob("*.yaml")))


# -- the command ----------------------------------------------------------------------------


def test_no_problems_exits_0_with_a_summary():
    assert check(str(CHECK / "clean.yaml")) == (0, ["no problems in 1 flow"])


def test_warnings_alone_exit_0_and_list_each_problem_then_the_summary():
    status, lines = check(str(CHECK / "unreachable.yaml"))
    assert status == 0
    assert lines == [
        f"{display_path(CHECK / 'unreachable.yaml')}:7:5: warning: states.orphan: no call can reach this state:"
        " nothing leads here from start, error_state or a redirect",
        "0 errors, 1 warning in 1 flow",
    ]


def test_strict_makes_warnings_fail():
    assert check("--strict", str(CHECK / "unreachable.yaml"))[0] == 1
    assert check("--strict", str(CHECK / "clean.yaml"))[0] == 0


def test_errors_exit_1():
    status, lines = check(str(CHECK / "unknown_names.yaml"))
    assert (status, lines[-1]) == (1, "4 errors, 0 warnings in 1 flow")


def test_a_flow_with_a_reading_mistake_still_has_its_graph_checked():
    """A dedented `hangup: true` leaves its state with no action: both are reported, as the loader does."""
    bad = CHECK.parent / "bad" / "dedented_hangup.yaml"
    status, lines = check(str(bad))
    assert [line.split(": ")[2] for line in lines[:-1]] == ["states.bye", "states.hangup", "states.later.next"]
    assert (status, lines[-1]) == (1, "3 errors, 0 warnings in 1 flow")


def test_problems_of_several_files_are_sorted_by_file_line_and_column():
    status, lines = check(str(CHECK / "unreachable.yaml"), str(CHECK / "dial_targets.yaml"))
    where = [line.split(": ")[0] for line in lines[:-1]]
    dial, unreachable = display_path(CHECK / "dial_targets.yaml"), display_path(CHECK / "unreachable.yaml")
    assert where == [f"{dial}:5:15", f"{dial}:6:15", f"{dial}:7:12", f"{unreachable}:7:5"]
    assert (status, lines[-1]) == (0, "0 errors, 4 warnings in 2 flows")


def test_json_format_lists_every_problem_for_ci():
    status, lines = check("--format", "json", str(CHECK / "dial_targets.yaml"))
    found = json.loads("\n".join(lines))
    assert status == 0
    assert [Path(p.pop("file")).resolve() for p in found] == [CHECK / "dial_targets.yaml"] * 3
    assert found[0] == {
        "line": 5,
        "column": 15,
        "severity": "warning",
        "path": "states.transfer.dial.number",
        "message": NOT_E164,
    }
    assert [p["path"] for p in found[1:]] == ["states.transfer.dial.client", "states.transfer.dial.sip"]


def test_json_format_with_strict_fails_on_warnings():
    status, lines = check("--format", "json", "--strict", str(CHECK / "unreachable.yaml"))
    assert (status, len(json.loads("\n".join(lines)))) == (1, 1)


def test_a_flow_id_is_looked_up_in_the_flows_directory():
    assert check("clean", IVR_FLOWS_DIR=str(CHECK)) == (0, ["no problems in 1 flow"])
    status, lines = check("no_end", IVR_FLOWS_DIR=str(CHECK))
    assert (status, lines[-1]) == (0, "0 errors, 1 warning in 1 flow")


def test_an_unknown_flow_id_is_an_error_with_a_suggestion():
    status, lines = check("claen", IVR_FLOWS_DIR=str(CHECK))
    assert status == 1
    where = f"{display_path(CHECK / 'claen.yaml')}:1:1: error: no flow 'claen' in {display_path(CHECK)}"
    assert lines[0].startswith(where + " (did you mean 'clean'?) (flows: clean, dial_caller_input, ")


def test_without_arguments_every_flow_in_the_directory_is_checked():
    assert check(IVR_FLOWS_DIR=str(CHECK / "redirected")) == (0, ["no problems in 2 flows"])


def test_a_missing_flows_directory_is_an_error(tmp_path):
    status, lines = check(IVR_FLOWS_DIR=str(tmp_path / "nowhere"))
    assert status == 1
    assert "flows directory not found (set IVR_FLOWS_DIR)" in lines[0]


def test_ivr_schedules_reaches_the_command():
    status, lines = check(str(CHECK / "unknown_names.yaml"), IVR_SCHEDULES=str(CHECK / "schedules" / "shared.yaml"))
    assert (status, lines[-1]) == (1, "3 errors, 0 warnings in 1 flow")
    assert not any("'shop'" in line for line in lines)
