"""Hooks of the example flows: stand-ins for a customer database and a mailbox.

`python app.py` imports this file because it sits beside the flows (or set IVR_HOOKS to a module
of your own). Replace the bodies with calls to your systems; keep them well under IVR_HOOK_TIMEOUT.
"""

import logging

from ivr import hook

log = logging.getLogger("flows.hooks")

CUSTOMERS = {"+15551230000": {"name": "Ada"}}
BALANCES = {"123456": "42.50", "654321": "0.00"}


@hook
def lookup_caller(ctx):
    """Greet known callers by name."""
    customer = CUSTOMERS.get(ctx.call.get("From", ""))
    if customer is None:
        return {"outcome": "not_found"}
    return {"outcome": "found", "vars": {"name": customer["name"]}}


@hook
def account_balance(ctx):
    """The balance of the account number the caller entered."""
    balance = BALANCES.get(str(ctx.vars.get("account", "")))
    if balance is None:
        return {"outcome": "not_found"}
    return {"outcome": "found", "vars": {"balance": balance}}


# PINs by account number, or by phone number for the reminder's cancellations.
PINS = {"123456": "1234", "654321": "4321", "+15551230000": "2468"}


@hook
def check_pin(ctx):
    """Run inside the `pin` subflow: it sees the subflow's variables (account, pin), not its caller's."""
    expected = PINS.get(str(ctx.vars.get("account", "")))
    return {"outcome": "ok" if expected is not None and str(ctx.vars.get("pin")) == expected else "wrong"}


@hook
def deliver_voicemail(ctx):
    """Hand a voicemail to the team; called again when its transcription arrives."""
    message = ctx.message
    text = (message.get("transcription") or {}).get("text") or "(transcription pending)"
    kind = "transcription of" if message["update"] else "new"
    log.info(
        "%s voicemail from %s, %s s: %s %s",
        kind,
        message.get("from"),
        message.get("duration"),
        message.get("url"),
        text,
    )


ORDERS = {"12345": "shipped on Monday, arriving Thursday", "54321": "being packed"}


@hook
def order_status(ctx):
    """A tool of the assistant's agent (flows/assistant.yaml): the status of an order, by its number."""
    order = str((ctx.vars.get("args") or {}).get("order", ""))
    status = ORDERS.get(order)
    if status is None:
        return {"outcome": "not_found"}
    return {"outcome": "found", "vars": {"order": order, "status": status}}
