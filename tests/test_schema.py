"""ivr/core/loader/flow.schema.json, the flow language for editors, kept in step with the loader it describes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from bad_flows import BAD, errors_of

from ivr.core.loader import flow_files, load_flow, load_flow_text, load_flows, read_flow
from ivr.core.loader.source import Reader, compose, core_scalar
from ivr.errors import FlowError, FlowLoadError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "ivr" / "core" / "loader" / "flow.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
DOCS = ROOT / "docs" / "flows.md"
SCHEDULES = Path(__file__).resolve().parent / "flows" / "schedules"

# Every entry of tests/flows/bad is in exactly one of these lists.
# Shape mistakes (a wrong key, type, range or name; a missing key): the loader and the schema refuse
# them. Each with where the schema says so (jsonschema reports a key refused by `false` at its mapping).
STRUCTURAL = {
    "bad_state_name.yaml": {"states"},
    "dedented_hangup.yaml": {"states", "states/hangup"},
    "empty.yaml": {""},
    "hangup_yes.yaml": {"states/bye/hangup"},
    "missing_start.yaml": {""},
    "number_is_text.yaml": {"states/menu/gather"},
    "on_max_without_gather.yaml": {"states/sales"},
    "split_with_next.yaml": {"states/greeting"},
    "text_is_mapping.yaml": {"states/welcome/next"},
    "three_mistakes.yaml": {"states/menu/gather", "states/billing/hangup"},
    "two_actions.yaml": {"states/welcome"},
    "unknown_key.yaml": {"states/welcome"},
}
# The loader's alone, the schema accepts them: the graph (targets, outcomes, loops, sizes, reject's
# place) and values a schema cannot judge (templates, time zones, Say length in bytes per voice).
LOADER_ONLY = [
    "bad_timezone.yaml",
    "chain_over_64k.yaml",
    "dial_route_not_outcome.yaml",
    "dial_without_next.yaml",
    "gather_without_routes.yaml",
    "hash_route_default_finish.yaml",
    "input_less_cycle.yaml",
    "record_without_next.yaml",
    "redirect_loop.yaml",
    "reject_after_menu.yaml",
    "reject_reached_from_menu.yaml",
    "reject_with_prompt.yaml",
    "say_too_long_basic.yaml",
    "say_too_long_polly.yaml",
    "split_shares_not_100.yaml",  # a sum is beyond a schema
    "split_unknown_target.yaml",
    "template_attr_filter.yaml",
    "template_private.yaml",
    "template_syntax.yaml",
    "unknown_default_on_max.yaml",
    "unknown_flow",  # a directory: each file is fine alone, the redirects between them are not
    "unknown_handler_on_max.yaml",
    "unknown_start.yaml",
    "unknown_target_next.yaml",
    "unknown_target_on_max.yaml",
    "unknown_target_route.yaml",
    "unknown_target_when.yaml",
    "waits_for_nothing.yaml",
    "when_without_next.yaml",
]
# YAML that never becomes data for a schema: syntax errors, duplicate keys, keys that are not text.
NOT_DATA = [
    "duplicate_key.yaml",
    "non_scalar_key.yaml",
    "yaml_dedented_key.yaml",
    "yaml_syntax.yaml",
    "yaml_tab_after_text.yaml",
    "yaml_tab_before_key.yaml",
    "yaml_unclosed_quote.yaml",
]

# tests/flows/schedules/bad holds shared schedule files; their `schedules:` are checked inside a flow.
SCHEDULE_STRUCTURAL = [
    "bad_day.yaml",
    "bad_name.yaml",
    "bad_special_date.yaml",
    "closed_with_spans.yaml",
    "holiday_twice.yaml",
    "hour_25.yaml",
    "missing_timezone.yaml",
    "nine_to_five.yaml",
    "starts_at_24.yaml",
    "three_mistakes.yaml",
    "unknown_key.yaml",
]
SCHEDULE_LOADER_ONLY = [
    "bad_holiday.yaml",  # 2026-02-30 has the date's shape
    "bad_timezone.yaml",
    "date_closed_and_special.yaml",
    "day_twice.yaml",
    "empty_span.yaml",
    "overlap.yaml",
    "wraps_midnight.yaml",
]
SCHEDULE_FILE_ONLY = ["wrong_top_key.yaml"]  # about the shared file itself, not a flow's schedules

A_FLOW = "start: s\nstates:\n  t: {hangup: true}\n"


class NotData(ValueError):
    """The YAML is not plain data: the loader's mapping rules refused a key."""


