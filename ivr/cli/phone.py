"""`python -m ivr phone`: call a flow on the built-in phone in the terminal."""

from __future__ import annotations

import secrets
import shlex
import sys
import urllib.parse

import click

from ivr.cli.base import Command
from ivr.core.flow import DIAL_OUTCOMES, NAME_RE, dial_outcomes
from ivr.core.hints import did_you_mean
from ivr.core.language_switch import matching_language
from ivr.core.loader import find_flow_files
from ivr.core.subflow import stack_of
from ivr.errors import IvrError
from ivr.phone.transport import PHONE_HEADER
from ivr.settings import load_settings
from ivr.web.clock import CLOCK_HEADER, parse_moment
from ivr.web.services import services

__all__ = ["phone"]

HELP_TOKENS = f"""\
  1 / 123# / *     press keys            wait              stay silent
  say:TEXT         speak (quote it: 'say:I want billing'); to an agent, what you say to it
  {", ".join(dial_outcomes(None))}   how a dial ends (or dial:STATUS; answered: a conference)
  accept, accept:KEY   a screened transfer: the answering party accepts with KEY (default 1)
  queue:RESULT     how a queue wait ends (bridged, hangup, ...)
  record:SECONDS   leave a recording (record:0 is an empty one)
  pay:CARD/MMYY/CODE/ZIP   key a payment (<Pay>); or one step's digits, * to stop. Never shown
  hangup           hang up"""


@click.command(cls=Command)
@click.argument("flow")
@click.option("--keys", "script", help='A script instead of typing, e.g. "1 wait 2 busy record:10".')
@click.option("--from", "from_", default="+15551230000", show_default=True, help="The caller's number.")
@click.option("--to", default="+15559870000", show_default=True, help="The number called.")
@click.option("--state", help="Enter the flow at this state instead of its start.")
@click.option("--language", help="Call in this language, of those the flow offers (default: the flow's).")
@click.option("--url", help="Call a running app (e.g. http://127.0.0.1:5000) instead of the flows in-process.")
@click.option("--token", envvar="TWILIO_AUTH_TOKEN", help="Sign requests with this auth token (with --url).")
@click.option(
    "--public-url",
    envvar="IVR_PUBLIC_URL",
    help="With --url: sign for this public base URL, as Twilio does for a server with IVR_PUBLIC_URL "
    "(default: IVR_PUBLIC_URL).",
)
@click.option(
    "--at",
    "at",
    help="Call as if it were this time, e.g. 2026-11-25T10:00-05:00 (with --url: a development server on "
    "this machine).",
)
def phone(
    flow: str,
    script: str | None,
    from_: str,
    to: str,
    state: str | None,
    language: str | None,
    url: str | None,
    token,
    public_url: str | None,
    at: str | None,
) -> None:
    """Call FLOW (a flow id, or a flow file's path) on the built-in phone and hear what a caller hears.

    Type keys, `wait`, `say:TEXT`, a dial outcome, `accept`, `record:SECONDS` or `hangup` at each
    prompt, or give them all at once with --keys. Exit status 1 when the call ends in an error or in
    the flow's error state.
    """
    from ivr.phone import HttpTransport, Phone, WsgiTransport

    app = None
    moment = _moment(at)
    flow, flows_dir = _flow_id(flow)
    if url:
        # The server reads the time from this header only in development, and only from this machine.
        headers = {PHONE_HEADER: "1", **({CLOCK_HEADER: moment.isoformat()} if moment is not None else {})}
        the_phone = Phone(HttpTransport(headers=headers), url.rstrip("/"), auth_token=token, public_url=public_url)
    else:
        app = _local_app(moment, flows_dir)
        if flow not in services(app).flows.engines:
            known = ", ".join(sorted(services(app).flows.engines))
            raise click.BadParameter(f"no flow '{flow}' (flows: {known})", param_hint="FLOW")
        the_phone = Phone(WsgiTransport(app), auth_token=None)
        if state and state not in services(app).flows.flows[flow].states:
            known = ", ".join(sorted(services(app).flows.flows[flow].states))
            raise click.BadParameter(f"flow '{flow}' has no state '{state}' (states: {known})", param_hint="--state")
        offered = tuple(services(app).flows.flows[flow].localized)
        language = (language and matching_language(offered, language)) or language  # es, es-mx: es-MX
        if language and language not in offered:
            known = ", ".join(offered) or "none: it speaks one language"
            raise click.BadParameter(f"flow '{flow}' does not offer '{language}' (languages: {known})",
                                     param_hint="--language")  # fmt: skip
    try:
        tokens = shlex.split(script) if script is not None else None
    except ValueError as exc:
        raise click.BadParameter(f"{exc} in {script!r}", param_hint="--keys") from None
    query = urllib.parse.urlencode({k: v for k, v in (("state", state), ("language", language)) if v})
    target = f"/voice/{flow}" + (f"?{query}" if query else "")
    # A fresh CallSid per call, so recordings (IVR_RECORD_DIR) of several calls never merge.
    call = the_phone.dial(target, from_=from_, to=to, call_sid="CA" + secrets.token_hex(16))
    click.echo(f"Calling {flow} from {from_} (CallSid {call.sid})")
    shown = _show(call, (0, 0), app)  # lines already on the terminal
    while not call.ended:
        if tokens is not None:
            if not tokens:
                click.echo("(script ended; hanging up)")
                call.hangup()
                break
            token_text = tokens.pop(0)
            click.echo(f"> {_shown_token(call, token_text)}")
        else:
            try:
                paying = call.waiting_for == "pay"  # what the caller keys for a payment is never echoed
                token_text = click.prompt(_prompt(call), prompt_suffix="> ", default="wait", show_default=False,
                                          hide_input=paying)  # fmt: skip
            except (EOFError, click.exceptions.Abort):
                click.echo("(input ended; hanging up)")
                call.hangup()
                break
        try:
            _act(call, token_text.strip())
        except (click.BadParameter, IvrError) as exc:
            click.echo(f"  ? {exc}\n{HELP_TOKENS}", err=True)
            if tokens is not None:
                if not call.ended:  # a script that cannot go on hangs up: no call is left open on the app
                    click.echo("(the script cannot go on; hanging up)", err=True)
                    call.hangup()
                raise SystemExit(2) from None
            continue
        shown = _show(call, shown, app)
    if tokens:
        # What was not keyed may be card data (pay:..., a security code): digits are never echoed.
        shown = ["(hidden)" if t.startswith("pay:") or sum(c.isdigit() for c in t) >= 3 else t for t in tokens]
        click.echo(f"(the call ended before: {' '.join(shown)})", err=True)
    sys.exit(_verdict(call, app))


