"""The baseline: a hand-written Flask IVR, the way Twilio's own IVR tutorial builds one.

A global app, a route per menu that reads Digits and returns a VoiceResponse built on every
request, and a decorator that checks X-Twilio-Signature (Twilio's "secure your Flask app"
recipe). It answers the requests the benchmarks send with exactly the TwiML `ivr` answers them
with (the benchmarks check that byte for byte), keeps no session, and handles nothing else
beyond sending the caller back to the menu.

Serve it as the benchmarks do: `TWILIO_AUTH_TOKEN=... gunicorn -c ivr/web/gunicorn_conf.py benchmarks.baseline:wsgi`.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import wraps
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

app = Flask(__name__)

GENERATED_MENUS = 10  # the menus of the generated flow the benchmarks use (benchmarks/common.py)
NEW_YORK = ZoneInfo("America/New_York")
VOICE = {"voice": "Polly.Joanna", "language": "en-US"}
CALLBACK_OVERRIDES = "#ct=1000&rt=2500&tt=15000&rc=3&rp=ct,rt,5xx"


# URLs are absolute when IVR_PUBLIC_URL is set, as ivr writes them (DESIGN: production requires it).
BASE = os.environ.get("IVR_PUBLIC_URL", "").rstrip("/")


def wsgi(environ, start_response):
    """The app as gunicorn serves it in the benchmarks: a plain WSGI callable, so that ivr's gunicorn config does
    not take it for an ivr app (its post_worker_init starts ivr's background thread for any Flask app it serves)."""
    return app(environ, start_response)


def validate_twilio_request(view):
    """Twilio's recipe: 403 unless X-Twilio-Signature signs this URL and form."""

    @wraps(view)
    def decorated(*args, **kwargs):
        validator = RequestValidator(os.environ.get("TWILIO_AUTH_TOKEN"))
        if validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", "")):
            return view(*args, **kwargs)
        return abort(403)

    return decorated


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), content_type="text/xml; charset=utf-8")


@app.route("/healthz")
def healthz():
    return {"status": "ok"}


# -- the generated flow's menus: /voice/gen, /voice/gen/s<i> -----------------------------------


def _generated_menu(number: int) -> VoiceResponse:
    response = VoiceResponse()
    action = BASE + f"/voice/gen/s{number}"
    with response.gather(action=action, input="dtmf", method="POST", num_digits=1, timeout=5) as gather:
        gather.say(f"Menu {number}. For A press 1, for B press 2, for C press 3.")
    response.redirect(f"{action}?event=no_input", method="POST")
    return response


@app.route("/voice/gen", methods=["POST"])
@validate_twilio_request
def generated_welcome():
    return twiml(_generated_menu(0))


@app.route("/voice/gen/s<int:number>", methods=["POST"])
@validate_twilio_request
def generated_choice(number):
    digits = request.form.get("Digits", "")
    if digits in ("1", "2", "3"):
        return twiml(_generated_menu((number + int(digits)) % GENERATED_MENUS))
    return twiml(_generated_menu(number))


# A speech gather's recognition, pinned as ivr pins it (a hand-written IVR would pin it too, since Twilio
# changed its default provider in 2025).
SPEECH = {"speech_model": "googlev2_telephony", "profanity_filter": True}


# -- Acme's main line (flows/main.yaml): /voice/main, /voice/main/<state> ------------------------


def _main_menu(response: VoiceResponse) -> None:
    with response.gather(
        action=BASE + "/voice/main/menu",
        hints="sales, buy, pricing, support, help, technical",
        input="dtmf speech",
        method="POST",
        num_digits=1,
        timeout=5,
        language="en-US",
        **SPEECH,
    ) as gather:
        gather.say(
            "For sales, press 1 or say sales. For support, press 2 or say support. To leave a message, "
            "press 3. For our opening hours, press 4.",
            **VOICE,
        )
    response.redirect(BASE + "/voice/main/menu?event=no_input", method="POST")


