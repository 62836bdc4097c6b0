"""Replaying recorded calls against the current flows, directly and through the pytest plugin."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FLOWS, TOKEN, phone_on
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from ivr.core.loader import load_flows
from ivr.phone import Phone, WsgiTransport
from ivr.phone.recording import read_recording
from ivr.phone.replay import replay
from ivr.web import replay_target

pytest_plugins = ["pytester"]

CALLS = Path(__file__).resolve().parent / "calls"
SALES_BUSY = CALLS / "sales_busy_leaves_voicemail.jsonl"
OLD = "Connecting you to sales."
NEW = "Connecting you to our sales team."
AFTER_HOURS = "Our office is closed right now. To leave a message, press 1. For our opening hours, press 2."


def edit_sales_prompt(flows: Path) -> Path:
    """Change the sales prompt of the flows in `flows`."""
    main = flows / "main.yaml"
    text = main.read_text(encoding="utf-8")
    assert f"say: {OLD}" in text
    main.write_text(text.replace(f"say: {OLD}", f"say: {NEW}"), encoding="utf-8")
    return flows


@pytest.fixture
def changed(tmp_path) -> Path:
    return edit_sales_prompt(shutil.copytree(FLOWS, tmp_path / "flows"))


@pytest.fixture
def recording(tmp_path) -> Path:
    """A copy of the sales-busy recording that a test may rewrite."""
    return Path(shutil.copy(SALES_BUSY, tmp_path / SALES_BUSY.name))


# -- replay ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CALLS.glob("*.jsonl")), ids=lambda p: p.stem)
def test_every_recorded_call_replays_against_the_shipped_flows(path):
    result = replay(path, replay_target, flows_dir=FLOWS)
    _header, lines = read_recording(path)
    assert result.ok, result.report()
    webhooks = [step for step in result.steps if step.method != "WS"]  # the rest: agents' conversations
    assert len(webhooks) == len(lines) >= 2
    assert len(result.steps) - len(webhooks) == sum(1 for line in lines if line.get("agent"))
    # A sensitive state's answer (a payment's) may read its input back: it is replayed, never compared.
    assert all(step.compared != line.get("redacted", False) for step, line in zip(webhooks, lines, strict=True))
    assert all(step.actual_status == 200 for step in result.steps)
    assert result.changed_flows == []
    assert result.report() == f"{path}: {len(result.steps)} steps, same as recorded"


def test_the_recorded_time_is_the_clock_so_after_hours_stays_after_hours():
    result = replay(CALLS / "after_hours_menu_offers_voicemail.jsonl", replay_target, flows_dir=FLOWS)
    assert result.ok
    assert AFTER_HOURS in result.steps[0].actual
    assert 'action="/voice/main/after_hours_menu"' in result.steps[0].actual


def test_the_app_comes_from_the_factory_the_caller_gives():
    """The phone room builds no web app itself: replay asks its caller's factory, once, for a test app."""
    built = []

    def factory(config, clock=None):
        built.append(config)
        return replay_target(config, clock=clock)

    assert replay(SALES_BUSY, factory, flows_dir=FLOWS).ok
    assert [(c["IVR_ENV"], c["IVR_STORE"], c["IVR_FLOWS_DIR"]) for c in built] == [("test", "memory://", str(FLOWS))]


def test_a_changed_prompt_fails_the_replay_at_the_step_that_hears_it(recording, changed):
    result = replay(recording, replay_target, flows_dir=changed)
    assert not result.ok
    assert [step.index for step in result.steps if not step.ok] == [2]
    assert result.changed_flows == ["main"]
    report = result.report().splitlines()
    assert (
        report[0] == "step 2: POST http://localhost/voice/main/menu CallStatus=in-progress Digits=1: the TwiML differs"
    )
    assert "  --- recorded" in report
    assert "  +++ now" in report
    removed = [line.strip() for line in report if line.lstrip().startswith("-") and "Say" in line]
    added = [line.strip() for line in report if line.lstrip().startswith("+") and "Say" in line]
    assert removed == [f'-  <Say language="en-US" voice="Polly.Joanna">{OLD}</Say>']
    assert added == [f'+  <Say language="en-US" voice="Polly.Joanna">{NEW}</Say>']
    assert report[-1] == f"{recording}: 5 steps, 1 of 5 steps differ (changed since recording: main)"


