"""Start the face server next to a voice session and feed it through the face bridge."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from affect.presets import load_presets
from face import FaceServer
from face.phone.audio_ws import PhoneAudio
from face.phone.qr import qr_text
from orchestrator.config import CreatureConfig
from orchestrator.runtime.face_bridge import FaceBridge
from orchestrator.runtime.phone_link import PhoneLink, build_server, prepare_web
from track2_voice.audio.devices import ClockSource
from track2_voice.events import EventHub

log = logging.getLogger(__name__)


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


@contextmanager
def face_running(
    cfg: CreatureConfig,
    hub: EventHub,
    phone_source: ClockSource | None = None,
    https: bool | None = None,
    compose: Callable[[Any], dict[str, Any]] | None = None,
) -> Iterator[FaceRuntime | None]:
    """Serve the face while the block runs (nothing when ``face.enabled`` is false). With a
    ``phone_source`` the page is also the creature's ears and voice (docs/phone.md)."""
    if not cfg.face.enabled:
        yield None
        return
    presets = load_presets()
    setup = prepare_web(cfg.face, cfg.phone, https)
    lipsync = cfg.voice.lipsync.model_dump()
    server, phone = build_server(setup, cfg.phone, phone_source, presets, lipsync)
    try:
        server.start_in_thread()
    except OSError as e:  # a busy port should not stop the creature from talking
        log.warning("%s; using a free port instead", e)
        setup.face = setup.face.model_copy(update={"port": 0})
        server, phone = build_server(setup, cfg.phone, phone_source, presets, lipsync)
        server.start_in_thread()
    bridge = FaceBridge(hub, server, compose)
    link = PhoneLink(hub, phone) if phone.enabled else None
    url = setup.url.format(port=server.port)
    print(f"face: open {url} in a browser (phone on the same network)", flush=True)
    if phone.enabled:
        print("face: tap the face on the phone to give the creature its mic and voice", flush=True)
    if setup.face.ssl_certfile and not cfg.face.ssl_certfile:
        print("face: the certificate is self-signed: accept it once on the phone", flush=True)
    if cfg.phone.qr:
        print(qr_text(url), flush=True)
    try:
        yield FaceRuntime(server, phone, url)
    finally:
        if link is not None:
            link.close()
        bridge.close()
        server.stop()
