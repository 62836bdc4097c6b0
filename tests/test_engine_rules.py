"""The engine's rules, on small flows: speech matching, retries, variables, templates, sensitive input."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest
from conftest import check_twiml, phone_on

from ivr.core.engine import Engine, new_session
from ivr.core.loader import load_flow_text
from ivr.errors import FlowLoadError

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


class Walk:
    """Drive one flow's engine directly, as the web adapter would, keeping the session."""

    def __init__(self, yaml_text: str) -> None:
        self.engine = Engine(load_flow_text(yaml_text, "t.yaml", "t"))
        self.session = new_session("t")
        self.step = self.engine.start(self.session, {"CallSid": "CA1", "From": "+15551230000"}, NOW)

    def send(self, params: dict | None = None, event: str | None = None):
        self.step = self.engine.resume(self.step.state, self.session, params or {}, NOW, event)
        return self

    @property
    def heard(self) -> list[str]:
        check_twiml(self.step.twiml.encode())
        return [el.text for el in ElementTree.fromstring(self.step.twiml).iter("Say")]

    @property
    def state(self) -> str:
        return self.step.state


MENU = """
start: menu
states:
  menu:
    say: Press 1 or say sales.
    gather: {input: [dtmf, speech]%s}
    routes:
      "1": {to: sales, synonyms: [sales, buying]}
      "12": twelve
%s
  sales: {say: Sales., hangup: true}
  twelve: {say: Twelve., hangup: true}
  other: {say: Other., hangup: true}
"""


@pytest.mark.parametrize("speech", ["sales", "I'm buying", "one"])
def test_a_key_routes_synonyms_are_what_a_caller_may_say_instead(speech):
    walk = Walk(MENU % ("", ""))
    assert walk.send({"SpeechResult": speech, "Confidence": "0.0"}).heard == ["Sales."]


def test_a_key_routes_synonyms_become_gather_hints():
    walk = Walk(MENU % ("", ""))
    gather = ElementTree.fromstring(walk.step.twiml).find("Gather")
    assert gather.get("hints") == "sales, buying"


@pytest.mark.parametrize("speech", ["12", "1 2", "twelve please 12"])
def test_spoken_digits_reach_a_multi_digit_key(speech):
    walk = Walk(MENU % ("", ""))
    walk.send({"SpeechResult": speech})
    assert walk.state == ("twelve" if speech != "twelve please 12" else "menu")


def test_low_confidence_speech_is_no_match_without_next():
    walk = Walk(MENU % (", min_confidence: 0.5", ""))
    assert walk.send({"SpeechResult": "sales", "Confidence": "0.2"}).heard[0] == "Sorry, that's not an option."
    assert walk.send({"SpeechResult": "sales", "Confidence": "0.9"}).heard == ["Sales."]


def test_low_confidence_speech_takes_next_like_any_unmatched_input():
    walk = Walk(MENU % (", min_confidence: 0.5", "    next: other"))
    assert walk.send({"SpeechResult": "sales", "Confidence": "0.2"}).heard == ["Other."]


RETRIES = """
start: menu
states:
  menu:
    say: Menu.
    gather: {}
    routes: {"1": menu, "2": done}
    no_input: {say: Nothing?, max: 2}
  done: {say: Done., hangup: true}
"""


def test_a_route_back_to_the_same_menu_keeps_its_retry_count():
    walk = Walk(RETRIES)
    walk.send(event="no_input")
    walk.send({"Digits": "1"})  # the menu again, by its own route
    walk.send(event="no_input")
    assert walk.heard == ["Sorry, we could not get your answer. Please call again later. Goodbye."]


VARIABLES = """
start: count
states:
  count:
    set: {n: "{{ input.digits | default(3, true) }}", account: "{{ '0123' }}", phone: "{{ call.From }}"}
    when:
      - if: n > 2
        next: many
    next: few
  many: {say: "Many: {{ n + 1 }}. Account {{ account }}.", hangup: true}
  few: {say: Few., hangup: true}
"""


def test_a_plain_number_set_by_a_template_compares_as_a_number():
    walk = Walk(VARIABLES)
    assert walk.heard == ["Many: 4. Account 0123."]
    assert walk.session["vars"] == {"n": 3, "account": "0123", "phone": "+15551230000"}