def test_rerecord_rewrites_the_answers_and_the_flow_hashes(recording, changed):
    before_header, before = read_recording(recording)
    replay(recording, replay_target, flows_dir=changed, rerecord=True)
    header, after = read_recording(recording)
    new_hash = load_flows(changed)["main"].content_hash
    assert header["flows"]["main"] == new_hash != before_header["flows"]["main"]
    assert header["call_sid"] == before_header["call_sid"]
    assert NEW in after[1]["twiml"]
    assert OLD not in after[1]["twiml"]
    # only the answers change: the requests and their times stay as recorded
    assert [(a["url"], a["params"], a["t"]) for a in after] == [(b["url"], b["params"], b["t"]) for b in before]
    again = replay(recording, replay_target, flows_dir=changed)
    assert again.ok
    assert again.changed_flows == []


def test_a_masked_recording_replays(make_app, tmp_path):
    app = make_app({"IVR_RECORD_DIR": str(tmp_path), "IVR_MASK_NUMBERS": "1"})
    call = phone_on(app).dial("main", call_sid="CA" + "4" * 32, from_="+14155550143", to="+12125550188")
    call.press("2")
    call.press("1")  # billing: callerId is the (masked) number called
    call.dial_result("busy")
    call.record(seconds=8)  # then goodbye: the phone posts the completed status
    path = tmp_path / f"CA{'4' * 32}.jsonl"
    result = replay(path, replay_target, flows_dir=FLOWS)
    assert read_recording(path)[0]["masked"] is True
    assert result.ok, result.report()
    assert len(result.steps) == 7  # five TwiML requests, the recording callback and the status callback
    assert 'callerId="+12120000088"' in result.steps[2].actual


def test_a_recording_made_behind_a_public_url_with_a_path_prefix_replays(make_app, tmp_path):
    public = "https://ivr.example.com/acme"
    app = make_app({"IVR_RECORD_DIR": str(tmp_path), "IVR_PUBLIC_URL": public})
    proxy = DispatcherMiddleware(NotFound(), {"/acme": app})  # the app served under /acme
    call = Phone(WsgiTransport(proxy), public, auth_token=TOKEN).dial("main", call_sid="CA" + "5" * 32)
    call.press("1")
    call.dial_result("busy")
    call.record(12)
    assert call.ended
    assert call.end_reason == "hangup"
    path = tmp_path / f"CA{'5' * 32}.jsonl"
    header, lines = read_recording(path)
    assert header["public_url"] == public
    assert [line["url"] for line in lines] == [
        f"{public}/voice/main",
        f"{public}/voice/main/menu",
        f"{public}/voice/main/sales",
        f"{public}/voice/main/voicemail",
        f"{public}/twilio/status",
        f"{public}/twilio/recording?flow=main&state=voicemail",  # the recording is ready after the call
    ]
    assert f'action="{public}/voice/main/menu"' in lines[0]["twiml"]
    result = replay(path, replay_target, flows_dir=FLOWS)
    assert result.ok, result.report()
    assert len(result.steps) == 6


def test_a_redacted_step_is_not_compared(make_app, flows_dir, tmp_path):
    (flows_dir / "pin.yaml").write_text(
        "start: pin\nstates:\n  pin:\n    sensitive: true\n    say: PIN?\n"
        "    gather: {num_digits: 4}\n    next: ok\n  ok:\n    say: You entered {{ input.digits }}.\n"
        "    hangup: true\n",
        encoding="utf-8",
    )
    app = make_app({"IVR_FLOWS_DIR": str(flows_dir), "IVR_RECORD_DIR": str(tmp_path / "rec")})
    call = phone_on(app).dial("pin", call_sid="CA" + "6" * 32)
    call.press("9876")
    result = replay(tmp_path / "rec" / f"CA{'6' * 32}.jsonl", replay_target, flows_dir=flows_dir)
    assert [step.compared for step in result.steps] == [True, False, True]  # entry, the PIN, the status
    assert result.ok


# -- the pytest plugin ----------------------------------------------------------------------------


@pytest.fixture
def project(pytester, monkeypatch):
    """A project using ivr: flows/, a recorded call in tests/calls/, and the plugin in its conftest."""
    monkeypatch.delenv("IVR_FLOWS_DIR", raising=False)
    pytester.makeini("[pytest]\nivr_flows = flows\n")
    pytester.makeconftest('pytest_plugins = ["ivr.testing"]\n')
    shutil.copytree(FLOWS, pytester.path / "flows")
    (pytester.path / "tests" / "calls").mkdir(parents=True)
    shutil.copy(SALES_BUSY, pytester.path / "tests" / "calls" / "x.jsonl")
    return pytester


def test_a_recorded_call_is_collected_as_a_test_and_passes(project):
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["tests/calls/x.jsonl::x PASSED*"])