def _flow_id(flow: str) -> tuple[str, str | None]:
    """FLOW's id, and the directory to serve flows from when FLOW is a file's path (None: the settings')."""
    if NAME_RE.match(flow):
        return flow, None
    # A path: found as `check` and `graph` find it; its flow runs beside the flows of its own directory.
    [*found], problems = find_flow_files([flow], load_settings()["IVR_FLOWS_DIR"])
    if problems:
        raise click.BadParameter(problems[0].message, param_hint="FLOW")
    return found[0].stem, str(found[0].parent)


def _local_app(moment=None, flows_dir: str | None = None):
    from ivr.web import create_app

    # IVR_RECORD_DIR, when set, records these calls too: a quick way to make a recorded-call test.
    clock = (lambda: moment) if moment is not None else None
    config = {"IVR_ENV": "test", "IVR_STORE": "memory://", "TWILIO_AUTH_TOKEN": None}
    return create_app({**config, "IVR_FLOWS_DIR": flows_dir} if flows_dir else config, clock=clock)


def _moment(text: str | None):
    """--at: an ISO time with its offset (or Z); scripts that depend on opening hours then always agree."""
    if text is None:
        return None
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


def _prompt(call) -> str:
    return {"gather": "keys", "record": "record", "dial": "dial outcome", "enqueue": "queue result",
            "pay": "payment, hidden (pay:CARD/MMYY/CODE/ZIP, a step's digits, * to stop)",
            "agent": "to the agent (say:TEXT, keys, hangup)"}.get(
        call.waiting_for or "", "action"
    )  # fmt: skip


