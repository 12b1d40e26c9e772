"""The access token in the phone URL: made once, kept between runs, checked on every connection.

Why keep it: a phone that bookmarked the URL (or the page that survives a server restart) keeps
working; anyone else on the LAN without the URL cannot use the creature's ears.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from face.state_files import load_or_make_secret
from track2_voice.common.web import CloseCode, token_ok

TOKEN_NAME = "phone-token"
TOKEN_BYTES = 16


def load_or_make_token(state_dir: str | Path, name: str = TOKEN_NAME) -> str:
    """The token kept in ``state_dir/name``; made (random, mode 0600) when missing."""
    return load_or_make_secret(state_dir, name, TOKEN_BYTES)


class TokenGate:
    """ASGI middleware: the face page and its state stream need ``?token=`` (static files,
    which hold no secrets, stay open so the page can load them)."""

    def __init__(self, app, token: str, paths: tuple[str, ...] = ("/", "/ws/face")) -> None:
        self.app = app
        self.token = token
        self.paths = paths

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"] in self.paths:
            qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (qs.get("token") or [None])[0]
            if not token_ok(given, self.token):
                if scope["type"] == "websocket":
                    await send(
                        {
                            "type": "websocket.close",
                            "code": CloseCode.UNAUTHORIZED,
                            "reason": "bad token",
                        }
                    )
                    return
                body = b"this creature's face needs the access token from its URL\n"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