def test_a_changed_prompt_fails_the_recorded_call_until_rerecorded(project):
    recording = project.path / "tests" / "calls" / "x.jsonl"
    original = recording.read_text(encoding="utf-8")
    edit_sales_prompt(project.path / "flows")

    failed = project.runpytest()
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(
        [
            "*step 2: POST http://localhost/voice/main/menu CallStatus=in-progress Digits=1: the TwiML differs*",
            f"*-*<Say *>{OLD}</Say>*",
            f"*+*<Say *>{NEW}</Say>*",
            "*1 of 5 steps differ (changed since recording: main)*",
            "*run pytest --ivr-rerecord to accept the new answers*",
        ]
    )
    assert recording.read_text(encoding="utf-8") == original  # a failing run leaves the file alone

    rerecorded = project.runpytest("--ivr-rerecord")
    rerecorded.assert_outcomes(passed=1)
    text = recording.read_text(encoding="utf-8")
    assert NEW in text
    assert OLD not in text

    project.runpytest().assert_outcomes(passed=1)


PHONE_TEST = """
PROMPT = (
    "For sales, press 1 or say sales. For support, press 2 or say support. "
    "To leave a message, press 3. For our opening hours, press 4."
)
REPROMPT = "Press 1 for sales, 2 for support, 3 to leave a message, or 4 for opening hours."
VOICEMAIL = "Please leave a message after the beep. Press the pound key when you are done."


def test_sales_busy_leaves_a_message(phone):
    call = phone.dial("/voice/main?state=menu", from_="+15551230000")
    assert call.heard == [PROMPT]
    assert call.state == "menu"
    call.wait()
    assert call.heard == ["Sorry, I didn't hear anything.", REPROMPT]
    call.press("1")
    assert call.heard == ["Connecting you to sales."]
    assert call.state == "sales"
    call.dial_result("busy")
    assert call.heard == [VOICEMAIL]
    assert call.state == "voicemail"
    call.record(12)
    assert call.heard == ["Thank you, we got your 12 second message.", "Thanks for calling Acme. Goodbye."]
    assert call.ended
    assert call.end_reason == "hangup"
    assert len(call.documents) == 5
    assert call.documents[-1].endswith("<Hangup /></Response>")


def test_support_by_voice_then_hang_up(phone):
    call = phone.dial("/voice/main?state=menu")
    call.say("support please")
    assert call.state == "support_menu"
    assert not call.ended
    call.hangup()
    assert call.ended
    assert call.end_reason == "caller-hangup"


def test_a_wrong_expectation_fails(phone):
    call = phone.dial("/voice/main?state=menu")
    call.press("1")
    assert call.heard == ["Connecting you to billing."]
"""


def test_the_phone_fixture_drives_a_call_in_a_project(project):
    project.makepyfile(test_example=PHONE_TEST)
    result = project.runpytest("test_example.py")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_example.py::test_a_wrong_expectation_fails*"])


AGENT_CALL = CALLS / "assistant_looks_up_an_order_and_says_goodbye.jsonl"


def test_a_recorded_conversation_is_talked_again_and_differs_when_a_tools_parameters_change(tmp_path):
    """The caller's side and the recorded model turns are played again: a tool whose parameters now refuse the
    model's recorded arguments shows in the conversation's diff, and no live hook runs for the tool."""
    flows = shutil.copytree(FLOWS, tmp_path / "flows")
    text = (flows / "assistant.yaml").read_text(encoding="utf-8")
    (flows / "assistant.yaml").write_text(text.replace('"^[0-9]{5}$"', '"^[0-9]{6}$"'), encoding="utf-8")
    result = replay(AGENT_CALL, replay_target, flows_dir=flows)
    [conversation] = [step for step in result.steps if step.method == "WS"]
    assert not conversation.ok
    report = result.report()
    assert "WS /relay/assistant/assistant: the conversation differs" in report
    assert "  -tool order_status: found" in report
    assert "  +tool order_status: refused (order: does not match ^[0-9]{6}$)" in report


def test_a_conversation_that_now_ends_on_another_route_changes_the_action_request(tmp_path):
    """The <Connect action> request is re-sent with the HandoffData of the conversation as it ends now."""
    flows = shutil.copytree(FLOWS, tmp_path / "flows")
    text = (flows / "assistant.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "resolved: {description: The caller's question is answered and they have nothing else.}",
        "done: {description: The caller's question is answered and they have nothing else.}",
    )
    (flows / "assistant.yaml").write_text(text.replace("routes: {resolved: goodbye,", "routes: {done: goodbye,"),
                                          encoding="utf-8")  # fmt: skip
    result = replay(AGENT_CALL, replay_target, flows_dir=flows)
    report = result.report()
    assert "  -ends on resolved {}" in report
    assert "  +ends on error {}" in report  # the model's end_resolved is no function any more: it apologises
    action = next(s for s in result.steps if s.method == "POST" and s.url.endswith("/voice/assistant/assistant"))
    assert "Connecting you to a person." in action.actual  # error -> operator in the flow