CHAIN = """
start: first
states:
  first:
    say: "Before: {{ vars.greeting | default('none') }}. State {{ state }}."
    next: second
  second:
    set: {greeting: hello}
    say: "After: {{ greeting }}. State {{ state }}."
    hangup: true
"""


def test_each_state_of_a_chain_is_rendered_with_the_variables_of_its_moment():
    assert Walk(CHAIN).heard == ["Before: none. State first.", "After: hello. State second."]


PIN = """
start: pin
states:
  pin:
    say: Enter your PIN.
    gather: {num_digits: 4}
    sensitive: true
    next: confirm
  confirm:
    say: "You entered {{ input.digits | list | join(' ') }}."
    hangup: true
"""


def test_sensitive_input_is_read_back_in_the_request_but_never_kept_in_the_session():
    walk = Walk(PIN)
    walk.send({"Digits": "4321"})
    assert walk.heard == ["You entered 4 3 2 1."]
    assert "4321" not in str(walk.session)
    assert walk.session["input"]["redacted"] is True


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("say: {text: Hi, loop: 0}", "loop: 0 repeats until the caller hangs up; give a count from 1 to 100"),
        ('pause: "2"', "expected a whole number, got '2' (quoted, it is text: remove the quotes)"),
    ],
)
def test_loader_messages_say_what_to_do(snippet, message):
    with pytest.raises(FlowLoadError) as info:
        load_flow_text(f"start: a\nstates:\n  a:\n    {snippet}\n    hangup: true\n", "t.yaml", "t")
    assert [e.message for e in info.value.errors] == [message]


SELF_ON_MAX = """
start: menu
states:
  menu:
    say: Menu.
    gather: {}
    routes: {"1": done}
    no_input: {say: Nothing?, max: 2}
    on_max: menu
  done: {say: Done., hangup: true}
"""


def test_running_out_of_retries_into_the_same_menu_starts_its_counts_over():
    walk = Walk(SELF_ON_MAX)
    walk.send(event="no_input")
    assert walk.heard[0] == "Nothing?"
    walk.send(event="no_input")  # max reached: on_max is the menu itself, entered afresh
    assert walk.heard == ["Menu."]
    walk.send(event="no_input")
    assert walk.heard[0] == "Nothing?"


def test_a_number_that_would_not_read_back_as_written_stays_text():
    walk = Walk(VARIABLES.replace("{{ '0123' }}", "{{ '2.50' }}").replace("Account {{ account }}", "{{ account }}"))
    assert walk.session["vars"]["account"] == "2.50"


BROKEN_CONDITION = """
start: check
states:
  check:
    when:
      - if: now.hours > 9
        next: done
    next: done
  done: {say: Done., hangup: true}
"""


def test_a_condition_that_fails_at_run_time_names_its_place_in_the_file():
    from ivr.errors import FlowRuntimeError

    with pytest.raises(FlowRuntimeError) as info:
        Walk(BROKEN_CONDITION)
    assert str(info.value).startswith("t.yaml:6:13: if 'now.hours > 9': condition failed: UndefinedError")


def test_a_webhook_whose_condition_fails_logs_one_line_and_answers_the_apology(make_app, tmp_path, caplog):

    (tmp_path / "t.yaml").write_text(BROKEN_CONDITION)
    call = phone_on(make_app({"IVR_FLOWS_DIR": str(tmp_path)})).dial("t", from_="+1555", to="+1666")
    assert call.heard == ["We're sorry, something went wrong. Please call again later. Goodbye."]
    [line] = [r for r in caplog.records if r.name == "ivr.web" and r.levelname == "ERROR"]
    assert "t.yaml:6:13: if 'now.hours > 9': condition failed" in line.getMessage()
    assert line.exc_info is None  # a flow mistake, not a crash: no traceback


def test_text_with_a_colon_gets_a_hint_to_quote_it():
    with pytest.raises(FlowLoadError) as info:
        load_flow_text(
            "start: a\nstates:\n  a:\n    say: Say small: medium or large.\n    hangup: true\n", "t.yaml", "t"
        )
    assert info.value.errors[0].message.endswith("text with ': ' in it must be quoted")
