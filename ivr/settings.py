"""Settings: defaults in code, then the environment, then the dict given to `create_app`.

Keys are the environment variables' names; the README's table lists every one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from urllib.parse import urlsplit

from ivr.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "ENVIRONMENTS",
    "LOG_FORMATS",
    "MEMORY_STORE_ENVS",
    "NUMBER_POLICIES",
    "REPORTS_TOKEN_IS_API_TOKEN",
    "load_settings",
    "log_format",
    "production_problems",
    "shared_keys",
    "unwritable",
]

ENVIRONMENTS = ("development", "production", "test")
# Where memory:// may hold sessions: lost on restart, never shared between processes.
MEMORY_STORE_ENVS = ("development", "test")
DEFAULT_SPOOL_DIR = "instance/spool"
LOG_FORMATS = ("text", "json")

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
    "TWILIO_WEBHOOK_SHARED_KEYS": None,
    "TWILIO_FROM_NUMBER": None,
    "IVR_TIMEZONE": "UTC",
    "IVR_API_TOKEN": None,
    "IVR_HOOKS": None,
    "IVR_SCHEDULES": None,
    "IVR_HOOK_TIMEOUT": "3",
    "IVR_HTTP_SECRETS": None,  # names of environment variables HTTP steps may send
    "IVR_HOT_RELOAD": None,  # on in development
    "IVR_PHONE": None,  # on in development
    "IVR_RECORD_DIR": None,
    "IVR_MASK_NUMBERS": "0",
    "IVR_PCI_MODE": "0",  # Twilio's PCI mode is on for the account: no transcriptions
    "IVR_CALL_HOURS": None,
    "IVR_REDIS_PREFIX": "ivr:",
    "IVR_SPOOL_DIR": "instance/spool",
    "IVR_LOG_FORMAT": "text",
    "IVR_METRICS_TOKEN": None,
    "IVR_EVENTS": "sqlite:///instance/ivr-events.sqlite3",
    "IVR_EVENTS_RETENTION_DAYS": "90",
    "IVR_ANALYTICS_KEY": None,
    "IVR_ANALYTICS_NUMBERS": "hash",
    "IVR_REPORTS_TOKEN": None,
    "IVR_AGENT_BASE_URL": None,  # an OpenAI-compatible chat completions API, such as https://api.openai.com/v1
    "IVR_AGENT_MODEL": None,
    "IVR_AGENT_API_KEY": None,  # never logged, never in a message
    "IVR_AGENT_SOCKETS": "16",  # conversations a worker holds at once (each holds one of its threads)
}
# IVR_ANALYTICS_NUMBERS: callers' numbers in the journal as keyed hashes (the default), kept as they are,
# or dropped (no caller at all: no repeat-caller figure, nothing for forget-caller to find).
NUMBER_POLICIES = ("hash", "keep", "drop")
REPORTS_TOKEN_IS_API_TOKEN = (
    "IVR_REPORTS_TOKEN is the same as IVR_API_TOKEN: whoever reads the reports could place calls. Give the "
    "reports page a token of its own (python -c 'import secrets; print(secrets.token_urlsafe(32))')."
)
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
    settings["TWILIO_WEBHOOK_SHARED_KEYS"] = shared_keys(settings["TWILIO_WEBHOOK_SHARED_KEYS"])
    settings["IVR_LOG_FORMAT"] = log_format(settings["IVR_LOG_FORMAT"])
    settings["IVR_MASK_NUMBERS"] = _flag(settings, "IVR_MASK_NUMBERS")
    settings["IVR_PCI_MODE"] = _flag(settings, "IVR_PCI_MODE")
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
    _analytics(settings)
    _agent(settings)
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


def _analytics(settings: dict) -> None:
    """The journal's settings checked: IVR_EVENTS (`off` keeps none), retention days, the number policy."""
    events = (settings["IVR_EVENTS"] or "off").strip()
    settings["IVR_EVENTS"] = None if events.lower() in ("off", "0", "none") else events
    if settings["IVR_EVENTS"] and not events.startswith(("sqlite:///", "postgresql://", "postgres://")):
        shown = events.split("://", 1)[0] + "://..." if "://" in events else repr(events)
        raise ConfigError(
            f"IVR_EVENTS={shown} is not a journal URL; use sqlite:///relative/path, sqlite:////absolute/path, "
            "postgresql://user@host:port/database, or off"
        )
    try:
        days = int(settings["IVR_EVENTS_RETENTION_DAYS"])
        if days < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(
            f"IVR_EVENTS_RETENTION_DAYS={settings['IVR_EVENTS_RETENTION_DAYS']!r}: give whole days, at least 1 "
            "(journal rows older than this are purged)"
        ) from None
    settings["IVR_EVENTS_RETENTION_DAYS"] = days
    policy = (settings["IVR_ANALYTICS_NUMBERS"] or "hash").strip().lower()
    if policy not in NUMBER_POLICIES:
        raise ConfigError(
            f"IVR_ANALYTICS_NUMBERS={settings['IVR_ANALYTICS_NUMBERS']!r} is not one of {', '.join(NUMBER_POLICIES)}: "
            "hash keeps callers as keyed hashes (the default), keep stores their numbers, drop keeps no caller"
        )
    settings["IVR_ANALYTICS_NUMBERS"] = policy