def _shown_token(call, token: str) -> str:
    """A script's token as echoed: what is keyed for a payment never is."""
    if token.startswith("pay:") or (call.waiting_for == "pay" and token not in ("hangup", "wait")):
        return "(payment details, hidden)"
    return token


def _act(call, token: str) -> None:
    word, _, arg = token.partition(":")
    if call.waiting_for == "pay" or word == "pay":
        return _pay(call, token)
    if call.waiting_for == "agent" and token == "wait":  # the agent answers only what is said to it
        raise click.BadParameter("an agent waits for you to talk: say:TEXT, keys (as dtmf) or hangup")
    if token == "wait":
        call.wait()
    elif token == "hangup":
        call.hangup()
    elif word == "say" and arg:
        call.say(arg)
    elif word == "record":
        seconds = int(arg) if arg else 5
        call.record_nothing() if seconds == 0 else call.record(seconds)
    elif word == "dial" or token in DIAL_OUTCOMES:
        call.dial_result(arg or token)
    elif word == "accept":  # a screened transfer: the answering party presses the key
        call.dial_result("completed", screen=arg or "1")
    elif word == "queue" and arg:
        call.queue_result(arg)
    elif token and all(ch in "0123456789*#" for ch in token):
        call.press(token)
    else:
        hint = did_you_mean(token, (*DIAL_OUTCOMES, "wait", "hangup", "record", "say:", "queue:", "accept", "accept:"))
        raise click.BadParameter(f"'{token}' is not something a caller can do{hint}")


def _pay(call, token: str) -> None:
    """A payment's details: pay:CARD/MMYY/CODE/ZIP, or one step's digits (never repeated in a message)."""
    word, _, arg = token.partition(":")
    if token == "hangup":
        return call.hangup()
    if token == "wait":  # nothing keyed: the step times out, as on Twilio
        return call.pay_keys("")
    if word == "pay" and arg:
        parts = [part or None for part in arg.split("/")]
        if len(parts) > 4:
            raise click.BadParameter("pay: takes CARD/MMYY/CODE/ZIP (the number, expiry, security code, zip)")
        return call.pay(*parts)
    if token and all(ch in "0123456789*#" for ch in token):
        return call.press(token)
    raise click.BadParameter("a payment takes pay:CARD/MMYY/CODE/ZIP, one step's digits, * to stop, or hangup")


def _show(call, shown: tuple[int, int], app=None) -> tuple[int, int]:
    """Echo what was heard after the `shown` (caller's, answering party's) lines, and where the call is."""
    # A screened transfer's answering party hears its whisper before the caller hears what follows.
    for whispered in call.whisper[shown[1] :]:
        click.echo(f"  (answering party hears) {whispered}")
    for heard in call.transcript[shown[0] :]:
        if heard.kind == "say":
            click.echo(f"  {heard.text}")
        elif heard.kind == "play":
            click.echo(f"  (plays {heard.text})")
        elif heard.kind == "note":  # e.g. [recording started]
            click.echo(f"  {heard.text}")
        else:
            click.echo(f"  (pause {heard.text}s)")
    if call.ended:
        reason = call.end_reason + (f" ({call.reject_reason})" if call.reject_reason else "")
        click.echo(f"Call ended: {reason}")
    else:
        click.echo(f"  [{_stack(call, app)}{call.flow}/{call.state} waits for {call.waiting_for}]")
    return len(call.transcript), len(call.whisper)


def _stack(call, app) -> str:
    """Inside a subflow, the calling states before where the call is: `accounts/verify_pin > ` (in-process only)."""
    if app is None:
        return ""
    frames = stack_of(services(app).store.get(call.sid) or {})
    return "".join(f"{frame['flow']}/{frame['state']} > " for frame in frames)


def _verdict(call, app) -> int:
    if call.error is not None:
        click.echo(f"Error {call.error.code}: {call.error.message}", err=True)
        return 1
    if app is not None:
        session = services(app).store.get(call.sid) or {}
        flow = services(app).flows.flows.get(session.get("flow", ""))
        if flow is not None and flow.error_state and session.get("state") == flow.error_state:
            click.echo(f"The call ended in the flow's error state '{flow.error_state}'.", err=True)
            return 1
    return 0