def plain(node: yaml.Node | None):
    """Nodes -> the data a YAML 1.2 parser gives a schema: keys as written, scalars by the core schema."""
    if isinstance(node, yaml.MappingNode):
        reader = Reader("<schema>")
        items = reader.mapping(node, "")  # merges `<<`, and refuses duplicate or non-text keys
        if reader.errors:
            raise NotData(reader.errors[0].message)
        return {key: plain(value) for key, (_, value) in items.items()}
    if isinstance(node, yaml.SequenceNode):
        return [plain(item) for item in node.value]
    return None if node is None else core_scalar(node)


def data_of(text: str):
    return plain(compose(text, "<schema>"))


def schema_errors(text: str) -> list[str]:
    """What the schema says about a flow's text, one line per problem."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(data_of(text))]


def reads_cleanly(text: str) -> bool:
    """Whether the loader's structural reading (no graph checks) finds nothing wrong."""
    flow, errors = read_flow(text, "t.yaml", "t")
    return flow is not None and not errors


# -- the schema itself ---------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] and SCHEMA["title"]


def _objects(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key not in ("examples", "const", "enum"):
                yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{path}/{i}")


def test_every_object_in_the_schema_is_closed():
    """Strict: an object schema lists its keys and refuses any other."""
    open_ = [p for p, s in _objects(SCHEMA) if "properties" in s and s.get("additionalProperties") is not False]
    # dependentSchemas and if/else only forbid or require keys of an object that is closed elsewhere
    assert [p for p in open_ if "/dependentSchemas/" not in p and "/else" not in p and "/if" not in p] == []


def test_schema_examples_are_valid_where_they_stand():
    """Each examples list shows values the schema around it accepts (hover text must not lie)."""
    for path, sub in _objects(SCHEMA):
        for example in sub.get("examples", ()):
            # The subschema alone, with the root's $defs reachable for its $refs.
            errors = list(jsonschema.Draft202012Validator({**sub, "$defs": SCHEMA["$defs"]}).iter_errors(example))
            assert not errors, f"{path}: {example!r}: {errors[0].message}"


# -- good flows ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", flow_files(ROOT / "flows"), ids=lambda p: p.name)
def test_shipped_flow_is_accepted_by_loader_and_schema(path):
    load_flow(path)
    assert schema_errors(path.read_text(encoding="utf-8")) == []


def _doc_examples() -> list[tuple[str, str]]:
    blocks = re.findall(r"```yaml\n(# flows/(\S+)\n.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    return [(name, text) for text, name in blocks if not name.startswith("catalogs/")]


def _doc_catalogs() -> dict[str, str]:
    """The catalog files the docs show (`# flows/catalogs/NAME.LANG.yaml`), by file name."""
    blocks = re.findall(r"```yaml\n(# flows/catalogs/(\S+)\n.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    return {name: text for text, name in blocks}


@pytest.mark.parametrize(("name", "text"), _doc_examples(), ids=[n for n, _ in _doc_examples()])
def test_documented_flow_is_accepted_by_loader_and_schema(name, text, tmp_path):
    for file, catalog in _doc_catalogs().items():  # a flow in several languages reads the catalogs shown beside it
        (tmp_path / file).write_text(catalog, encoding="utf-8")
    load_flow_text(text, name, Path(name).stem, catalogs=tmp_path)
    assert schema_errors(text) == []


def test_good_test_flows_are_accepted_by_the_schema():
    for line in ("business/line.yaml", "check/outbound_and_texts.yaml"):  # the latter: sms:, answered_by:, on_message
        line = Path(__file__).resolve().parent / "flows" / line
        load_flow(line)
        assert schema_errors(line.read_text(encoding="utf-8")) == [], line
    shared = A_FLOW + (SCHEDULES / "shared.yaml").read_text(encoding="utf-8")
    assert reads_cleanly(shared)
    assert schema_errors(shared) == []


# -- the golden bad flows ------------------------------------------------------------------------


def test_every_bad_fixture_is_classified_once():
    lists = [*STRUCTURAL, *LOADER_ONLY, *NOT_DATA]
    assert len(lists) == len(set(lists)), "a fixture is in two lists"
    assert sorted(p.name for p in BAD.iterdir()) == sorted(lists), "classify new fixtures in test_schema.py"
    schedules = SCHEDULE_STRUCTURAL + SCHEDULE_LOADER_ONLY + SCHEDULE_FILE_ONLY
    assert len(schedules) == len(set(schedules))
    assert sorted(p.name for p in (SCHEDULES / "bad").iterdir()) == sorted(schedules)


@pytest.mark.parametrize("name", sorted(STRUCTURAL))
def test_structural_mistake_is_refused_by_loader_and_schema(name):
    assert errors_of(name)
    data = data_of((BAD / name).read_text(encoding="utf-8"))
    assert {"/".join(map(str, e.absolute_path)) for e in VALIDATOR.iter_errors(data)} == STRUCTURAL[name]


@pytest.mark.parametrize("name", LOADER_ONLY)
def test_graph_or_value_mistake_is_the_loaders_alone(name):
    """The schema accepts it (else move it to STRUCTURAL); the loader refuses it."""
    path = BAD / name
    if path.is_dir():
        with pytest.raises(FlowLoadError):
            load_flows(path)
        texts = [p.read_text(encoding="utf-8") for p in flow_files(path)]
    else:
        assert errors_of(name)
        texts = [path.read_text(encoding="utf-8")]
    for text in texts:
        assert schema_errors(text) == []


@pytest.mark.parametrize("name", NOT_DATA)
def test_yaml_that_is_not_data_is_refused_before_any_schema(name):
    assert errors_of(name)
    with pytest.raises((NotData, FlowError)):  # FlowError: the YAML does not even compose
        data_of((BAD / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", SCHEDULE_STRUCTURAL)
def test_structural_schedule_mistake_is_refused_by_loader_and_schema(name):
    text = A_FLOW + (SCHEDULES / "bad" / name).read_text(encoding="utf-8")
    assert not reads_cleanly(text)
    assert schema_errors(text) != []


@pytest.mark.parametrize("name", SCHEDULE_LOADER_ONLY)
def test_schedule_mistake_a_schema_cannot_see_is_the_loaders_alone(name):
    text = A_FLOW + (SCHEDULES / "bad" / name).read_text(encoding="utf-8")
    assert not reads_cleanly(text)
    assert schema_errors(text) == []


# -- one state at a time: the loader's reading and the schema agree ------------------------------

# An agent state, completed by each of its cases below.
_AGENT = "agent: {instructions: 'Help {{ name }}.', ends: {done: {description: Done.}}"
# The state `s` of a flow (flow-style mapping contents); True when the loader reads it cleanly.
STATES = [
    ("gather: true, routes: {1: t}", True),
    ("gather: {}, routes: {yes: t, 01: t, '*': {to: t, synonyms: [star, 5]}}", True),
    ("gather: false", False),
    ("gather: yes", False),
    ("gather: [dtmf]", False),
    ("gather: {num_digits: 99, timeout: 60, min_confidence: 1, speech_timeout: auto, finish_on_key: ''}", True),
    ("gather: {num_digits: 0}", False),
    ("gather: {timeout: 61}", False),
    ("gather: {timeout: '5'}", False),
    ("gather: {timeout: 5.5}", False),
    ("gather: {min_confidence: .5, speech_timeout: 3, input: speech}", True),
    ("gather: {min_confidence: 1.5}", False),
    ("gather: {speech_timeout: soon}", False),
    ("gather: {speech_timeout: -1}", False),
    ("gather: {input: [dtmf, speech]}", True),
    ("gather: {input: []}", True),
    ("gather: {input: voice}", False),
    ("gather: {finish_on_key: 5}", True),
    ("gather: {finish_on_key: }", True),
    ("gather: {finish_on_key: ab}", False),
    ("gather: {save_as: account, length: [4, 8], pattern: '[0-9]+'}", True),
    ("gather: {save_as: account, length: 6}", True),
    ("gather: {length: 6}", False),
    ("gather: {pattern: x}", False),
    ("gather: {save_as: call}", False),
    ("gather: {save_as: 1a}", False),
    ("gather: {save_as: x, length: [1, 2, 3]}", False),
    ("gather: {save_as: x, length: [0, 5]}", False),
    ("gather: {hints: 'a, b', language: en-US, speech_model: phone_call}", True),
    ("gather: {num_digit: 1}", False),
    ("gather: {speech: {model: deepgram_nova-3, profanity_filter: false}}, routes: {1: t}", True),
    ("gather: {speech: {model: phone_call, enhanced: true}}, routes: {1: t}", True),
    ("gather: {speech: {model: googlev2_telephony, enhanced: true}}, routes: {1: t}", False),
    ("gather: {speech: {model: googlev2_telephony, enhanced: false}}, routes: {1: t}", True),
    ("gather: {speech: {model: phone_cal}}", False),
    ("gather: {speech: {profanity_filter: no}}", False),
    ("gather: {speech: {modle: phone_call}}", False),
    ("gather: {speech_model: phone_cal}", False),
    ("gather: {speech: {model: phone_call}, speech_model: phone_call}", False),
    ("gather: {input: [dtmf, speech], barge_in: false, action_on_empty_result: true}, routes: {1: t}", True),
    ("gather: {barge_in: no}", False),
    ("prompts: [{say: Legal., barge_in: false}, {pause: 1}], gather: true, routes: {1: t}", True),
    ("prompts: [{say: a, play: b, barge_in: false}], gather: true", False),
    ("prompts: [{barge_in: false}], gather: true", False),
    ("prompts: [{say: a, barge_in: maybe}], gather: true", False),
    ("gather: true, reprompt: Again., no_input: {max: 10, on_max: t}, no_match: [{say: Sorry.}], on_max: t", True),
    ("gather: true, reprompt: {text: Again., loop: 2}, no_input: {prompts: [{pause: 1}]}", True),
    ("gather: true, reprompt: [{say: Again.}], no_match: {say: a, prompts: []}", False),
    ("gather: true, no_input: {max: 0}", False),
    ("gather: true, no_input: {max: 11}", False),
    ("gather: true, no_input: {wait: 1}", False),
    ("gather: true, no_input: ", False),
    ("gather: true, routes: {1: {synonyms: [a]}}", False),
    ("gather: true, routes: {1: [t]}", False),
    ("gather: true, routes: {1: {to: t, also: u}}", False),
    ("record: true", True),
    ("record: false", False),
    ("record: {timeout: 0, max_length: 14400, finish_on_key: '#*', trim: false, play_beep: true}", True),
    ("record: {timeout: 601}", False),
    ("record: {max_length: 0}", False),
    ("record: {finish_on_key: a}", False),
    ("record: {finish_on_key: 12}", True),
    ("record: {transcribe: yes}", False),
    ("record: true, on_message: deliver", True),
    ("on_message: deliver, next: t", False),
    ("dial: '+15005550006'", True),
    ("dial: 15005550006", True),
    ("dial: '{{ vars.number }}'", True),
    ("dial: [a, b]", False),
    ("dial: {number: [a, b], client: c, sip: 'sip:x@y', record: true, timeout: 5, time_limit: 14400}", True),
    ("dial: {number: a, hangup_on_star: false, caller_id: '{{ call.To }}', record: record-from-ringing-dual}", True),
    ("dial: {conference: room}", True),
    ("dial: {queue: support}", True),
    ("dial: {timeout: 20}", False),
    ("dial: {conference: [a, b]}", False),
    ("dial: {conference: a, number: b}", False),
    ("dial: {queue: a, conference: b}", False),
    ("dial: {number: x, record: maybe}", False),
    ("dial: {number: x, timeout: 4}", False),
    ("dial: {number: x, time_limit: 14401}", False),
    ("dial: {number: x, screen: Press 1 to accept.}", True),
    ("dial: {number: x, screen: {say: Hi, key: '#', timeout: 60}}", True),
    ("dial: {number: x, screen: {prompts: [{say: Hi}], key: 5}}", True),
    ("dial: {conference: a, screen: Hi}", False),
    ("dial: {number: x, screen: {key: 1}}", False),
    ("dial: {number: x, screen: {prompts: []}}", False),
    ("dial: {number: x, screen: {say: Hi, key: any, on_timeout: Too late., accepted: [{say: Hi}, {pause: 1}]}}", True),
    ("dial: {number: x, screen: {say: Hi, key: anything}}", False),
    ("dial: {number: x, screen: {say: Hi, on_timeout: {say: Bye}}}", False),
    ("dial: {number: x, screen: {say: Hi, accepted: ''}}", False),
    ("dial: {number: x, screen: {say: Hi, key: 10}}", False),
    ("dial: {number: x, screen: {say: Hi, timeout: 0}}", False),
    ("dial: {number: x, screen: [{say: Hi}]}", False),
    ("dial: x, on_max: t", False),
    ("dial: x, no_input: Hi", False),
    ("enqueue: support", True),
    ("enqueue: {name: support, wait_url: 'https://example.com/hold'}", True),
    ("enqueue: {wait_url: 'https://example.com/hold'}", False),
    ("enqueue: [support]", False),
    ("redirect: {state: menu}", True),
    ("redirect: {flow: main, state: menu}", True),
    ("redirect: {url: 'https://example.com/twiml'}", True),
    ("redirect: {}", False),
    ("redirect: {url: x, state: y}", False),
    ("redirect: {flow: a b}", False),
    ("redirect: menu", False),
    ("hangup: true", True),
    ("hangup: True", True),
    ("hangup: false", False),
    ("hangup: yes", False),
    ("hangup: true, reprompt: Hi", False),
    ("reject: busy", True),
    ("reject: rejected", True),
    ("reject: true", True),
    ("reject: no", False),
    ("reject: false", False),
    ("run: lookup, on_error: t, next: t", True),
    ("run: a b", False),
    ("run: {hook: a}", False),
    ("on_error: t, next: t", False),
    ("gather: true, hangup: true", False),
    ("record: true, dial: x", False),
    ("say: Hi, on_max: t, next: t", True),
    ("say: no, next: t", True),
    ("say: 5, next: t", True),
    ("say: '', next: t", False),
    ("say: , next: t", False),
    ("say: [Hi], next: t", True),
    ("say: [], next: t", False),
    ("say: [Your PIN is, {digits: '{{ pin }}'}, ., {break: 500ms}, {break: strong}], next: t", True),
    ("say: {text: [Hi, {emphasis: {text: there, level: strong}}], voice: Polly.Joanna}, next: t", True),
    ("say: [{prosody: {text: [Slowly, {break: 1s}], rate: slow, volume: +6dB}}], next: t", True),
    ("say: [{prosody: {text: Hi}}], next: t", False),
    ("say: [{prosody: {text: Hi, rate: quick}}], next: t", False),
    ("say: [{date: {text: '{{ due }}', format: mdy}}, {currency: $5}, {telephone: '+15551230000'}], next: t", True),
    ("say: [{date: {text: x, format: dmyy}}], next: t", False),
    (
        "say: [{sub: {text: W3C, alias: W three C}}, {phoneme: {text: tomato, ph: t@meItoU}}], next: t",
        True,
    ),
    ("say: [{sub: W3C}], next: t", False),
    ("say: [{brake: 1s}], next: t", False),
    ("say: [{break: 1s, digits: '1'}], next: t", False),
    ("say: [{break: loud}], next: t", False),
    ("say: [{paragraph: [{sentence: One.}, {sentence: Two.}]}, {spell: ABC}], next: t", True),
    ("say: {text: Hi, voice: Polly.Celine, language: fr-FR, loop: 100}, next: t", True),
    ("say: {text: Hi, voice: ''}, next: t", True),
    ("say: {text: Hi, language: ''}, next: t", False),
    ("say: {text: Hi, loop: 0}, next: t", False),
    ("say: {text: Hi, loop: 101}, next: t", False),
    ("say: {loop: 2}, next: t", False),
    ("say: {text: Hi, speed: 2}, next: t", False),
    ("play: 'https://example.com/a.mp3', next: t", True),
    ("play: {url: 'https://example.com/a.mp3', loop: 1}, next: t", True),
    ("play: {loop: 1}, next: t", False),
    ("pause: 600, next: t", True),
    ("pause: {}, next: t", True),
    ("pause: {length: 1}, next: t", True),
    ("pause: 0, next: t", False),
    ("pause: 601, next: t", False),
    ("pause: 1.5, next: t", False),
    ("pause: {length: 0}, next: t", False),
    ("pause: {seconds: 1}, next: t", False),
    ("prompts: [{say: Hi}, {pause: 1}, {play: 'https://example.com/a.mp3'}], next: t", True),
    ("prompts: [], next: t", True),
    ("prompts: [{say: Hi, pause: 1}], next: t", False),
    ("prompts: [{wait: 1}], next: t", False),
    ("prompts: [Hi], next: t", False),
    ("prompts: {say: Hi}, next: t", False),
    ("say: Hi, prompts: [{say: Ho}], next: t", False),
    ("set: {a: 1, b: null, c: true, d: '{{ call.From }}', e: 1.5, f: }, next: t", True),
    ("set: {call: 1}, next: t", False),
    ("set: {_a: 1}, next: t", False),
    ("set: {a: [1]}, next: t", False),
    ("set: {a: ''}, next: t", False),
    ("sensitive: false, next: t", True),
    ("sensitive: yes, next: t", False),
    ("description: Notes., next: t", True),
    ("description: {a: 1}, next: t", False),
    ("when: [{if: now.hour < 12, next: t}, {if: true, next: t}], next: t", True),
    ("when: [{if: x}], next: t", False),
    ("when: [{if: x, next: t, else: t}], next: t", False),
    ("when: {if: x, next: t}, next: t", False),
    ("split: {t: 90, u: 10}", True),
    ("say: Hi, set: {a: 1}, split: {t: 50, u: 50}", True),
    ("split: {t: 34, u: 33, v: 33}", True),
    ("split: {t: 100}", False),
    ("split: {t: 50}", False),
    ("split: {}", False),
    ("split: {t: 0, u: 100}", False),
    ("split: {t: '50', u: 50}", False),
    ("split: {t: 50.5, u: 49.5}", False),
    ("split: [t, u]", False),
    ("split: t", False),
    ("split: {a b: 50, u: 50}", False),
    ("split: {t: 50, u: 50}, next: t", False),
    ("split: {t: 50, u: 50}, when: [{if: x, next: t}]", False),
    ("split: {t: 50, u: 50}, gather: true, routes: {1: t}", False),
    ("split: {t: 50, u: 50}, hangup: true", False),
    ("split: {t: 50, u: 50}, run: lookup", False),
    ("http: {url: 'https://api.example.com/a/{{ x }}'}, routes: {ok: t, '404': t, 4xx: t, timeout: t, error: t}", True),
    ("http: {url: 'https://api.example.com', method: post, json: {a: [1, '{{ x }}']}, timeout: 0.5}, next: t", True),
    ("http: {url: 'http://127.0.0.1:5000/x', form: {a: b}, save: {b: 'a.b[0]', c: 'd'}, status: code}, next: t", True),
    ("http: {url: 'https://{{ host }}/a'}, next: t", False),
    ("http: {url: 'https://api.example.com/a?b=1'}, next: t", False),
    ("http: {url: 'ftp://api.example.com/a'}, next: t", False),
    ("http: {url: 'https://api.example.com/{{ secrets.X }}'}, next: t", False),
    ("http: {url: 'https://a.example.com', method: FETCH}, next: t", False),
    ("http: {url: 'https://a.example.com', timeout: 9}, next: t", False),
    ("http: {url: 'https://a.example.com', json: {}, form: {}}, next: t", False),
    ("http: {url: 'https://a.example.com', save: {x: 'a..b'}}, next: t", False),
    ("http: {url: 'https://a.example.com', save: {call: 'a'}}, next: t", False),
    ("http: {url: 'https://a.example.com', status: input}, next: t", False),
    ("http: {url: 'https://a.example.com', query: {a: }}, next: t", False),
    ("http: {url: 'https://a.example.com', agent: x}, next: t", False),
    ("http: {method: GET}, next: t", False),
    ("http: {url: 'https://a.example.com'}, routes: {found: t}, next: t", False),
    ("http: {url: 'https://a.example.com'}, routes: {error: t}, on_error: t, next: t", False),
    ("http: {url: 'https://a.example.com'}, on_error: t, next: t", True),
    ("http: {url: 'https://a.example.com'}, run: x, next: t", False),
    ("http: {url: 'https://a.example.com'}, gather: true, next: t", False),
    ("run: lookup, filler: {say: One moment.}, next: t", True),
    ("run: lookup, filler: {play: 'https://example.com/hold.mp3', after: 0.5, deadline: 60}, next: t", True),
    ("http: {url: 'https://a.example.com'}, filler: {say: {text: Hold on., loop: 2}, deadline: 120}, next: t", True),
    ("filler: {say: Hi}, next: t", False),
    ("gather: true, routes: {1: t}, filler: {say: Hi}", False),
    ("run: lookup, filler: {say: Hi, play: 'https://example.com/a.mp3'}, next: t", False),
    ("run: lookup, filler: {after: 1}, next: t", False),
    ("run: lookup, filler: {say: Hi, deadline: 121}, next: t", False),
    ("run: lookup, filler: {say: Hi, after: 6}, next: t", False),
    ("run: lookup, filler: {say: Hi, deadline: '30'}, next: t", False),
    ("run: lookup, filler: {say: Hi, wait: 3}, next: t", False),
    ("run: lookup, filler: Hi, next: t", False),
    ("next: 404", True),
    ("next: a b", False),
    ("next: ''", False),
    ("next: [t]", False),
    ("subflow: pin, routes: {verified: t}, next: t", True),
    ("subflow: {flow: pin, inputs: {account: '{{ account }}', tries: 2}, save_as: pin}, next: t", True),
    ("subflow: {inputs: {account: '1'}}, next: t", False),
    ("subflow: {flow: pin, inputs: {call: '1'}}, next: t", False),
    ("subflow: {flow: pin, save_as: 1x}, next: t", False),
    ("subflow: {flow: pin, retries: 2}, next: t", False),
    ("subflow: [pin]", False),
    ("subflow: pin, hangup: true", False),
    ("subflow: pin, no_input: Sorry., next: t", False),
    ("return: verified", True),
    ("return: {outcome: verified, values: {account: '{{ account }}', ok: true}}", True),
    ("return: {values: {ok: true}}", False),
    ("return: {outcome: a b}", False),
    ("return: verified, run: h", False),
    # agent: (docs/agents.md)
    (_AGENT + "}, routes: {done: t, limit: t, error: t}", True),
    (_AGENT + "}, next: t", True),
    (_AGENT + ", welcome: Hi., keys: {'0': done}, limits: {turns: 5, seconds: 60, silence: 5}, model: m}", True),
    (_AGENT + ", tools: {f: {description: F., parameters: {n: {type: integer, minimum: 1}}}}}, next: t", True),
    (_AGENT + ", tools: {f: {description: F., parameters: {n: {type: float}}}}}, next: t", False),
    (_AGENT + ", tools: {f: {parameters: {}}}}, next: t", False),
    (_AGENT + ", tools: {end_f: {description: F.}}}, next: t", False),
    (_AGENT + ", relay: {tts_provider: Google, voice: en-US-Journey-O, interruptible: speech}}, next: t", True),
    (_AGENT + ", relay: {voices: x}}, next: t", False),
    (_AGENT + ", relay: {url: 'wss://x.example.com'}}, next: t", False),
    (_AGENT + ", relay: {interruptible: sometimes}}, next: t", False),
    (_AGENT + ", limits: {turns: 0}}, next: t", False),
    (_AGENT + ", save_as: 1x}, next: t", False),
    (_AGENT + ", colour: red}, next: t", False),
    ("agent: {ends: {done: {description: Done.}}}, next: t", False),
    ("agent: {instructions: Help., ends: {limit: {description: Done.}}}, next: t", False),
    ("agent: {instructions: Help., ends: {}}, next: t", False),
    (_AGENT + "}, no_input: Sorry., next: t", False),
    (_AGENT + "}, run: h, next: t", False),
]


@pytest.mark.parametrize(("state", "ok"), STATES, ids=[s for s, _ in STATES])
def test_loader_and_schema_agree_on_a_state(state, ok):
    text = f"start: s\nstates:\n  s: {{{state}}}\n  t: {{hangup: true}}\n"
    assert reads_cleanly(text) is ok
    assert (schema_errors(text) == []) is ok, schema_errors(text)


# The whole file, around one state that is fine.
FILES = [
    ("title: Acme\ndescription: Notes.\nerror_state: t", True),
    ("defaults: {voice: Polly.Amy, language: en-GB, timezone: Europe/London, on_max: t, on_message: h}", True),
    ("defaults: {no_input: Sorry., no_match: {say: No., max: 2}, routes: {'0': t, '*': repeat, '9': back}}", True),
    ("defaults: {no_input: [{say: Sorry.}, {pause: 1}]}", True),
    ("defaults: {timezone: 5}", False),
    ("defaults: {speech: {model: phone_call, enhanced: true, profanity_filter: false}}", True),
    ("defaults: {action_on_empty_result: true}", True),
    ("defaults: {speech: {model: whisper}}", False),
    ("defaults: {speech: phone_call}", False),
    ("defaults: {action_on_empty_result: 1}", False),
    ("defaults: {voice: }", False),
    ("defaults: {retries: 3}", False),
    ("defaults: [voice]", False),
    ("title: [a]", False),
    ("error_state: a b", False),
    ("extra: 1", False),
    ("states2: {}", False),
    ("schedules: {office: {timezone: UTC, hours: {Mon - Fri: ' 09:00 - 17:00 ', weekend: CLOSED}}}", True),
    ("schedules: {office: {timezone: UTC, hours: {sat-mon: '00:00-24:00'}, closed: ['2026-12-25']}}", True),
    ("defaults: {timezone: UTC}\nschedules: {office: {hours: {daily: '09:00-17:00'}}}", True),
    ("schedules: {office: {hours: {daily: '09:00-17:00'}}}", False),
    ("schedules: {office: {timezone: UTC, special: {'2026-12-24': closed, '2026-12-31': ['09:00-12:00']}}}", True),
    ("schedules: {office: {timezone: UTC, hours: {mon: []}}}", False),
    ("schedules: {office: {timezone: UTC, hours: {mon: 9}}}", False),
    ("schedules: {office: {timezone: UTC, hours: {mon-tue-wed: closed}}}", False),
    ("schedules: {office: {timezone: UTC, closed: 2026-12-25}}", False),
    ("schedules: {office: {timezone: UTC, closed: ['2026-13-01']}}", False),
    ("schedules: [office]", False),
    ("inputs: {account: required, tries: {default: 3, description: Tries left.}}\nreturns: [done]", True),
    ("returns: [verified, locked]", True),
    ("inputs: {account: optional}\nreturns: [done]", False),
    ("inputs: {account: {description: No default.}}\nreturns: [done]", False),
    ("inputs: {vars: required}\nreturns: [done]", False),
    ("inputs: [account]\nreturns: [done]", False),
    ("returns: done", False),
    ("returns: []", False),
    ("returns: [a b]", False),
]


@pytest.mark.parametrize(("top", "ok"), FILES, ids=[t for t, _ in FILES])
def test_loader_and_schema_agree_on_a_file(top, ok):
    text = f"{top}\nstart: t\nstates:\n  t: {{hangup: true}}\n"
    assert reads_cleanly(text) is ok
    assert (schema_errors(text) == []) is ok, schema_errors(text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("start: t\nstates:\n  t: {hangup: true}\n  repeat: {hangup: true}\n", False),
        ("start: t\nstates:\n  t: {hangup: true}\n  hangup: {say: Bye., hangup: true}\n", False),
        ("start: t\nstates:\n  t: {say: Hi, gather: true, routes: {'1': t}, on_max: hangup}\n", True),
        ("start: t\nstates:\n  t: {hangup: true}\n  main menu: {hangup: true}\n", False),
        ("start: t\nstates: {}\n", False),
        ("start: t\nstates:\n", False),
        ("states:\n  t: {hangup: true}\n", False),
        ("start: t\nstates:\n  t: {hangup: true}\n  2: {hangup: true}\n", True),
        ("start: t\nstates:\n  t: &bye {say: Bye., hangup: true}\n  u: {<<: *bye, say: Later.}\n", True),
        ("start: t\nstates:\n  t: &bye {hangup: true}\n  u: {<<: *bye, sya: Later.}\n", False),
    ],
)
def test_loader_and_schema_agree_on_states(text, ok):
    assert reads_cleanly(text) is ok
    assert (schema_errors(text) == []) is ok, schema_errors(text)