def _agent(settings: dict) -> None:
    """The agent model's settings checked: an http(s) base URL without credentials, a key fit for a header.
    No message shows the key (nor a password in the URL)."""
    base = (settings["IVR_AGENT_BASE_URL"] or "").strip()
    model = (settings["IVR_AGENT_MODEL"] or "").strip()
    key = (settings["IVR_AGENT_API_KEY"] or "").strip()
    settings["IVR_AGENT_BASE_URL"], settings["IVR_AGENT_MODEL"] = base or None, model or None
    settings["IVR_AGENT_API_KEY"] = key or None
    example = "such as https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama) or http://127.0.0.1:8000/v1 (vLLM)"
    if base:
        parts = urlsplit(base)
        if parts.username is not None or parts.password is not None:
            raise ConfigError(
                f"IVR_AGENT_BASE_URL ({parts.scheme}://...@{parts.hostname}) carries credentials: give the URL "
                "without them and the key in IVR_AGENT_API_KEY"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(
                f"IVR_AGENT_BASE_URL ({_shown_base(parts)}) is not an http(s) base URL of an OpenAI-compatible chat "
                "completions "
                f"API: give the part before /chat/completions, {example}"
            )
    else:
        for name, value in (("IVR_AGENT_MODEL", model), ("IVR_AGENT_API_KEY", key)):
            if value:
                raise ConfigError(
                    f"{name} is set without IVR_AGENT_BASE_URL: set IVR_AGENT_BASE_URL to the API's base URL, {example}"
                )
    if key and not (key.isascii() and key.isprintable()):
        raise ConfigError(
            "IVR_AGENT_API_KEY holds characters an HTTP header cannot carry (not shown): give the key exactly as "
            "the provider issued it"
        )


def _shown_base(parts) -> str:
    """A base URL as a message may show it: scheme, host and path; never a query or fragment (a key may sit there)."""
    hidden = "?..." if parts.query else ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{parts.hostname or ''}{parts.path}{hidden}{'#...' if parts.fragment else ''}"


def shared_keys(value: str | dict | None) -> dict[str, str]:
    """TWILIO_WEBHOOK_SHARED_KEYS read: `keyId=secret` pairs, comma-separated, as {key id: secret} (two while a
    Webhook Rule rotates from one SharedKey to the next; each request's X-Twilio-Webhooks-Signature-Settings
    names the key that signed it)."""
    if isinstance(value, dict):
        return value
    keys: dict[str, str] = {}
    for part in (value or "").split(","):
        if not part.strip():
            continue
        key, sep, secret = part.partition("=")
        if not sep or not key.strip() or not secret.strip():
            shown = key.strip() if sep else "..."  # never the secret
            raise ConfigError(
                f"TWILIO_WEBHOOK_SHARED_KEYS: {shown!r} is not keyId=secret; give each Webhooks SharedKey as its "
                "id, '=', and the secret Twilio returned when the key was made, separated by commas"
            )
        keys[key.strip()] = secret.strip()
    return keys


def log_format(value: str | None) -> str:
    """IVR_LOG_FORMAT checked: `text` (unset or empty too) or `json`; read by the app and gunicorn's config alike."""
    text = (value or "text").strip().lower()
    if text not in LOG_FORMATS:
        raise ConfigError(
            f"IVR_LOG_FORMAT={value!r} is not one of {', '.join(LOG_FORMATS)}: "
            "use json for one JSON object per log line, text (the default) for plain lines"
        )
    return text


def production_problems(settings: Mapping) -> list[str]:
    """Every missing or inconsistent production setting, each saying what to set (empty when all is well)."""
    problems = []
    if not settings.get("TWILIO_AUTH_TOKEN"):
        problems.append(
            "TWILIO_AUTH_TOKEN is not set: in production every webhook must carry a valid X-Twilio-Signature. "
            "Set TWILIO_AUTH_TOKEN to your account's auth token (or IVR_ENV=development on your own machine)."
        )
    public = settings.get("IVR_PUBLIC_URL")
    if not public:
        problems.append(
            "IVR_PUBLIC_URL is not set: in production signatures are checked against the URL Twilio calls, never "
            "the request's Host header. Set IVR_PUBLIC_URL to it, such as https://ivr.example.com."
        )
    else:
        parts = urlsplit(public)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            problems.append(
                f"IVR_PUBLIC_URL={public!r} is not an absolute http(s) base URL: set it to the scheme, host and "
                "optional path prefix Twilio calls, such as https://ivr.example.com/ivr (no query, no fragment)."
            )
    if (settings.get("IVR_STORE") or "") == "memory://":
        problems.append(
            "IVR_STORE=memory:// loses every call's session on restart and shares none between workers: "
            "set IVR_STORE=sqlite:///instance/ivr.sqlite3 (one machine) or redis://host:6379/0 (several)."
        )
    spool = settings.get("IVR_SPOOL_DIR") or DEFAULT_SPOOL_DIR
    why = unwritable(spool)
    if why:
        problems.append(
            f"IVR_SPOOL_DIR={spool!r} is not writable ({why}): callbacks are kept there until the store "
            "has them. Set IVR_SPOOL_DIR to a directory on a persistent disk that the app can write."
        )
    if settings.get("IVR_EVENTS") and not settings.get("IVR_ANALYTICS_KEY"):
        problems.append(
            "IVR_ANALYTICS_KEY is not set: the call journal keeps callers as keyed hashes of their numbers, and "
            "the key must outlive this server. Set IVR_ANALYTICS_KEY to a long random secret (python -c "
            "'import secrets; print(secrets.token_hex(32))'), or IVR_EVENTS=off to keep no journal."
        )
    if settings.get("IVR_REPORTS_TOKEN") and settings.get("IVR_REPORTS_TOKEN") == settings.get("IVR_API_TOKEN"):
        problems.append(REPORTS_TOKEN_IS_API_TOKEN)
    if bool(settings.get("TWILIO_API_KEY")) != bool(settings.get("TWILIO_API_SECRET")):
        given, missing = (
            ("TWILIO_API_KEY", "TWILIO_API_SECRET")
            if settings.get("TWILIO_API_KEY")
            else ("TWILIO_API_SECRET", "TWILIO_API_KEY")
        )
        problems.append(f"{given} is set without {missing}: set both (an API key and its secret), or neither.")
    return problems


def unwritable(directory: str | os.PathLike[str]) -> str | None:
    """Why `directory` cannot be created and written, or None when a file could be written there."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _flag(settings: dict, key: str) -> bool:
    value = settings[key]
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ConfigError(f"{key}={value!r}: use 1 or 0 (true/false, on/off)")
