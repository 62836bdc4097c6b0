"""Outbound calls and texts through Twilio's REST API, campaigns, and the Twilio client factory."""
