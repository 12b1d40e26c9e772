"""Typed settings of the face server (section ``face:`` of configs/creature.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from track2_voice.common.limits import ServerLimits
from track2_voice.common.settings import BackendName, Strict

# Frames by which each backend's audio lags the text piece of the same moment, measured with
# `python benchmarks/text_lead.py` (replay: the scene's words against its voice onsets; mlx,
# torch: the generator's own tokens on a tiny checkpoint). Moshi's weights may add a lead of
# their own: measure it on them with the same command and set face.visemes.text_lead_frames.
TEXT_LEAD_FRAMES = {"replay": 0, "mlx": 1, "torch": 0, "remote": 0}


class VisemeConfig(Strict):
    """Settings of the viseme track (``face.lipsync: visemes``); the shapes, the phoneme map
    and the blending are data in configs/visemes.yaml."""

    file: str | None = Field(None, description="viseme YAML; null = configs/visemes.yaml")
    language: str = Field("en-us", description="espeak-ng voice that turns words into phonemes")
    text_lead_frames: dict[BackendName, int] = Field(
        default_factory=lambda: dict(TEXT_LEAD_FRAMES),
        description="per backend: frames by which its audio lags its text pieces (the acoustic "
        "delay; see docs/face.md)",
    )
    gate_db: float = Field(
        -55.0, description="frames quieter than this (dBFS) count as silent when timing phonemes"
    )
    lookahead_frames: int = Field(
        1,
        ge=0,
        le=4,
        description="align the phonemes to the creature's audio and show each frame's shape "
        "this many frames later (audio the phone has buffered, not yet played; 0: timing from "
        "the words alone; see docs/face.md)",
    )

    @field_validator("text_lead_frames")
    @classmethod
    def _fill(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: n for k, n in v.items() if not 0 <= n <= 50}
        if bad:
            raise ValueError(f"expected 0..50 frames per backend (got {bad})")
        return {**TEXT_LEAD_FRAMES, **v}  # a file that names one backend keeps the others


class FaceConfig(Strict):
    """The face server: where it listens, who may open it, how the mouth moves."""

    enabled: bool = Field(True, description="start the face server with the voice session")
    host: str = Field("0.0.0.0", description="interface to listen on (0.0.0.0: the whole LAN)")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0: any free port)")
    gaze: bool = Field(True, description="follow the user's face with the front camera")
    stall_timeout_s: float = Field(
        10.0, gt=0, description="close a client whose socket accepted nothing for this long"
    )
    ssl_certfile: str | None = Field(
        None, description="HTTPS certificate: phones allow camera and wake lock only over HTTPS"
    )
    ssl_keyfile: str | None = Field(None, description="HTTPS private key")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins (scheme://host:port) that may open the face's WebSockets "
        "besides the page's own; clients without an Origin header (not browsers) are allowed",
    )
    max_face_message_bytes: int = Field(
        4096, ge=64, description="the page sends /ws/face almost nothing; larger: close 1009"
    )
    max_viewers: int = Field(
        32,
        ge=1,
        description="/ws/face viewers at once (more: 503), so viewers never hold every "
        "connection the phone's audio needs (face.limits.max_connections)",
    )
    max_viewers_per_address: int = Field(
        16, ge=1, description="/ws/face viewers from one address (IPv6: one /64) at once"
    )
    limits: ServerLimits = Field(
        default_factory=ServerLimits,
        description="connections, header time, message size (/ws/audio mic messages are <48 KB)",
    )
    lipsync: Literal["rms", "visemes"] = Field(
        "visemes",
        description="mouth: 'rms' opens it with loudness; 'visemes' also shapes it to the words",
    )
    visemes: VisemeConfig = VisemeConfig()
    captions: Literal["none", "user", "creature", "both"] = Field(
        "none",
        description="caption the user's words (voice.transcript), the creature's, both (the "
        "newest line) or none; an interpreter's face captions its translation instead",
    )
    caption_hold_s: float = Field(
        3.0, ge=0, description="a finished line's caption stays this long"
    )
