"""The browsers that watch the face: one latest-wins mailbox each, capped in all and per
address, and the one thing a page may say (where its camera sees the user's face).

Why caps: viewers need no credential (unless ``phone.face_needs_token``), so they are capped in
all and per address, leaving the rest of the server's connections to those that need a
credential (the phone's audio).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Collection

from starlette.websockets import WebSocket

from face.config import FaceConfig
from track2_voice.common.web import Mailbox

WS_PATH = "/ws/face"
NOT_GAZE = object()  # what a page said that is not a gaze (ignored)


class Viewer:
    """One browser: a latest-wins mailbox and the task that sends it."""

    __slots__ = ("ws", "out", "task", "address", "may_tell")

    def __init__(self, ws: WebSocket, address: str, may_tell: bool = False) -> None:
        self.ws = ws
        self.out: Mailbox[str] = Mailbox(1)
        self.task: asyncio.Task | None = None
        self.address = address  # track2_voice.common.limits.address_key of the peer
        self.may_tell = may_tell  # opened with the access token: its gaze reaches the creature


def viewer_refusal(viewers: Collection[Viewer], cfg: FaceConfig, address: str) -> str | None:
    """Why a new viewer from ``address`` may not watch now, if it may not."""
    if len(viewers) >= cfg.max_viewers:
        return f"{WS_PATH}: {cfg.max_viewers} viewers (face.max_viewers)"
    mine = sum(1 for c in viewers if c.address == address)
    if mine >= cfg.max_viewers_per_address:
        return (
            f"{WS_PATH}: {cfg.max_viewers_per_address} viewers from one address "
            "(face.max_viewers_per_address)"
        )
    return None


def gaze_of(text: str) -> tuple[float, float] | None | object:
    """A page's gaze: ``{"type": "gaze", "x": X, "y": Y}`` -> (x, y) clamped to -1..1; null x
    and y: None (no face). Anything else is ``NOT_GAZE``: the page is a renderer and has
    nothing else to say."""
    try:
        m = json.loads(text)
        if not isinstance(m, dict) or m.get("type") != "gaze":
            return NOT_GAZE
        x, y = m.get("x"), m.get("y")
        if x is None and y is None:
            return None
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            return NOT_GAZE
        return (max(-1.0, min(1.0, x)), max(-1.0, min(1.0, y)))
    except (ValueError, TypeError):
        return NOT_GAZE
