"""The face next to a voice session: the face server and the phone's audio endpoint, served on
the creature's I/O loop. The brain (or, with no brain, a neutral face) sends the face state of
the newest frame after each batch of events; the phone link streams every frame's audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from face import FaceServer
from face.phone.audio_ws import PhoneAudio
from face.phone.qr import qr_text
from orchestrator.brain.captions import Captions
from orchestrator.brain.face_state import NeutralFace
from orchestrator.bus import Subscription
from orchestrator.config import CreatureConfig
from orchestrator.data_files import load_presets
from orchestrator.runtime.brain_host import BrainHost, consume_events
from orchestrator.runtime.expression_stream import Gaze
from orchestrator.runtime.metrics import PATH as METRICS_PATH
from orchestrator.runtime.metrics import CreatureMetrics, metrics_route
from orchestrator.runtime.phone_link import (
    QUEUE_FRAMES,
    WebSetup,
    build_server,
    phone_link,
    prepare_web,
)
from orchestrator.runtime.session_host import FaceHost
from orchestrator.runtime.visemes import page_visemes
from track2_voice.audio.devices import ClockSource
from track2_voice.events import Connected, Disconnected, FrameEvent, UserWord

log = logging.getLogger(__name__)
FACE_QUEUE = 32  # events waiting for a brainless face: only the newest frame is shown
FACE_TYPES = (FrameEvent, Connected, Disconnected)
CAPTION_QUEUE = 256  # words and text pieces waiting for the captions (frames without text too)


@dataclass
class FaceRuntime:
    """What runs next to the voice session: the face server and the phone's audio endpoint.
    ``notices``: what the person starting it should be told (the command prints them)."""

    server: FaceServer
    phone: PhoneAudio
    url: str
    tasks: list[asyncio.Task] = field(default_factory=list)
    subs: list = field(default_factory=list)
    metrics: CreatureMetrics | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The URL without the page's path and token (``scheme://host:port``)."""
        return self.url.split("/?", 1)[0]

    def follow(self, sub: Subscription, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` on the I/O loop until the face stops; ``sub`` is dropped then."""
        self.subs.append(sub)
        self.tasks.append(asyncio.create_task(job))


@contextmanager
def face_running(
    session: FaceHost, phone_source: ClockSource | None = None, https: bool | None = None
) -> Iterator[FaceRuntime | None]:
    """Serve the face while the block runs (nothing when ``face.enabled`` is false). With a
    ``phone_source`` the page is also the creature's ears and voice (docs/phone.md)."""
    cfg = session.cfg
    if not cfg.face.enabled:
        yield None
        return
    presets = load_presets()
    setup = prepare_web(cfg.face, cfg.phone, https, session.state)
    rt = _serve(session, setup, presets, phone_source)
    session.io.run(_attach(session, rt, setup.token))
    rt.notices = face_notices(rt, cfg, setup)
    try:
        yield rt
    finally:
        session.io.run(_detach(session, rt))


def _serve(
    session: FaceHost, setup: WebSetup, presets: dict[str, Any], phone_source: ClockSource | None
) -> FaceRuntime:
    """Start the face server on the configured port, or on a free one when that is busy."""
    cfg = session.cfg
    metrics = session.metrics.metrics if session.metrics is not None else None
    routes = [metrics_route(metrics, setup.token)] if metrics is not None else []
    lipsync, visemes = cfg.voice.lipsync.model_dump(), page_visemes(cfg)

    def build() -> tuple[FaceServer, PhoneAudio]:
        return build_server(setup, cfg.phone, phone_source, presets, lipsync, visemes, routes)

    server, phone = build()
    try:
        session.io.run(server.start())
    except OSError as e:  # a busy port should not stop the creature from talking
        log.warning("%s; using a free port instead", e)
        setup.face = setup.face.model_copy(update={"port": 0})
        server, phone = build()
        session.io.run(server.start())
    return FaceRuntime(server, phone, setup.url.format(port=server.port), metrics=metrics)


async def _attach(session: FaceHost, rt: FaceRuntime, token: str) -> None:
    """Wire the face to the session on the I/O loop: who sends it face states (the brain, or
    a neutral face), what is measured, the captions, the phone's audio."""
    cfg, slow, server = session.cfg, session.slow, rt.server
    publish: Callable[[Any], None] = server.publish
    if rt.metrics is not None:
        publish = _measured(rt, slow)
    if cfg.face.captions != "none" and cfg.interpreting is None:
        publish = _captioned(session, rt, publish)
    if slow is not None:
        slow.face = publish
        if slow.expression is not None:  # the phone's view of the user, for a robot's head
            server.gaze_token = token
            server.on_gaze = lambda g: slow.expression.set_gaze(None if g is None else Gaze(*g))
    else:
        sub = session.bus.subscribe_async("face", FACE_QUEUE, FACE_TYPES)
        rt.follow(sub, consume_events(sub, NeutralFace(session.visemes), lambda: publish))
    if rt.phone.enabled:
        sub = session.bus.subscribe_async("phone", QUEUE_FRAMES, (FrameEvent,))
        rt.follow(sub, phone_link(sub, rt.phone))


def _measured(rt: FaceRuntime, slow: BrainHost | None) -> Callable[[Any], None]:
    """The metrics watch the faces, phones and robots; the face's publish is timed."""
    metrics, server, phone = rt.metrics, rt.server, rt.phone
    assert metrics is not None
    metrics.watch_faces(lambda: server.stats()["clients"])
    metrics.watch_phones(lambda: phone.connected)
    if slow is not None:
        metrics.watch_robots(lambda: len(slow.dispatcher.robots) if slow.brain else 0)
    return metrics.timed(server.publish)


def _captioned(
    session: FaceHost, rt: FaceRuntime, publish: Callable[[Any], None]
) -> Callable[[Any], None]:
    """``publish`` with the conversation's captions added (``face.captions``), fed by a
    subscription of its own to the user's words and the creature's text."""
    face_cfg = session.cfg.face
    captions = Captions(face_cfg.captions, face_cfg.caption_hold_s)
    sub = session.bus.subscribe_async("captions", CAPTION_QUEUE, (FrameEvent, UserWord))

    async def follow() -> None:
        while True:
            for ev in await sub.get_batch():
                captions.handle(ev)

    rt.follow(sub, follow())
    return lambda state: publish(captions.add_to(state))


async def _detach(session: FaceHost, rt: FaceRuntime) -> None:
    if session.slow is not None:
        session.slow.face = None
    for task in rt.tasks:
        task.cancel()
    for sub in rt.subs:
        session.bus.unsubscribe(sub)
    await rt.server.aclose()


def face_notices(rt: FaceRuntime, cfg: CreatureConfig, setup: WebSetup) -> list[str]:
    """What to tell the person who started the face: where it is, whether a phone can lend
    its mic, the certificate, the metrics, the QR code."""
    lines = [f"face: open {rt.url} in a browser (phone on the same network)"]
    if rt.phone.enabled and rt.url.startswith("https:"):
        lines.append("face: tap the face on the phone to give the creature its mic and voice")
    elif rt.phone.enabled:  # browsers give a page the mic only over HTTPS or from localhost
        local = urlsplit(rt.url)._replace(netloc=f"localhost:{rt.server.port}").geturl()
        lines.append(
            "face: plain HTTP (no TLS): a phone shows the face but cannot lend its mic "
            "(browsers allow a mic over HTTPS or from localhost only); a browser on this "
            f"machine can: {local}"
        )
    if setup.face.ssl_certfile and not cfg.face.ssl_certfile:
        lines.append("face: the certificate is self-signed: accept it once on the phone")
    if rt.metrics is not None:
        lines.append(
            f"metrics: {rt.base_url}{METRICS_PATH} (send the access token: "
            "Authorization: Bearer TOKEN, or ?token=TOKEN)"
        )
    if cfg.phone.qr:
        lines.append(qr_text(rt.url))
    return lines
