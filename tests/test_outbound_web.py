"""The web side of outbound calls and texts: /api/calls, ?ctx= variables, AnsweredBy, sms: steps,
voicemail by text, and text conversations on /sms/<flow>. Twilio's REST API is the fake HTTP client."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import BASE, phone_on, sign

from ivr.phone.fakes import FakeTwilioHttp, call_json, message_json
from ivr.web.services import services

PUBLIC = "https://ivr.example.com"
FROM = "+15005550006"
OUTBOUND = """\
start: check
states:
  check:
    answered_by: {machine: drop, fax: bye}
    say: "Hello {{ name }}, this is Acme about order {{ order }}."
    gather: {}
    routes: {"1": confirm}
  confirm:
    sms: "Order {{ order }} confirmed. Thank you, {{ name }}."
    say: Confirmed. We sent you a text.
    hangup: true
  drop:
    say: "Hello {{ name }}, please call Acme back about order {{ order }}."
    hangup: true
  bye: {hangup: true}
"""


@pytest.fixture
def outbound(make_app, tmp_path, example_flows):
    """An app serving the examples plus an outbound flow, with the fake Twilio REST API."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for path in example_flows.iterdir():
        (flows / path.name).write_bytes(path.read_bytes())
    (flows / "orders.yaml").write_text(OUTBOUND)
    app = make_app({"IVR_FLOWS_DIR": str(flows), "IVR_PUBLIC_URL": PUBLIC, "IVR_API_TOKEN": "s3cret",
                    "TWILIO_FROM_NUMBER": FROM})  # fmt: skip
    http = FakeTwilioHttp()
    services(app).twilio_http = http
    return app, http


def api_call(app, body: dict, token: str = "s3cret"):
    return app.test_client().post("/api/calls", json=body, headers={"Authorization": f"Bearer {token}"})


def phone(app):
    """A phone that calls the app as Twilio calls IVR_PUBLIC_URL, signing for that URL."""
    return phone_on(app, base_url=PUBLIC)


def test_the_api_places_a_call_with_twilios_exact_parameters(outbound):
    app, http = outbound
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request, "CA" + "7" * 32)))
    response = api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "42"}})
    assert response.status_code == 201
    assert response.get_json()["sid"] == "CA" + "7" * 32
    [request] = http.requests
    form = dict(request.form)
    assert (form["To"], form["From"], form["Method"]) == ("+15551230000", FROM, "POST")
    assert form["StatusCallback"] == f"{PUBLIC}/twilio/status#ct=1000&rt=2500&tt=15000&rc=3&rp=ct,rt,5xx"
    assert [v for k, v in request.form if k == "StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    url = urlsplit(form["Url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{PUBLIC}/voice/orders"
    assert set(parse_qs(url.query)) == {"ctx"}  # the variables stay on the server
    assert "Ada" not in form["Url"]


def test_the_answer_webhook_enters_the_flow_with_the_variables_even_before_the_create_returned(outbound):
    app, http = outbound
    calls = []

    def answer_first(request):
        # Twilio may request the Url before the create request has returned: answer it from inside.
        url = dict(request.form)["Url"]
        call = phone(app).dial(url, direction="outbound-api", to="+15551230000", from_=FROM)
        calls.append(call)
        return 201, call_json(request, call.sid)

    http.respond_with("POST", r"/Calls\.json$", answer_first)
    assert (
        api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "42"}}).status_code
        == 201
    )
    [call] = calls
    assert call.heard == ["Hello Ada, this is Acme about order 42."]
    assert call.exchanges[0].params["Direction"] == "outbound-api"
    assert call.exchanges[0].params["CallStatus"] == "in-progress"


def test_answering_machine_detection_routes_the_entry_state_before_its_prompts(outbound):
    app, http = outbound
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "42"},
                   "machine_detection": "DetectMessageEnd"})  # fmt: skip
    url = dict(http.requests[0].form)["Url"]
    assert dict(http.requests[0].form)["MachineDetection"] == "DetectMessageEnd"
    call = phone(app).dial(url, direction="outbound-api", params={"AnsweredBy": "machine_end_beep"})
    assert call.heard == ["Hello Ada, please call Acme back about order 42."]


