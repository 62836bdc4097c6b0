"""The Flask adapter: create_app and the routes Twilio, the browser phone and other systems call."""

from ivr.web.app import create_app, replay_target

__all__ = ["create_app", "replay_target"]
