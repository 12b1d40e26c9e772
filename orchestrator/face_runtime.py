"""Start the face server next to a voice session and feed it through the face bridge."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from affect.presets import load_presets
from face import FaceServer
from orchestrator.config import CreatureConfig
from orchestrator.face_bridge import FaceBridge
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


@contextmanager
def face_running(cfg: CreatureConfig, hub: EventHub) -> Iterator[FaceServer | None]:
    """Serve the face while the block runs (nothing when ``face.enabled`` is false)."""
    if not cfg.face.enabled:
        yield None
        return
    presets = load_presets()
    try:
        server = FaceServer(cfg.face, presets).start_in_thread()
    except OSError as e:  # a busy port should not stop the creature from talking
        log.warning("%s; using a free port instead", e)
        server = FaceServer(cfg.face.model_copy(update={"port": 0}), presets).start_in_thread()
    bridge = FaceBridge(hub, server)
    print(f"face: open {server.url} in a browser (phone on the same network)", flush=True)
    try:
        yield server
    finally:
        bridge.close()
        server.stop()
