"""Where the phone sends a request, and the URL it signs: not the same when it calls a server directly
that Twilio reaches through a public address (`python -m ivr phone --url ... --public-url ...`)."""

from __future__ import annotations

__all__ = ["Addresses"]


class Addresses:
    """The phone's base URL (where requests go) and the public base URL Twilio would call (what it signs)."""

    def __init__(self, base_url: str, public_url: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.public_url = (public_url or self.base_url).rstrip("/")

    def sent_to(self, url: str) -> str:
        """Where to send a request for `url`: a URL under the public base goes to the same path under the base URL.

        A server with IVR_PUBLIC_URL writes absolute public URLs into its TwiML; the phone follows them
        to the server it was pointed at, as the public address would route them.
        """
        return self.base_url + url[len(self.public_url) :] if _under(url, self.public_url) else url

    def signed_for(self, url: str) -> str:
        """The URL Twilio would have called for `url`, which its signature covers."""
        return self.public_url + url[len(self.base_url) :] if _under(url, self.base_url) else url


def _under(url: str, base: str) -> bool:
    # Only at a path boundary: https://ivr.example.com must not claim https://ivr.example.com.evil/.
    return url == base or url.startswith((base + "/", base + "?"))
