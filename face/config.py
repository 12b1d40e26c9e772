"""Typed settings of the face server (section ``face:`` of configs/creature.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from face.limits import ServerLimits


class FaceConfig(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

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
    limits: ServerLimits = Field(
        default_factory=ServerLimits,
        description="connections, header time, message size (/ws/audio mic messages are <48 KB)",
    )
