"""Who may use the telephone bridge: a carrier's signature over the URL it called, or the
creature's own token.

The webhook needs a valid ``X-Twilio-Signature`` (HMAC-SHA1 of the URL and the form with the
account's auth token, checked by the ``twilio`` package's validator) or the creature's token
(``?token=`` or a Bearer header: tests, other carriers). A signature covers the URL as the
carrier sent it, so the URL is rebuilt from what the bridge trusts, never from what any client
may claim (``public_url``).
"""

from __future__ import annotations

import os
from typing import Any

from face.phone.stream_tickets import StreamTickets
from face.phone.telephony_config import TelephonyConfig
from track2_voice.common.web import bearer, token_ok

AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"
SIGNATURE_HEADER = "x-twilio-signature"
_HTTP_OF = {"ws": "http", "wss": "https"}


class CallerCheck:
    """The bridge's credentials: the carrier account's auth token (``TWILIO_AUTH_TOKEN`` or
    ``telephony.twilio_auth_token``; without it no signature is valid) and the creature's."""

    def __init__(self, cfg: TelephonyConfig, token: str) -> None:
        self.cfg = cfg
        self.token = token
        self.auth_token = os.environ.get(AUTH_TOKEN_ENV) or cfg.twilio_auth_token
        self.validator = None
        if self.auth_token:
            from twilio.request_validator import RequestValidator

            self.validator = RequestValidator(self.auth_token)

    def public_url(self, scope: Any, headers: Any, websocket: bool) -> str:
        """The URL as the carrier sent it (what it signed): the configured public address; the
        Host and X-Forwarded-Proto a tunnel passes on, only if ``trust_forwarded_headers`` (a
        client sending them directly could make a signature for another host of the same
        account pass); else the bridge's own address, which no carrier signs."""
        scheme = _HTTP_OF.get(scope["scheme"], scope["scheme"])
        if self.cfg.public_url:
            base = self.cfg.public_url
        elif self.cfg.trust_forwarded_headers:
            proto = headers.get("x-forwarded-proto") or scheme
            proto = _HTTP_OF.get(proto, proto)
            base = f"{proto}://{headers.get('host') or _server(scope)}"
        else:
            base = f"{scheme}://{_server(scope)}"
        if websocket:
            base = "ws" + base[4:] if base.startswith("http") else base
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{base}{scope['path']}{'?' + query if query else ''}"

    def signed(self, url: str, params: dict[str, str], signature: str | None) -> bool:
        if self.validator is None or not signature:
            return False
        try:
            return bool(self.validator.validate(url, params, signature))
        except Exception:  # a malformed signature is a wrong one
            return False

    def webhook_credential(
        self, url: str, form: dict[str, str], query: Any, headers: Any
    ) -> tuple[str | None, str]:
        """How a webhook request proved itself (``twilio-signature``, ``token``), or None and
        why not."""
        if self.signed(url, form, headers.get(SIGNATURE_HEADER)):
            return "twilio-signature", ""
        if self.own_token(query, headers):
            return "token", ""
        if headers.get(SIGNATURE_HEADER):
            return None, "bad or missing X-Twilio-Signature"
        return None, "no X-Twilio-Signature and no token"

    def own_token(self, query: Any, headers: Any) -> bool:
        return self.is_token(query.get("token") or bearer(headers))

    def start_credential(
        self, upgrade: str | None, given: str | None, call_sid: str, tickets: StreamTickets
    ) -> str | None:
        """How a stream proved itself, or None: the token on its upgrade (``upgrade``); else
        what its ``start`` carries (``given``) must be this call's unspent ticket (or the
        creature's token), with or without a signature (which alone is replayable)."""
        if upgrade == "token":
            return upgrade
        if tickets.redeem(given, call_sid):
            return upgrade or "ticket"
        if self.is_token(given):
            return upgrade or "stream-parameter"
        return None

    def is_token(self, given: str | None) -> bool:
        """Constant-time; any text (a lone surrogate from JSON included) is a wrong token."""
        return bool(given) and token_ok(given, self.token)


def _server(scope: Any) -> str:
    """host:port the bridge listens on (from the socket, not from any header)."""
    server = scope.get("server") or ("127.0.0.1", 0)
    host, port = server[0], server[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
