"""A flow in several languages: catalogs, the call's language (number, entry URL, a state, a hook), the
views rendered per language, what the loader refuses and what check warns of (ivr.core.languages,
ivr.core.loader.catalogs)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FLOWS, caller_params, copy_flows, document, phone_on, said

from ivr.cli import cli
from ivr.core.engine import Engine, new_session
from ivr.core.languages import offered
from ivr.core.lint import run_checks
from ivr.core.loader import load_flow
from ivr.errors import FlowLoadError
from ivr.web.services import services

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SPANISH_NUMBER = "+15005550010"

FLOW = """\
defaults:
  language: en-US
  languages:
    en-US: {voice: Polly.Joanna-Neural}
    es-MX: {voice: Polly.Mia-Neural, hints: "cuenta, saldo", numbers: ["+15005550010"]}
start: welcome
states:
  welcome:
    msg: welcome
    next: menu
  menu:
    msg: menu
    gather: {input: [dtmf, speech]}
    routes:
      "1": {to: done, synonyms: {en-US: [balance], es-MX: [saldo]}}
      "2": spanish
      "3": lookup
  spanish:
    language: es-MX
    next: menu
  lookup:
    run: choose_language
    routes: {found: menu}
    next: menu
  done:
    msg: done
    hangup: true
"""
EN = """\
welcome: Welcome.
menu: Press 1 for your balance.
done: Goodbye.
"""
ES = """\
welcome: Bienvenido.
menu: Oprima 1 para su saldo.
done: Adiós.
no_input: No escuché nada.
no_match: Esa no es una opción.
goodbye: Adiós por ahora.
apology: Lo sentimos.
"""


def write(directory: Path, flow: str = FLOW, en: str | None = EN, es: str | None = ES, name: str = "shop") -> Path:
    (directory / f"{name}.yaml").write_text(flow, encoding="utf-8")
    catalogs = directory / "catalogs"
    catalogs.mkdir(exist_ok=True)
    for tag, text in (("en-US", en), ("es-MX", es)):
        if text is not None:
            (catalogs / f"{name}.{tag}.yaml").write_text(text, encoding="utf-8")
    return directory / f"{name}.yaml"


def checked(flows_dir: Path) -> list[str]:
    """What `check` says of every flow of the directory (its hook registered), as printed."""
    return [p.format() for p in run_checks(flows_dir=flows_dir, hooks=lambda directory: {"choose_language"}).problems]


def problems(path: Path) -> list[str]:
    with pytest.raises(FlowLoadError) as raised:
        load_flow(path)
    return [e.format() for e in raised.value.errors]


def start(engine: Engine, to: str = "+15559870000", language: str | None = None):
    return engine.start(new_session(engine.flow.id), {"CallSid": "CA1", "To": to, "From": "+15551230000"}, NOW,
                        language=language)  # fmt: skip


# -- the loader ---------------------------------------------------------------------------------


def test_a_flow_offers_its_languages_default_first_each_a_view(flows_dir):
    flow = load_flow(write(flows_dir))
    assert offered(flow) == ("en-US", "es-MX")
    assert flow.localized["en-US"] is flow
    spanish = flow.localized["es-MX"]
    assert [p.text.source for p in spanish.states["welcome"].prompts] == ["Bienvenido."]
    assert [p.text.source for p in flow.states["welcome"].prompts] == ["Welcome."]
    assert spanish.defaults.voice == "Polly.Mia-Neural" and spanish.defaults.language == "es-MX"
    assert [p.text.source for p in spanish.states["menu"].no_input.prompts] == ["No escuché nada."]
    assert spanish.states["menu"].routes[0].synonyms == ("saldo",)
    assert flow.states["menu"].routes[0].synonyms == ("balance",)


def test_defaults_language_chooses_the_default_among_the_offered(flows_dir):
    flow = load_flow(write(flows_dir, FLOW.replace("  language: en-US\n", "  language: es-MX\n")))
    assert offered(flow) == ("es-MX", "en-US")
    assert flow.defaults.language == "es-MX"


def test_a_message_missing_in_a_language_is_an_error_where_it_is_used(flows_dir):
    path = write(flows_dir, es=ES.replace("menu: Oprima 1 para su saldo.\n", ""))
    assert problems(path) == [
        f"{_shown(path)}:12:10: error: states.menu.msg: "
        f"'menu' is missing in es-MX ({_shown(flows_dir / 'catalogs' / 'shop.es-MX.yaml')})"
    ]


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def test_a_missing_catalog_file_is_one_error_naming_the_file_to_create(flows_dir):
    path = write(flows_dir, es=None)
    [problem] = problems(path)
    assert ":5:5: error: defaults.languages.es-MX: no catalog holds the prompts in es-MX: create" in problem
    assert problem.endswith("shop.es-MX.yaml")


def test_a_catalog_that_cannot_be_read_reports_only_its_own_mistakes(flows_dir):
    path = write(flows_dir, es="welcome: [unclosed\n" + ES)
    [problem] = problems(path)
    assert "shop.es-MX.yaml:" in problem and "YAML syntax" in problem
    broken = write(flows_dir, es=ES.replace("menu: Oprima 1 para su saldo.", "menu: {text: [Oprima, {brake: 1s}]}"))
    found = problems(broken)
    assert len(found) == 1 and "shop.es-MX.yaml:" in found[0] and "brake" in found[0], found


def test_a_missing_message_suggests_the_id_the_catalog_has(flows_dir):
    path = write(flows_dir, FLOW.replace("    msg: done\n", "    msg: don\n"))
    found = problems(path)
    assert any("states.done.msg: 'don' is missing in en-US" in p and "(did you mean 'done'?)" in p for p in found)


def test_the_engines_words_are_required_in_a_language_other_than_english(flows_dir):
    path = write(flows_dir, es=ES.replace("goodbye: Adiós por ahora.\n", ""))
    [problem] = problems(path)
    assert ":5:5: error: defaults.languages.es-MX:" in problem
    assert "has no 'goodbye' (the goodbye when a menu's retries run out; the built-in one is English)" in problem


def test_text_written_in_one_language_is_refused_in_a_flow_that_offers_several(flows_dir):
    path = write(flows_dir, FLOW.replace("    msg: welcome\n", "    say: Welcome.\n"))
    [problem] = problems(path)
    assert ":9:10: error: states.welcome.say: this text is in one language, and the flow offers en-US, es-MX" in problem


def test_a_text_with_its_own_language_is_spoken_as_written_in_every_view(flows_dir):
    flow_text = FLOW.replace("    msg: welcome\n", "    say: {text: Para español oprima 2., language: es-MX}\n")
    flow = load_flow(write(flows_dir, flow_text))
    for view in flow.localized.values():
        assert [p.text.source for p in view.states["welcome"].prompts] == ["Para español oprima 2."]


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (("    language: es-MX\n", "    language: es-MZ\n"), "states.spanish.language",
         "'es-MZ' is not offered (en-US, es-MX) (did you mean 'es-MX'?)"),
        (("  language: en-US\n", "  language: en-GB\n"), "defaults.language",
         "'en-GB' is not one of the languages the flow offers (en-US, es-MX) (did you mean 'en-US'?)"),
        (("    es-MX: {voice", "    ES-mx: {voice"), "defaults.languages.ES-mx",
         "write it es-MX: the language in small letters, a region in capitals"),
        (('numbers: ["+15005550010"]', 'numbers: ["5005550010"]'), "defaults.languages.es-MX.numbers",
         "'5005550010' is not an E.164 number (+15551234567)"),
        (("{en-US: [balance], es-MX: [saldo]}", "{en-US: [balance], es-ES: [saldo]}"),
         'states.menu.routes."1".synonyms.es-ES',
         "'es-ES' is not a language the flow offers (did you mean 'es-MX'?)"),
        (("    es-MX: {voice: Polly.Mia-Neural, hints", "    es-MX: {vioce: Polly.Mia-Neural, hints"),
         "defaults.languages.es-MX.vioce", "unknown key (did you mean 'voice'?)"),
        (("    msg: done\n", "    msg: 9done\n"), "states.done.msg",
         "a message id uses letters, digits, '_', '.' and '-', starting with a letter: '9done'"),
    ],
)  # fmt: skip
def test_mistakes_in_languages_are_errors_with_their_place(flows_dir, change, where, message):
    path = write(flows_dir, FLOW.replace(*change))
    found = problems(path)
    assert any(f"error: {where}: {message}" in p for p in found), found


def test_msg_and_language_need_the_flow_to_offer_languages(flows_dir):
    one = "start: a\nstates:\n  a:\n    msg: hello\n    next: b\n  b:\n    language: es-MX\n    hangup: true\n"
    (flows_dir / "one.yaml").write_text(one, encoding="utf-8")
    found = problems(flows_dir / "one.yaml")
    assert any(":4:10: error: states.a.msg: msg: looks a prompt up in the catalogs" in p for p in found)
    assert any(":7:5: error: states.b.language: the flow offers no languages to switch to" in p for p in found)


def test_a_catalogs_yaml_mistake_is_reported_in_the_catalog_file(flows_dir):
    path = write(flows_dir, es=ES + "menu2: [unclosed\n")
    found = problems(path)
    assert any("shop.es-MX.yaml:" in p and "YAML syntax" in p for p in found), found


def test_a_catalog_entry_may_be_a_say_mapping_a_play_or_a_prompt_list(flows_dir):
    es = ES.replace("welcome: Bienvenido.\n", "welcome:\n  - play: https://example.com/hola.mp3\n  - pause: 1\n")
    es = es.replace("done: Adiós.\n", "done: {text: Adiós., voice: Polly.Lupe-Neural}\n")
    flow = load_flow(write(flows_dir, es=es))
    spanish = flow.localized["es-MX"]
    assert [type(p).__name__ for p in spanish.states["welcome"].prompts] == ["Play", "Pause"]
    assert spanish.states["done"].prompts[0].voice == "Polly.Lupe-Neural"


def test_shared_catalogs_are_looked_up_after_the_flows_own(flows_dir):
    flow_text = FLOW.replace("start: welcome\n", "catalogs: [common]\nstart: welcome\n")
    path = write(flows_dir, flow_text, en=EN.replace("done: Goodbye.\n", ""), es=ES.replace("done: Adiós.\n", ""))
    (flows_dir / "catalogs" / "common.en-US.yaml").write_text("done: Bye from common.\nwelcome: not this one\n")
    (flows_dir / "catalogs" / "common.es-MX.yaml").write_text("done: Adiós de common.\n")
    flow = load_flow(path)
    assert flow.states["done"].prompts[0].text.source == "Bye from common."
    assert flow.states["welcome"].prompts[0].text.source == "Welcome."  # the flow's own wins
    assert flow.localized["es-MX"].states["done"].prompts[0].text.source == "Adiós de common."


def test_the_flows_version_changes_with_its_catalogs(flows_dir):
    path = write(flows_dir)
    before = load_flow(path).content_hash
    (flows_dir / "catalogs" / "shop.es-MX.yaml").write_text(ES.replace("Bienvenido.", "¡Bienvenido!"))
    after = load_flow(path)
    assert after.content_hash != before
    assert {view.content_hash for view in after.localized.values()} == {after.content_hash}


# -- the engine ---------------------------------------------------------------------------------


def test_a_call_to_the_languages_number_starts_in_it(flows_dir):
    engine = Engine(load_flow(write(flows_dir)))
    step = start(engine, to=SPANISH_NUMBER)
    assert step.language == "es-MX" and step.session["language"] == "es-MX"
    assert '<Say language="es-MX" voice="Polly.Mia-Neural">Bienvenido.</Say>' in step.twiml
    assert 'hints="saldo, cuenta"' in step.twiml  # the language's hints after the route words, each once
    assert 'language="es-MX"' in step.twiml.split("<Gather")[1]
    other = start(engine)
    assert other.language == "en-US"
    assert '<Say language="en-US" voice="Polly.Joanna-Neural">Welcome.</Say>' in other.twiml


def test_the_entry_urls_language_wins_over_the_number(flows_dir):
    engine = Engine(load_flow(write(flows_dir)))
    assert start(engine, to=SPANISH_NUMBER, language="en-US").language == "en-US"
    assert start(engine, language="es-mx").language == "es-MX"  # matched as Twilio's tags are, any case
    assert start(engine, language="fr-FR").language == "en-US"  # not offered: the default


def test_a_states_language_switches_the_rest_of_the_call_retries_and_goodbye_included(flows_dir):
    engine = Engine(load_flow(write(flows_dir)))
    step = start(engine)
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "Digits": "2"}, NOW)
    assert step.language == "es-MX"
    assert "Oprima 1 para su saldo." in step.twiml and "Press 1" not in step.twiml
    for _ in range(2):
        step = engine.resume("menu", step.session, {"CallSid": "CA1"}, NOW, "no_input")
        assert '<Say language="es-MX" voice="Polly.Mia-Neural">No escuché nada.</Say>' in step.twiml
    step = engine.resume("menu", step.session, {"CallSid": "CA1"}, NOW, "no_input")
    assert "Adiós por ahora." in step.twiml and "<Hangup" in step.twiml


def test_speech_matches_the_words_of_the_callers_language(flows_dir):
    engine = Engine(load_flow(write(flows_dir)))
    spanish = start(engine, to=SPANISH_NUMBER)
    step = engine.resume("menu", spanish.session, {"CallSid": "CA1", "SpeechResult": "mi saldo", "Confidence": "0.9"},
                         NOW)  # fmt: skip
    assert step.state == "done" and "Adiós." in step.twiml
    english = start(engine)
    step = engine.resume("menu", english.session, {"CallSid": "CA1", "SpeechResult": "mi saldo", "Confidence": "0.9"},
                         NOW)  # fmt: skip
    assert step.state == "menu"  # no_match: saldo is not an English word for it


def test_a_hook_can_switch_the_language(flows_dir):
    engine = Engine(load_flow(write(flows_dir)))
    step = start(engine)
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "Digits": "3"}, NOW)
    assert step.pending is not None
    from ivr.core.effects import HookResult

    done = step.pending.resume(HookResult("found", {}, language="es-MX"))
    assert done.language == "es-MX" and "Oprima 1 para su saldo." in done.twiml


def test_a_templated_language_that_is_not_offered_keeps_the_calls(flows_dir):
    flow_text = FLOW.replace("    language: es-MX\n", '    language: "{{ vars.wanted }}"\n    set: {}\n')
    flow_text = flow_text.replace("  spanish:\n", "  spanish:\n")
    engine = Engine(load_flow(write(flows_dir, flow_text)))
    step = start(engine)
    step.session["vars"]["wanted"] = "de-DE"
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "Digits": "2"}, NOW)
    assert step.language == "en-US" and "Press 1 for your balance." in step.twiml
    step.session["vars"]["wanted"] = "es"
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "Digits": "2"}, NOW)
    assert step.language == "es-MX"


def test_states_before_a_switch_in_the_same_document_keep_their_language(flows_dir):
    flow_text = FLOW.replace("start: welcome\n", "start: first\n").replace(
        "states:\n", "states:\n  first:\n    msg: welcome\n    next: spanish\n"
    )
    engine = Engine(load_flow(write(flows_dir, flow_text)))
    step = start(engine)
    assert step.twiml.index('language="en-US" voice="Polly.Joanna-Neural">Welcome.') < step.twiml.index(
        'language="es-MX" voice="Polly.Mia-Neural">Oprima 1'
    )
    again = start(engine)
    assert again.twiml == step.twiml  # the same document the second time (the views' caches stay apart)


def test_a_documents_retry_is_rendered_again_in_its_language(flows_dir):
    engine = Engine(load_flow(write(flows_dir)))
    step = start(engine, to=SPANISH_NUMBER)
    assert step.document is not None
    assert engine.rendered_again(step.document, step.language) == step.twiml
    assert engine.rendered_again(step.document) != step.twiml  # the default language's is another document


# -- check --------------------------------------------------------------------------------------


def test_check_warns_of_a_message_nothing_uses_and_a_catalog_nothing_reads(flows_dir):
    write(flows_dir, es=ES + "old_menu: Oprima 9.\n")
    (flows_dir / "catalogs" / "nobody.fr-FR.yaml").write_text("hello: Bonjour.\n")
    report = run_checks(flows_dir=flows_dir, hooks=lambda directory: {"choose_language"})
    lines = [p.format() for p in report.problems]
    assert (
        f"{_shown(flows_dir / 'catalogs' / 'shop.es-MX.yaml')}:8:1: warning: old_menu: no msg: uses it (read by shop)"
        in lines
    )
    assert any("nobody.fr-FR.yaml:1:1: warning: no flow reads this catalog" in line for line in lines)
    assert report.count("error") == 0


def test_check_warns_of_spoken_routes_without_words_in_a_language(flows_dir):
    write(
        flows_dir,
        FLOW.replace("{to: done, synonyms: {en-US: [balance], es-MX: [saldo]}}", "{to: done, synonyms: [balance]}"),
    )
    lines = checked(flows_dir)
    assert any('warning: states.menu.routes."1": callers in es-MX can say only' in line for line in lines), lines


def test_check_warns_when_a_subflow_does_not_speak_a_language_its_caller_offers(flows_dir):
    copy_flows(flows_dir, "pin.yaml")
    flow_text = FLOW.replace("    run: choose_language\n", "    subflow: {flow: pin, inputs: {account: '1'}}\n")
    flow_text = flow_text.replace("    routes: {found: menu}\n", "    routes: {verified: menu}\n")
    write(flows_dir, flow_text)
    lines = [p.format() for p in run_checks(["shop"], flows_dir=flows_dir).problems]
    assert any("states.lookup.subflow: subflow 'pin' does not offer es-MX: callers in it hear it in en-US" in line
               for line in lines), lines  # fmt: skip


# -- the app, the phones ------------------------------------------------------------------------


@pytest.fixture
def billing_app(make_app, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    copy_flows(flows, "billing.yaml", "hooks.py")
    shutil.copytree(FLOWS / "catalogs", flows / "catalogs")
    return make_app({"IVR_FLOWS_DIR": str(flows)})


def test_the_shipped_billing_flow_answers_each_caller_in_their_language(billing_app):
    phone = phone_on(billing_app)
    call = phone.dial("/voice/billing", to=SPANISH_NUMBER)
    assert call.heard[0] == "Bienvenido a la facturación de Acme."
    call.press("1")
    call.press("123456")
    assert "El saldo de su cuenta es de 42.50 dólares." in call.heard
    english = phone.dial("/voice/billing")
    assert english.heard == ["For English, press 1.", "Para español, oprima 2."]
    english.press("1")
    assert english.heard[0] == "Welcome to Acme billing."


def test_the_entry_url_takes_a_language(billing_app):
    client = billing_app.test_client()
    params = caller_params("CA" + "1" * 32)
    from conftest import sign

    url = "http://localhost/voice/billing?language=es-MX"
    response = client.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})
    assert said(document(response))[0] == "Bienvenido a la facturación de Acme."


def test_the_cli_phone_calls_in_a_language_and_refuses_one_not_offered(monkeypatch, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    copy_flows(flows, "billing.yaml", "hooks.py")
    shutil.copytree(FLOWS / "catalogs", flows / "catalogs")
    monkeypatch.setenv("IVR_FLOWS_DIR", str(flows))
    runner = CliRunner()
    result = runner.invoke(cli, ["phone", "billing", "--language", "es-MX", "--keys", "wait"])
    assert "  Bienvenido a la facturación de Acme." in result.output
    assert "  Perdón, no escuché nada." in result.output
    refused = runner.invoke(cli, ["phone", "billing", "--language", "fr-FR", "--keys", "1"])
    assert refused.exit_code == 2
    assert "flow 'billing' does not offer 'fr-FR' (languages: en-US, es-MX)" in refused.output


def test_the_browser_phone_lists_languages_and_calls_in_one(make_app, tmp_path):
    from ivr.web.browser import init_app

    flows = tmp_path / "flows"
    flows.mkdir()
    copy_flows(flows, "billing.yaml", "hooks.py")
    shutil.copytree(FLOWS / "catalogs", flows / "catalogs")
    app = make_app({"IVR_FLOWS_DIR": str(flows), "IVR_PHONE": "1"})
    init_app(app)
    client = app.test_client()
    listed = client.get("/phone/flows").get_json()["flows"]
    assert [f["languages"] for f in listed if f["id"] == "billing"] == [["en-US", "es-MX"]]
    placed = client.post("/phone/calls", json={"flow": "billing", "language": "es-MX"})
    assert placed.status_code == 201
    assert [h["text"] for h in placed.get_json()["heard"]][:1] == ["Bienvenido a la facturación de Acme."]
    refused = client.post("/phone/calls", json={"flow": "billing", "language": "fr-FR"})
    assert refused.status_code == 400 and "does not offer 'fr-FR'" in refused.get_json()["error"]


def test_editing_a_catalog_reloads_the_flow(make_app, tmp_path, hooks, monkeypatch):
    from ivr.web import registry as registry_module

    monkeypatch.setattr(registry_module, "CHECK_EVERY", 0.0)  # look at the files on every request
    hooks.returns("choose_language", outcome="found")
    flows = tmp_path / "flows"
    flows.mkdir()
    write(flows)
    app = make_app({"IVR_FLOWS_DIR": str(flows), "IVR_HOT_RELOAD": "1"})
    registry = services(app).flows
    before = registry.flows["shop"].content_hash
    catalog = flows / "catalogs" / "shop.es-MX.yaml"
    catalog.write_text(ES.replace("Bienvenido.", "¡Bienvenido de nuevo!"), encoding="utf-8")
    import os

    os.utime(catalog, ns=(1, 2_000_000_000_000_000_000))
    registry.refresh()
    assert registry.flows["shop"].content_hash != before
    assert registry.flows["shop"].localized["es-MX"].states["welcome"].prompts[0].text.source == "¡Bienvenido de nuevo!"


def test_the_documented_bilingual_example_answers_as_the_docs_show(tmp_path):
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "flows.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Languages") : doc.index("## Templates")]
    blocks = dict(re.findall(r"```yaml\n# flows/(\S+)\n(.*?)```", section, re.S))
    (tmp_path / "catalogs").mkdir()
    for name, text in blocks.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    engine = Engine(load_flow(tmp_path / "clinic.yaml"))
    step = start(engine)
    step = engine.resume("choose", step.session, {"CallSid": "CA1", "Digits": "2"}, NOW)
    [shown] = re.findall(r"```xml\n(.*?)\n```", section, re.S)
    assert step.twiml.split("?>", 1)[1] == shown


def test_check_warns_of_a_languages_voice_that_does_not_speak_it(flows_dir):
    write(flows_dir, FLOW.replace("es-MX: {voice: Polly.Mia-Neural,", "es-MX: {voice: Polly.Joanna-Neural,"))
    lines = checked(flows_dir)
    assert any(
        ":5:5: warning: defaults.languages.es-MX.voice: Polly.Joanna-Neural does not speak es-MX" in line
        for line in lines
    ), lines


def test_a_catalog_entry_may_hold_ssml_parts_spoken_by_the_languages_voice(flows_dir):
    es = ES.replace(
        "done: Adiós.\n", 'done: {text: [Su código es, {digits: "{{ code }}"}, ., {break: 300ms}, Adiós.]}\n'
    )
    flow_text = FLOW.replace("    run: choose_language\n", "    set: {code: '4821'}\n").replace(
        "    routes: {found: menu}\n    next: menu\n", "    next: done\n"
    )
    engine = Engine(load_flow(write(flows_dir, flow_text, es=es)))
    step = start(engine, to=SPANISH_NUMBER)
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "Digits": "3"}, NOW)
    assert (
        '<Say language="es-MX" voice="Polly.Mia-Neural">Su código es <say-as interpret-as="digits">4821</say-as>.'
        '<break time="300ms" /> Adiós.</Say>'
    ) in step.twiml


def test_a_language_may_pin_its_own_speech_recognition(flows_dir):
    flow_text = FLOW.replace(
        '    es-MX: {voice: Polly.Mia-Neural, hints: "cuenta, saldo", numbers: ["+15005550010"]}\n',
        '    es-MX: {voice: Polly.Mia-Neural, numbers: ["+15005550010"], speech: {model: deepgram_nova-3}}\n',
    ).replace("  language: en-US\n", "  language: en-US\n  speech: {model: phone_call, profanity_filter: false}\n")
    engine = Engine(load_flow(write(flows_dir, flow_text)))
    gather = start(engine, to=SPANISH_NUMBER).twiml.split("<Gather")[1].split(">")[0]
    assert 'speechModel="deepgram_nova-3"' in gather and 'profanityFilter="false"' in gather
    gather = start(engine).twiml.split("<Gather")[1].split(">")[0]
    assert 'speechModel="phone_call"' in gather and 'profanityFilter="false"' in gather


def test_an_uninterruptible_msg_plays_before_the_gather_in_every_language(flows_dir):
    flow_text = FLOW.replace("    msg: menu\n    gather:", "    prompts:\n      - {msg: welcome, barge_in: false}\n"
                             "      - msg: menu\n    gather:")  # fmt: skip
    engine = Engine(load_flow(write(flows_dir, flow_text)))
    step = start(engine, to=SPANISH_NUMBER)
    head, gather = step.twiml.split("<Gather", 1)
    assert head.count("Bienvenido.") == 2 and "Bienvenido." not in gather and "Oprima 1" in gather


def test_a_slow_hooks_filler_speaks_the_calls_language(flows_dir):
    flow_text = FLOW.replace("    run: choose_language\n", "    run: choose_language\n    filler: {msg: wait}\n")
    engine = Engine(
        load_flow(write(flows_dir, flow_text, en=EN + "wait: One moment.\n", es=ES + "wait: Un momento.\n"))
    )
    step = start(engine, to=SPANISH_NUMBER)
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "Digits": "3"}, NOW)
    assert step.pending.filler.prompt.text.source == "Un momento."
    document, _ = step.pending.waiting("/voice/shop/lookup?event=wait&job=1")
    assert '<Say language="es-MX" voice="Polly.Mia-Neural">Un momento.</Say>' in document


def test_a_say_in_an_offered_language_takes_that_languages_voice(flows_dir):
    flow_text = FLOW.replace("    msg: welcome\n", "    say: {text: Para español oprima 2., language: es-MX}\n")
    engine = Engine(load_flow(write(flows_dir, flow_text)))
    for step in (start(engine), start(engine, to=SPANISH_NUMBER)):
        assert '<Say language="es-MX" voice="Polly.Mia-Neural">Para español oprima 2.</Say>' in step.twiml


def test_an_uninterruptible_catalog_prompt_after_an_interruptible_one_is_an_error(flows_dir):
    es = ES.replace("menu: Oprima 1 para su saldo.\n", "menu:\n  - say: Aviso.\n  - {say: Legal., barge_in: false}\n")
    es = es.replace("  - say: Aviso.\n  - {say: Legal., barge_in: false}\n", "  - {say: Legal., barge_in: false}\n")
    flow_text = FLOW.replace(
        "    msg: menu\n    gather:", "    prompts:\n      - msg: welcome\n      - msg: menu\n    gather:"
    )
    found = problems(write(flows_dir, flow_text, es=es))
    assert any(
        "error: states.menu.prompts[1].msg: 'menu' in es-MX holds a prompt with barge_in: false after one the caller"
        " can interrupt" in p
        for p in found
    ), found


@pytest.mark.parametrize(("said", "key"), [("dos", "2"), ("deux", "2"), ("Zwei", "2"), ("três", "3"), ("uno", "1")])
def test_number_words_of_other_languages_press_the_key(flows_dir, said, key):
    engine = Engine(load_flow(write(flows_dir)))
    step = start(engine, to=SPANISH_NUMBER)
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "SpeechResult": said, "Confidence": "0.9"}, NOW)
    assert step.outcome == key


def test_words_match_whatever_accents_the_recognizer_writes(flows_dir):
    flow_text = FLOW.replace("es-MX: [saldo]", "es-MX: [depósito]")
    engine = Engine(load_flow(write(flows_dir, flow_text)))
    step = start(engine, to=SPANISH_NUMBER)
    step = engine.resume("menu", step.session, {"CallSid": "CA1", "SpeechResult": "deposito", "Confidence": "0.9"}, NOW)
    assert step.state == "done"


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("fr_FR", "a language tag joins its parts with '-', not '_': fr-FR"),
        ("french", "a language tag starts with its language's 2 or 3 letters: en-US, es-MX, fr-CA"),
        ("FR-fr", "write it fr-FR: the language in small letters, a region in capitals"),
        ("fr-ca", "write it fr-CA: the language in small letters, a region in capitals"),
    ],
)
def test_a_malformed_language_is_an_error_in_any_flow(flows_dir, tag, message):
    text = f"start: a\nstates:\n  a:\n    say: {{text: Bonjour., language: {tag}}}\n    hangup: true\n"
    (flows_dir / "one.yaml").write_text(text, encoding="utf-8")
    [problem] = problems(flows_dir / "one.yaml")
    assert (
        problem.endswith(f":4:36: error: states.a.say.language: {message}")
        or f"error: states.a.say.language: {message}" in problem
    )


def test_check_reads_each_languages_menu_for_the_keys_it_announces(flows_dir):
    write(
        flows_dir, es=ES.replace("menu: Oprima 1 para su saldo.", "menu: Oprima 1 para su saldo. Oprima 5 para ventas.")
    )
    lines = checked(flows_dir)
    assert any(
        'shop.es-MX.yaml:2:7: warning: menu: the prompt announces key "5" but no route takes it' in line
        for line in lines
    ), lines


def test_check_warns_that_twilio_transcribes_english_only(flows_dir):
    recorded = (
        "    msg: done\n    record: {transcribe: true}\n    next: done2\n  done2:\n    msg: done\n    hangup: true\n"
    )
    flow_text = FLOW.replace("    msg: done\n    hangup: true\n", recorded)
    write(flows_dir, flow_text)
    lines = checked(flows_dir)
    assert any("warning: states.done.record: Twilio transcribes recordings in English only: callers in es-MX" in line
               for line in lines), lines  # fmt: skip


def test_the_phones_take_a_language_as_the_entry_url_does(monkeypatch, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    copy_flows(flows, "billing.yaml", "hooks.py")
    shutil.copytree(FLOWS / "catalogs", flows / "catalogs")
    monkeypatch.setenv("IVR_FLOWS_DIR", str(flows))
    result = CliRunner().invoke(cli, ["phone", "billing", "--language", "es", "--keys", "wait"])
    assert result.exit_code == 0, result.output
    assert "  Bienvenido a la facturación de Acme." in result.output