@pytest.mark.parametrize("answered_by", ["human", "unknown"])
def test_a_human_or_unknown_answer_hears_the_entry_states_prompts(outbound, answered_by):
    app, http = outbound
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "7"}})
    url = dict(http.requests[0].form)["Url"]
    call = phone(app).dial(url, direction="outbound-api", params={"AnsweredBy": answered_by})
    assert call.heard == ["Hello Ada, this is Acme about order 7."]


def test_the_api_refuses_without_the_token_and_explains_bad_requests(outbound):
    app, _ = outbound
    assert api_call(app, {"flow": "orders", "to": "+15551230000"}, token="wrong").status_code == 401
    response = api_call(app, {"flow": "nosuch", "to": "+15551230000"})
    assert response.status_code == 400
    assert "nosuch" in response.get_json()["error"]
    response = api_call(app, {"flow": "orders", "to": "5551230000"})
    assert response.status_code == 400
    assert "E.164" in response.get_json()["error"]


def test_the_api_answers_503_naming_the_servers_missing_settings(make_app, caplog):
    """The server's own credentials and caller ID are its operator's to fix, not the client's: no 400."""
    app = make_app({"IVR_PUBLIC_URL": PUBLIC, "IVR_API_TOKEN": "s3cret", "TWILIO_FROM_NUMBER": None,
                    "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None})  # fmt: skip

    response = api_call(app, {"flow": "main", "to": "+15551230000"})

    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error.startswith("the server cannot place calls; its operator must fix its settings: no caller ID")
    assert "Twilio credentials are not set" in error
    [logged] = [r.getMessage() for r in caplog.records if r.name == "ivr.api"]
    assert logged.startswith("POST /api/calls refused: the server cannot place calls: no caller ID")
    assert "Twilio credentials are not set" in logged


def test_the_api_does_not_exist_without_a_token(make_app):
    assert make_app().test_client().post("/api/calls", json={}).status_code == 404


def test_an_sms_step_texts_the_other_party_once_after_the_response(outbound):
    app, http = outbound
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    http.respond_with("POST", r"/Messages\.json$", lambda request: (201, message_json(request)))
    api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "42"}})
    call = phone(app).dial(dict(http.requests[0].form)["Url"], direction="outbound-api", to="+15551230000", from_=FROM)
    call.press("1")
    assert call.heard == ["Confirmed. We sent you a text."]
    [text] = http.sent("POST", r"/Messages\.json$")
    assert dict(text.form) == {"To": "+15551230000", "From": FROM, "Body": "Order 42 confirmed. Thank you, Ada."}
    assert [e["kind"] for e in call.effects] == ["sms"]


def test_a_retried_webhook_sends_no_second_text(outbound):
    app, http = outbound
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    http.respond_with("POST", r"/Messages\.json$", lambda request: (201, message_json(request)))
    api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "42"}})
    call = phone(app).dial(dict(http.requests[0].form)["Url"], direction="outbound-api", to="+15551230000", from_=FROM)
    params = {**call.exchanges[-1].params, "Digits": "1", "CallStatus": "in-progress"}
    url = f"{PUBLIC}/voice/orders/check"
    headers = {"X-Twilio-Signature": sign(url, params), "I-Twilio-Idempotency-Token": "retry-me"}
    client = app.test_client()
    first = client.post("/voice/orders/check", data=params, headers=headers)
    first.close()  # a server closes the response once sent: the text goes then
    again = client.post("/voice/orders/check", data=params, headers=headers)  # Twilio retries
    again.close()
    assert first.get_data() == again.get_data()
    assert len(http.sent("POST", r"/Messages\.json$")) == 1


