"""Connects a telephone call to a voice session, on the creature's I/O loop: the caller's
audio feeds the fast loop's clock (like the phone page), every frame the loop makes goes to the
caller, and when the caller starts talking over the creature its queued voice is cleared.

The bridge is served on its own port (``telephony.port``): a tunnel or a public host exposes
it to the carrier without exposing the face or the robot channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from face.phone.access import load_or_make_token
from face.phone.telephony import TOKEN_PARAMETER, TelephonyBridge, bridge_server
from face.phone.twilio_protocol import StartMsg
from orchestrator.brain.speaking import SpeakingDetector
from orchestrator.bus import Bus, Subscription
from orchestrator.runtime.phone_call_events import (
    PhoneCallCleared,
    PhoneCallDtmf,
    PhoneCallEnded,
    PhoneCallRefused,
    PhoneCallStarted,
)
from orchestrator.runtime.phone_link import phone_dir
from orchestrator.runtime.session_host import SessionHost
from track2_voice.audio.devices import ClockSource
from track2_voice.common.errors import ConfigError
from track2_voice.common.web import AppServer, bind_socket
from track2_voice.events import FrameEvent, UserSpeechStarted

log = logging.getLogger(__name__)

TOKEN_FILE = "telephony-token"
QUEUE_FRAMES = 16  # frames waiting for the bridge before the oldest is dropped


class BusObserver:
    """The bridge's reports as typed events on the bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.frame = -1  # the newest frame the link has seen, to place the events

    def _at(self) -> dict[str, Any]:
        return {"index": self.frame, "t": time.monotonic()}

    def call_started(self, start: StartMsg, via: str) -> None:
        params = {k: v for k, v in start.custom_parameters.items() if k != TOKEN_PARAMETER}
        self.bus.publish(
            PhoneCallStarted(
                call_sid=start.call_sid,
                stream_sid=start.stream_sid,
                via=via,
                parameters=params,
                **self._at(),
            )
        )

    def call_ended(self, start: StartMsg, reason: str, stats: dict[str, Any]) -> None:
        self.bus.publish(
            PhoneCallEnded(
                call_sid=start.call_sid,
                stream_sid=start.stream_sid,
                reason=reason,
                extra=stats,
                **self._at(),
            )
        )

    def dtmf(self, start: StartMsg, digit: str) -> None:
        self.bus.publish(PhoneCallDtmf(call_sid=start.call_sid, digit=digit, **self._at()))

    def cleared(self, start: StartMsg, dropped_ms: float, marks_pending: int) -> None:
        self.bus.publish(
            PhoneCallCleared(
                call_sid=start.call_sid,
                dropped_ms=dropped_ms,
                marks_pending=marks_pending,
                **self._at(),
            )
        )

    def refused(self, where: str, peer: str, reason: str) -> None:
        self.bus.publish(PhoneCallRefused(where=where, peer=peer, reason=reason, **self._at()))


async def telephony_link(sub: Subscription, bridge: TelephonyBridge, observer: BusObserver) -> None:
    """Every frame to the caller; a barge-in (the caller starts talking while the creature
    speaks) clears the creature's queued voice."""
    speaking = SpeakingDetector()
    while True:
        for e in await sub.get_batch():
            if isinstance(e, FrameEvent):
                observer.frame = e.index
                speaking.update(e)
                if e.pcm is not None:
                    bridge.send_frame(e.index, e.pcm)
            elif isinstance(e, UserSpeechStarted):
                if bridge.cfg.clear_on_barge_in and speaking.speaking:
                    await bridge.clear()


@dataclass
class TelephonyRuntime:
    bridge: TelephonyBridge
    server: AppServer
    url: str  # where the bridge listens
    tasks: list[asyncio.Task] = field(default_factory=list)
    subs: list = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # for the person starting it (printed)

    @property
    def port(self) -> int:
        return self.server.port


@contextmanager
def telephony_running(session: SessionHost, source: ClockSource) -> Iterator[TelephonyRuntime]:
    """Serve the bridge while the block runs; a call's audio is the loop's input."""
    cfg, io, bus = session.cfg, session.io, session.bus
    tcfg = cfg.telephony
    token = tcfg.token or load_or_make_token(phone_dir(cfg.phone, session.state), TOKEN_FILE)
    observer = BusObserver(bus)
    bridge = TelephonyBridge(tcfg, token, source.push, observer)
    try:
        sock = bind_socket(tcfg.host, tcfg.port, "telephony.port")
    except OSError as e:
        raise ConfigError(str(e)) from None
    server = bridge_server(bridge, sock)
    io.run(server.start())
    host = "127.0.0.1" if tcfg.host in ("0.0.0.0", "::", "") else tcfg.host
    rt = TelephonyRuntime(bridge, server, f"http://{host}:{server.port}")

    async def attach() -> None:
        sub = bus.subscribe_async("telephony", QUEUE_FRAMES, (FrameEvent, UserSpeechStarted))
        rt.subs.append(sub)
        rt.tasks.append(asyncio.create_task(telephony_link(sub, bridge, observer)))

    async def detach() -> None:
        for task in rt.tasks:
            task.cancel()
        for sub in rt.subs:
            bus.unsubscribe(sub)
        await server.stop()

    io.run(attach())
    rt.notices = telephony_notices(rt)
    try:
        yield rt
    finally:
        io.run(detach())


def telephony_notices(rt: TelephonyRuntime) -> list[str]:
    """What to tell the person who started the bridge: where it listens, the webhook, and
    what is not checked."""
    tcfg, bridge = rt.bridge.cfg, rt.bridge
    public = tcfg.public_url or "https://YOUR-TUNNEL"
    lines = [
        f"telephony: bridge listening on {rt.url} (expose it to the carrier)",
        f"telephony: voice webhook {bridge.webhook_url(public)}",
    ]
    if not tcfg.public_url and not tcfg.trust_forwarded_headers:
        lines.append(
            "telephony: telephony.public_url is not set (nor trust_forwarded_headers): no "
            "carrier's signature can be checked and the served stream URL is the local one"
        )
    if not bridge.auth_token:
        lines.append(
            "telephony: TWILIO_AUTH_TOKEN is not set: only requests with the token are served"
        )
    return lines
