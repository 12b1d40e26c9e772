"""Compose face states from the fast loop's events. Small and replaceable on purpose.

Without a slow loop the emotion is "neutral"; with one, its ``face_state(frame)`` (state machine
+ affect: emotion, valence, arousal) composes each message instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from track2_voice.events import Event, EventHub, FrameEvent, SubscriberThread

log = logging.getLogger(__name__)

SPEAKING_MOUTH = 0.05  # a mouth above this counts as speaking
TEXT_RECENT_S = 0.4  # a text piece this recent counts as speaking (words lead the audio)
WAIT_S = 0.25  # how long the bridge thread waits for an event before checking for stop
QUEUE_SIZE = 32
KINDS = {"frame", "connected", "disconnected", "loop_stopped"}


class Publisher(Protocol):
    def publish(self, state: dict[str, Any]) -> None: ...


def compose_face_state(
    ev: FrameEvent, last_text_t: float | None, connected: bool, emotion: str = "neutral"
) -> dict[str, Any]:
    """One face message for one frame (the face contract: emotion, mouth, speaking + extras)."""
    text_recent = last_text_t is not None and ev.t - last_text_t <= TEXT_RECENT_S
    mouth = min(1.0, max(0.0, float(ev.mouth)))
    return {
        "emotion": emotion,
        "mouth": round(mouth, 4),
        "speaking": mouth > SPEAKING_MOUTH or text_recent,
        "listening": bool(ev.user_speaking),
        "connected": connected,
        "t": round(ev.t, 4),
    }


class FaceBridge(SubscriberThread):
    """Consumes the hub on its own thread and publishes one face state per frame."""

    def __init__(
        self,
        hub: EventHub,
        face: Publisher,
        compose: Callable[[FrameEvent], dict[str, Any]] | None = None,
    ) -> None:
        self.face = face
        self.compose = compose
        self.connected = True
        self.last_text_t: float | None = None
        self.sent = 0
        super().__init__(hub, "face", QUEUE_SIZE, KINDS, WAIT_S)

    def handle(self, ev: Any) -> dict[str, Any] | None:
        """Update the bridge's memory with one event; return the state to publish, if any."""
        if ev.kind == "connected":
            self.connected = True
        elif ev.kind == "disconnected":
            self.connected = False
        elif ev.kind == "frame":
            if ev.text:
                self.last_text_t = ev.t
            if self.compose is not None:
                return self.compose(ev)
            return compose_face_state(ev, self.last_text_t, self.connected)
        return None

    def consume(self, events: list[Event]) -> None:
        # publish only the newest frame if several queued up: the face wants the latest
        state = None
        for e in events:
            state = self.handle(e) or state
        if state is not None:
            try:
                self.face.publish(state)
                self.sent += 1
            except Exception as e:  # a bad state must not kill the bridge
                log.warning("face state not published: %s", e)

    def close(self) -> None:
        self.stop()