def test_a_text_that_fails_is_logged_and_the_call_goes_on(outbound, caplog):
    app, http = outbound
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request)))
    http.respond("POST", r"/Messages\.json$", 400, json={"code": 21610, "message": "Unsubscribed recipient",
                                                         "more_info": "", "status": 400})  # fmt: skip
    api_call(app, {"flow": "orders", "to": "+15551230000", "vars": {"name": "Ada", "order": "42"}})
    call = phone(app).dial(dict(http.requests[0].form)["Url"], direction="outbound-api", to="+15551230000", from_=FROM)
    call.press("1")
    assert call.heard == ["Confirmed. We sent you a text."]
    assert "21610" in caplog.text


def test_a_voicemail_can_be_delivered_by_text(make_app, tmp_path):
    (tmp_path / "vm.yaml").write_text(
        "defaults: {on_message: {sms: '+15550009999'}}\nstart: vm\nstates:\n"
        "  vm: {say: Speak., record: {transcribe: true}, next: bye}\n  bye: {hangup: true}\n"
    )
    app = make_app({"IVR_FLOWS_DIR": str(tmp_path), "TWILIO_FROM_NUMBER": FROM})
    http = FakeTwilioHttp()
    http.respond_with("POST", r"/Messages\.json$", lambda request: (201, message_json(request)))
    services(app).twilio_http = http
    call = phone_on(app).dial("vm", from_="+15551230000")
    call.record(seconds=11)
    call.transcription("Call me back.")
    first, second = (dict(r.form) for r in http.sent("POST", r"/Messages\.json$"))
    assert first["To"] == "+15550009999"
    assert first["Body"].startswith("New voicemail from +15551230000 (11 s)\nListen: https://api.twilio.com/")
    assert first["Body"].endswith("Transcription to follow.")
    assert second["Body"].startswith("Transcription of the voicemail from +15551230000 (11 s)")
    assert second["Body"].endswith('"Call me back."')


# -- text conversations --------------------------------------------------------------------------


class Texter:
    """Someone texting the app's number, as Twilio posts each message, signed."""

    def __init__(self, app, flow: str = "main", number: str = "+15551230000") -> None:
        self.client = app.test_client()
        self.flow = flow
        self.number = number
        self.count = 0

    def send(self, body: str) -> str:
        self.count += 1
        params = {"AccountSid": "AC" + "0" * 32, "MessageSid": f"SM{self.count:032d}", "From": self.number,
                  "To": "+15559870000", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}  # fmt: skip
        path = f"/sms/{self.flow}"
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": sign(BASE + path, params)})
        assert response.status_code == 200
        from xml.etree import ElementTree

        return ElementTree.fromstring(response.get_data()).find("Message").text


def test_a_text_conversation_walks_the_main_menu_by_digits_and_keywords(app):
    texter = Texter(app)
    first = texter.send("hi")
    assert first.startswith("Thanks for calling Acme.\nFor sales, press 1 or say sales.")
    assert texter.send("support").startswith("For billing, press 1 or say billing.")
    assert texter.send("7").startswith("Sorry, that's not an option.")
    assert texter.send("9").startswith("For sales, press 1")  # back to the main menu
    reply = texter.send("1")
    assert reply == "Connecting you to sales.\nThis option needs a phone call: please call +15559870000."
    assert texter.send("hello again").startswith("Thanks for calling Acme.")  # a new conversation


def test_a_text_conversation_follows_the_flow_into_another_flow(app):
    texter = Texter(app)
    texter.send("hi")
    reply = texter.send("4")
    assert reply.startswith("We are open Monday to Friday, 9 AM to 5 PM Eastern time.\nTo hear this again, press 1.")
    assert texter.send("2").startswith("For sales, press 1")


def test_an_unsigned_text_is_refused(app):
    response = app.test_client().post("/sms/main", data={"From": "+1555", "To": "+1666", "Body": "1"})
    assert response.status_code == 403


