"""Typed settings of the face server (section ``face:`` of configs/creature.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FaceConfig(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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