def _after_hours_menu(response: VoiceResponse) -> None:
    with response.gather(
        action=BASE + "/voice/main/after_hours_menu", input="dtmf", method="POST", num_digits=1, timeout=5
    ) as gather:
        gather.say(
            "Our office is closed right now. To leave a message, press 1. For our opening hours, press 2.", **VOICE
        )
    response.redirect(BASE + "/voice/main/after_hours_menu?event=no_input", method="POST")


def _voicemail(response: VoiceResponse) -> None:
    response.say("Please leave a message after the beep. Press the pound key when you are done.", **VOICE)
    response.record(
        action=BASE + "/voice/main/voicemail",
        finish_on_key="#",
        max_length=120,
        method="POST",
        play_beep=True,
        # Twilio's connection overrides, as ivr writes them: retry a lost recording callback (ivr/core/twiml.py).
        recording_status_callback=BASE + "/twilio/recording?flow=main&state=voicemail" + CALLBACK_OVERRIDES,
        recording_status_callback_method="POST",
    )
    response.redirect(BASE + "/voice/main/voicemail?event=no_recording", method="POST")


def _goodbye(response: VoiceResponse) -> Response:
    response.say("Thanks for calling Acme. Goodbye.", **VOICE)
    response.hangup()
    return twiml(response)


@app.route("/voice/main", methods=["POST"])
@validate_twilio_request
def welcome():
    response = VoiceResponse()
    response.say("Thanks for calling Acme.", **VOICE)
    now = datetime.now(NEW_YORK)
    if now.weekday() < 5 and 9 <= now.hour < 17:
        _main_menu(response)
    else:
        _after_hours_menu(response)
    return twiml(response)


@app.route("/voice/main/menu", methods=["POST"])
@validate_twilio_request
def menu():
    response = VoiceResponse()
    if request.form.get("Digits") == "2":
        with response.gather(
            action=BASE + "/voice/main/support_menu",
            hints="billing, invoice, payment",
            input="dtmf speech",
            language="en-US",
            method="POST",
            num_digits=1,
            **SPEECH,
        ) as gather:
            gather.say(
                "For billing, press 1 or say billing. For technical support, press 2. To go back, press 9.", **VOICE
            )
        response.redirect(BASE + "/voice/main/support_menu?event=no_input", method="POST")
        return twiml(response)
    if request.form.get("Digits") == "3":
        _voicemail(response)
        return twiml(response)
    _main_menu(response)
    return twiml(response)


@app.route("/voice/main/after_hours_menu", methods=["POST"])
@validate_twilio_request
def after_hours_menu():
    response = VoiceResponse()
    if request.form.get("Digits") == "1":
        _voicemail(response)
    else:
        _after_hours_menu(response)
    return twiml(response)


@app.route("/voice/main/support_menu", methods=["POST"])
@validate_twilio_request
def support_menu():
    response = VoiceResponse()
    if request.form.get("Digits") == "1":
        response.say("Connecting you to billing.", **VOICE)
        dial = response.dial(
            action=BASE + "/voice/main/billing", caller_id=request.form.get("To"), method="POST", timeout=20
        )
        dial.number("+15005550006")
        dial.number("+15005550007")
        return twiml(response)
    _main_menu(response)
    return twiml(response)


@app.route("/voice/main/billing", methods=["POST"])
@validate_twilio_request
def billing_result():
    if request.form.get("DialCallStatus") == "completed":
        return _goodbye(VoiceResponse())
    response = VoiceResponse()
    _voicemail(response)
    return twiml(response)


@app.route("/voice/main/voicemail", methods=["POST"])
@validate_twilio_request
def voicemail_result():
    response = VoiceResponse()
    if not request.form.get("RecordingUrl"):
        return _goodbye(response)
    seconds = request.form.get("RecordingDuration", "0")
    response.say(f"Thank you, we got your {seconds} second message.", **VOICE)
    return _goodbye(response)