def test_status_callbacks_record_each_campaign_rows_outcome(outbound, tmp_path):
    from conftest import ACCOUNT

    from ivr.cli.campaign import campaign as campaign_group
    from ivr.outbound.campaign import Campaign
    from ivr.outbound.client import make_client
    from ivr.outbound.contacts import read_contacts
    from ivr.outbound.deps import OutboundDeps

    app, http = outbound
    sids = iter(f"CA{n:032d}" for n in range(1, 10))
    http.respond_with("POST", r"/Calls\.json$", lambda request: (201, call_json(request, next(sids))))
    csv = tmp_path / "spring.csv"
    csv.write_text("to,name,order\n+14155550001,Ada,1\n+14155550002,Bob,2\n+14155550003,Cy,3\n")
    store = services(app).store
    settings = {**app.config, "TWILIO_ACCOUNT_SID": ACCOUNT}
    client = make_client(settings, http_client=http)
    campaign = Campaign(settings, "spring", "orders", client=client, store=store,
                        flows=services(app).flows.flows, sleep=lambda s: None)  # fmt: skip
    campaign.run(read_contacts(csv))
    web = app.test_client()
    for sid, status, answered_by in [(f"CA{1:032d}", "completed", "human"), (f"CA{2:032d}", "completed",
                                     "machine_end_beep"), (f"CA{3:032d}", "busy", "")]:  # fmt: skip
        params = {"AccountSid": ACCOUNT, "CallSid": sid, "CallStatus": status, "AnsweredBy": answered_by}
        url = f"{PUBLIC}/twilio/status"
        assert (
            web.post("/twilio/status", data=params, headers={"X-Twilio-Signature": sign(url, params)}).status_code
            == 200
        )
    from click.testing import CliRunner

    result = CliRunner().invoke(campaign_group, ["status", "spring"], obj=OutboundDeps(settings=settings, store=store))
    assert result.exit_code == 0, result.output
    lines = result.output
    assert "+14155550001" in lines and "answered" in lines
    assert "+14155550002" in lines and "machine" in lines
    assert "+14155550003" in lines and "busy" in lines


def test_a_text_conversation_runs_the_flows_hooks(app):
    texter = Texter(app, flow="accounts", number="+15551230000")
    assert texter.send("hello").startswith("Welcome back to Acme, Ada.")
    texter.send("1")
    assert texter.send("123456").startswith("You entered 1 2 3 4 5 6.")
    assert texter.send("1").startswith("Please enter your four digit PIN.")  # the pin subflow, by text too
    assert texter.send("1234").startswith("The balance of account 1 2 3 4 5 6 is 42.50 dollars.")


def test_the_entry_states_text_is_not_sent_when_machine_detection_diverts_the_call(outbound):
    app, _http = outbound
    flow = OUTBOUND.replace("  check:\n", "  check:\n    sms: Hello from the entry state.\n")
    (services(app).flows.directory / "orders.yaml").write_text(flow)
    services(app).flows.hot_reload = True
    from ivr.web import registry

    registry.CHECK_EVERY, before = 0.0, registry.CHECK_EVERY
    try:
        call = phone(app).dial("/voice/orders", direction="outbound-api", params={"AnsweredBy": "fax"})
    finally:
        registry.CHECK_EVERY = before
    assert call.ended
    assert call.effects == []


def test_a_browser_or_terminal_phone_never_sends_real_texts(make_app, tmp_path, monkeypatch):
    import ivr.outbound.calls

    sent = []
    monkeypatch.setattr(ivr.outbound.calls, "send_sms", lambda *a, **k: sent.append(a))
    (tmp_path / "t.yaml").write_text("start: a\nstates:\n  a: {sms: Hi there., say: Hello., hangup: true}\n")
    app = make_app({"IVR_FLOWS_DIR": str(tmp_path), "IVR_ENV": "development", "TWILIO_FROM_NUMBER": FROM})
    call = phone_on(app).dial("t")
    assert call.heard == ["Hello."]
    assert [e["body"] for e in call.effects] == ["Hi there."]
    assert sent == []  # development with credentials: still only shown, never sent
