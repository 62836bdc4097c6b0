"""Settings: defaults in code, then the environment, then the dict given to `create_app`.

Keys are the environment variables' names; the README's table lists every one.
"""

from __future__ import annotations

import os

from ivr.errors import ConfigError

__all__ = ["DEFAULTS", "ENVIRONMENTS", "load_settings"]

ENVIRONMENTS = ("development", "production", "test")

DEFAULTS: dict[str, str | None] = {
    "IVR_ENV": "production",
    "IVR_FLOWS_DIR": "flows",
    "IVR_STORE": "sqlite:///instance/ivr.sqlite3",
    "IVR_PUBLIC_URL": None,
    "IVR_TRUSTED_PROXIES": "0",
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_API_KEY": None,
    "TWILIO_API_SECRET": None,
    "TWILIO_FROM_NUMBER": None,
    "IVR_TIMEZONE": "UTC",
    "IVR_API_TOKEN": None,
    "IVR_HOOKS": None,
    "IVR_SCHEDULES": None,
    "IVR_HOOK_TIMEOUT": "3",
    "IVR_HOT_RELOAD": None,  # on in development
    "IVR_PHONE": None,  # on in development
    "IVR_RECORD_DIR": None,
    "IVR_MASK_NUMBERS": "0",
    "IVR_CALL_HOURS": None,
    "IVR_REDIS_PREFIX": "ivr:",
    "IVR_SPOOL_DIR": "instance/spool",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def load_settings(config: dict | None = None, environ: dict | None = None) -> dict:
    """Merge defaults, environment and `config`; check the values and say how to fix a bad one."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for key in DEFAULTS:
        if environ.get(key):
            settings[key] = environ[key]
    settings.update(config or {})
    if settings["IVR_ENV"] not in ENVIRONMENTS:
        raise ConfigError(f"IVR_ENV={settings['IVR_ENV']!r} is not one of {', '.join(ENVIRONMENTS)}")
    try:
        hops = int(settings["IVR_TRUSTED_PROXIES"] or 0)
        if hops < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"IVR_TRUSTED_PROXIES={settings['IVR_TRUSTED_PROXIES']!r}: give the number of proxies in front "
            "of the app (0 when Twilio reaches it directly)"
        ) from None
    settings["IVR_TRUSTED_PROXIES"] = hops
    settings["IVR_MASK_NUMBERS"] = _flag(settings, "IVR_MASK_NUMBERS")
    for key in ("IVR_HOT_RELOAD", "IVR_PHONE"):
        settings[key] = settings["IVR_ENV"] == "development" if settings[key] is None else _flag(settings, key)
    try:
        settings["IVR_HOOK_TIMEOUT"] = float(settings["IVR_HOOK_TIMEOUT"])
        if not 0 < settings["IVR_HOOK_TIMEOUT"] <= 10:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"IVR_HOOK_TIMEOUT={settings['IVR_HOOK_TIMEOUT']!r}: give seconds above 0 and at most 10 "
            "(Twilio waits 15 s for the whole webhook)"
        ) from None
    public = settings["IVR_PUBLIC_URL"]
    if public and not public.startswith(("http://", "https://")):
        raise ConfigError(f"IVR_PUBLIC_URL={public!r} must start with https:// or http:// (the URL Twilio calls)")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(settings["IVR_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"IVR_TIMEZONE={settings['IVR_TIMEZONE']!r} is not a time zone; use an IANA name such as Europe/London"
        ) from None
    return settings


def _flag(settings: dict, key: str) -> bool:
    value = settings[key]
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(f"{key}={value!r}: use 1 or 0 (true/false, on/off)")
