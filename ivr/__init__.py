"""ivr: a code-first interactive voice menu for Twilio, with flows written in YAML."""

from ivr.core.engine import Engine, Step
from ivr.core.loader import load_flow, load_flows
from ivr.errors import (
    ConfigError,
    FlowError,
    FlowLoadError,
    FlowRuntimeError,
    IvrError,
    StoreError,
    TwilioCallError,
    WebhookError,
)
from ivr.hooks import HookContext, hook
from ivr.phone import CallError, Phone, PhoneCall, WsgiTransport
from ivr.web import create_app

__all__ = [
    "CallError",
    "ConfigError",
    "Engine",
    "FlowError",
    "FlowLoadError",
    "FlowRuntimeError",
    "HookContext",
    "IvrError",
    "Phone",
    "PhoneCall",
    "Step",
    "StoreError",
    "TwilioCallError",
    "WebhookError",
    "WsgiTransport",
    "create_app",
    "hook",
    "load_flow",
    "load_flows",
]
