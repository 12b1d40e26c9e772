"""The face next to a voice session: the face server and the phone's audio endpoint, served on
the creature's I/O loop. The brain (or, with no brain, a neutral face) sends the face state of
the newest frame after each batch of events; the phone link streams every frame's audio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from face import FaceServer
from face.phone.audio_ws import PhoneAudio
from face.phone.qr import qr_text
from orchestrator.brain.captions import Captions
from orchestrator.brain.face_state import NeutralFace
from orchestrator.data_files import load_presets
from orchestrator.runtime.expression_stream import Gaze
from orchestrator.runtime.metrics import PATH as METRICS_PATH
from orchestrator.runtime.metrics import CreatureMetrics, metrics_route
from orchestrator.runtime.phone_link import QUEUE_FRAMES, build_server, phone_link, prepare_web
from orchestrator.runtime.slow_loop import feed
from orchestrator.runtime.visemes import page_visemes
from track2_voice.audio.devices import ClockSource
from track2_voice.events import Connected, Disconnected, FrameEvent, UserWord

log = logging.getLogger(__name__)
FACE_QUEUE = 32  # events waiting for a brainless face: only the newest frame is shown
FACE_TYPES = (FrameEvent, Connected, Disconnected)
CAPTION_QUEUE = 256  # words and text pieces waiting for the captions (frames without text too)


def add_face_options(p: argparse.ArgumentParser, skip_flag: bool = True) -> None:
    if skip_flag:
        p.add_argument("--no-face", action="store_true", help="do not start the face server")
    p.add_argument("--face-host", metavar="HOST", help="face server interface (face.host)")
    p.add_argument("--face-port", type=int, metavar="PORT", help="face server port (face.port)")


def face_overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if getattr(args, "face_host", None):
        out["face.host"] = args.face_host
    if getattr(args, "face_port", None) is not None:
        out["face.port"] = args.face_port
    if getattr(args, "no_face", False):
        out["face.enabled"] = False
    return out


@dataclass
class FaceRuntime:
    """What runs next to the voice session: the face server and the phone's audio endpoint."""

    server: FaceServer
    phone: PhoneAudio
    url: str
    tasks: list[asyncio.Task] = field(default_factory=list)
    subs: list = field(default_factory=list)
    metrics: CreatureMetrics | None = None

    @property
    def base_url(self) -> str:
        """The URL without the page's path and token (``scheme://host:port``)."""
        return self.url.split("/?", 1)[0]


@contextmanager
def face_running(
    session, phone_source: ClockSource | None = None, https: bool | None = None
) -> Iterator[FaceRuntime | None]:
    """Serve the face while the block runs (nothing when ``face.enabled`` is false). With a
    ``phone_source`` the page is also the creature's ears and voice (docs/phone.md)."""
    cfg = session.cfg
    if not cfg.face.enabled:
        yield None
        return
    io, bus, slow = session.io, session.bus, session.slow
    presets = load_presets()
    setup = prepare_web(cfg.face, cfg.phone, https, getattr(session, "state", None))
    lipsync = cfg.voice.lipsync.model_dump()
    visemes = page_visemes(cfg)
    metrics = session.metrics.metrics if session.metrics is not None else None
    routes = [metrics_route(metrics, setup.token)] if metrics is not None else []
    server, phone = build_server(setup, cfg.phone, phone_source, presets, lipsync, visemes, routes)
    try:
        io.run(server.start())
    except OSError as e:  # a busy port should not stop the creature from talking
        log.warning("%s; using a free port instead", e)
        setup.face = setup.face.model_copy(update={"port": 0})
        server, phone = build_server(
            setup, cfg.phone, phone_source, presets, lipsync, visemes, routes
        )
        io.run(server.start())
    rt = FaceRuntime(server, phone, setup.url.format(port=server.port), metrics=metrics)

    async def attach() -> None:
        publish = server.publish
        if metrics is not None:
            metrics.watch_faces(lambda: server.stats()["clients"])
            metrics.watch_phones(lambda: phone.connected)
            if slow is not None:
                metrics.watch_robots(lambda: len(slow.dispatcher.robots) if slow.brain else 0)
            publish = metrics.timed(server.publish)
        if cfg.face.captions != "none" and cfg.interpreting is None:
            publish = captioned(publish, cfg.face)
        if slow is not None:
            slow.face = publish
            if slow.expression is not None:  # the phone's view of the user, for a robot's head
                server.gaze_token = setup.token
                server.on_gaze = lambda g: slow.expression.set_gaze(None if g is None else Gaze(*g))
        else:
            sub = bus.subscribe_async("face", FACE_QUEUE, FACE_TYPES)
            rt.subs.append(sub)
            rt.tasks.append(
                asyncio.create_task(feed(sub, NeutralFace(session.visemes), lambda: publish))
            )
        if phone.enabled:
            sub = bus.subscribe_async("phone", QUEUE_FRAMES, (FrameEvent,))
            rt.subs.append(sub)
            rt.tasks.append(asyncio.create_task(phone_link(sub, phone)))

    def captioned(publish, face_cfg):
        """``publish`` with the conversation's captions added (``face.captions``), fed by
        a subscription of its own to the user's words and the creature's text."""
        captions = Captions(face_cfg.captions, face_cfg.caption_hold_s)
        sub = bus.subscribe_async("captions", CAPTION_QUEUE, (FrameEvent, UserWord))
        rt.subs.append(sub)

        async def follow() -> None:
            while True:
                for ev in await sub.get_batch():
                    captions.handle(ev)

        rt.tasks.append(asyncio.create_task(follow()))
        return lambda state: publish(captions.add_to(state))

    async def detach() -> None:
        if slow is not None:
            slow.face = None
        for task in rt.tasks:
            task.cancel()
        for sub in rt.subs:
            bus.unsubscribe(sub)
        await server.aclose()

    io.run(attach())
    print(f"face: open {rt.url} in a browser (phone on the same network)", flush=True)
    if phone.enabled and rt.url.startswith("https:"):
        print("face: tap the face on the phone to give the creature its mic and voice", flush=True)
    elif phone.enabled:  # browsers give a page the mic only over HTTPS or from localhost
        print(
            "face: plain HTTP (no TLS): a phone shows the face but cannot lend its mic "
            "(browsers allow a mic over HTTPS or from localhost only); a browser on this "
            f"machine can: {urlsplit(rt.url)._replace(netloc=f'localhost:{server.port}').geturl()}",
            flush=True,
        )
    if setup.face.ssl_certfile and not cfg.face.ssl_certfile:
        print("face: the certificate is self-signed: accept it once on the phone", flush=True)
    if metrics is not None:
        print(
            f"metrics: {rt.base_url}{METRICS_PATH} (send the access token: "
            "Authorization: Bearer TOKEN, or ?token=TOKEN)",
            flush=True,
        )
    if cfg.phone.qr:
        print(qr_text(rt.url), flush=True)
    try:
        yield rt
    finally:
        io.run(detach())
