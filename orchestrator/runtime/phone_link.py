"""Connects the phone page to a voice session: its mic feeds the fast loop's clock, and every
frame the loop makes goes back to the page with its mouth value.

The link is a task on the creature's I/O loop: it drains a small drop-oldest bus subscription
(every frame: the page must hear all of them) and hands each one to the phone's socket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from face.config import FaceConfig
from face.phone.access import TokenGate, load_or_make_token
from face.phone.audio_ws import PhoneAudio
from face.phone.phone_config import PhoneConfig
from face.phone.tls import TLSError, default_hosts, ensure_self_signed
from face.server import FaceServer
from orchestrator.bus import Subscription
from orchestrator.state_dir import migrate_phone_files, state_dir
from track2_voice.audio.devices import ClockSource
from track2_voice.common.web.access import lan_address
from track2_voice.events import FrameEvent

log = logging.getLogger(__name__)

QUEUE_FRAMES = 16  # frames waiting for the phone before the oldest is dropped


async def phone_link(sub: Subscription, phone: PhoneAudio) -> None:
    """Streams the bus's frames to ``phone.send_frame`` (the brain sends face states)."""
    while True:
        for e in await sub.get_batch():
            if isinstance(e, FrameEvent) and e.pcm is not None:
                phone.send_frame(e.index, e.t, e.mouth, e.pcm)


@dataclass
class WebSetup:
    """What ``creature serve`` prints and serves: the face config with TLS, token and URL."""

    face: FaceConfig
    token: str
    url: str


def phone_dir(phone_cfg: PhoneConfig, state: Path | None) -> Path:
    """Where the phone's certificate and token live: the state directory (files from the old
    default place are moved over once), or the deprecated ``phone.state_dir`` when set."""
    if phone_cfg.state_dir is not None:
        return Path(phone_cfg.state_dir).expanduser()
    d = state if state is not None else state_dir(None)
    migrate_phone_files(d)
    return d


def prepare_web(
    face_cfg: FaceConfig,
    phone_cfg: PhoneConfig,
    https: bool | None = None,
    state: Path | None = None,
) -> WebSetup:
    """TLS (the user's certificate, else a self-signed one kept in the state directory), the
    access token, and the URL a phone on the LAN opens."""
    face = face_cfg.model_copy()
    for key in ("ssl_certfile", "ssl_keyfile"):
        given = getattr(face, key)
        if given and not Path(given).expanduser().is_file():
            raise TLSError(f"face.{key}: {given} is not a readable file")
    where = phone_dir(phone_cfg, state)
    key_name = "phone.state_dir" if phone_cfg.state_dir is not None else "state_dir"
    try:
        token = phone_cfg.token or load_or_make_token(where)
    except OSError as e:
        raise TLSError(
            f"{key_name}: cannot keep the phone token in {where} ({e.strerror})"
        ) from None
    lan = lan_address() if face.host in ("0.0.0.0", "::", "") else face.host
    use_tls = phone_cfg.tls if https is None else https
    if use_tls and not face.ssl_certfile:
        cert, key = ensure_self_signed(where, default_hosts(lan), key_name)
        face.ssl_certfile, face.ssl_keyfile = str(cert), str(key)
    elif not use_tls:
        face.ssl_certfile = face.ssl_keyfile = None
    scheme = "https" if face.ssl_certfile else "http"
    return WebSetup(face, token, f"{scheme}://{lan}:{{port}}/?token={token}")


def build_server(
    setup: WebSetup,
    phone_cfg: PhoneConfig,
    source: ClockSource | None,
    presets: dict[str, Any] | None = None,
    lipsync: dict[str, float] | None = None,
    visemes: dict[str, Any] | None = None,
    routes: list[BaseRoute] | None = None,
) -> tuple[FaceServer, PhoneAudio]:
    """The face server with the phone's audio routes (and ``routes``, e.g. ``/metrics``);
    phone audio is on when ``source`` is given."""
    phone = PhoneAudio(
        on_audio=source.push if source is not None else None,
        token=setup.token,
        enabled=source is not None and phone_cfg.audio,
        send_queue_frames=phone_cfg.send_queue_frames,
        page_config={
            "prebuffer_frames": phone_cfg.prebuffer_frames,
            "max_buffer_frames": phone_cfg.max_buffer_frames,
            "lipsync": lipsync,  # the page's A/V-sync meter shapes loudness like the mouth
        },
    )
    server = FaceServer(
        setup.face,
        presets,
        extra_routes=[*phone.routes(), *(routes or [])],
        visemes=visemes,
    )
    if phone_cfg.face_needs_token:
        server.app = TokenGate(server.app, setup.token)
    return server, phone
