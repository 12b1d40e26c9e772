"""Typed settings of the phone as ears and voice (section ``phone:`` of configs/creature.yaml)."""

from __future__ import annotations

from pydantic import Field

from track2_voice.common.settings import Strict


class PhoneConfig(Strict):
    """The face page as the creature's ears and voice: audio, TLS, the access token."""

    audio: bool = Field(
        True, description="the face page captures the phone's mic and plays the creature's voice"
    )
    tls: bool = Field(
        True,
        description="serve HTTPS (phones give the mic only to secure pages); a self-signed "
        "certificate is made on first run unless face.ssl_certfile is set",
    )
    state_dir: str | None = Field(
        None,
        description="deprecated: use the top-level state_dir (null: the certificate and the "
        "token live there); when set, the certificate and token are kept here as before",
    )
    token: str | None = Field(
        None,
        min_length=8,
        description="access token in the URL; null: a random one, made once and kept in state_dir",
    )
    face_needs_token: bool = Field(
        False,
        description="also require the token for the face view (else anyone on the LAN sees it)",
    )
    qr: bool = Field(True, description="print a QR code of the URL in the terminal")
    prebuffer_frames: int = Field(
        2, ge=1, le=12, description="80 ms frames the page buffers before it starts playing"
    )
    max_buffer_frames: int = Field(
        6, ge=2, le=50, description="playback buffer cap in frames; beyond it the oldest is dropped"
    )
    send_queue_frames: int = Field(
        25, ge=2, le=500, description="frames queued per phone on the server before drop-oldest"
    )
