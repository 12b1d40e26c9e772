"""Typed settings of the fast loop. Loaded and validated by ``orchestrator.config``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LipSyncConfig(Strict):
    floor_db: float = Field(-50.0, description="dBFS that maps to a closed mouth")
    ceil_db: float = Field(-30.0, description="dBFS that maps to a fully open mouth")
    gate_db: float = Field(-55.0, description="below this the frame counts as silence")
    attack_ms: float = Field(15.0, gt=0, description="time constant when the mouth opens")
    release_ms: float = Field(90.0, gt=0, description="time constant when the mouth closes")

    @model_validator(mode="after")
    def _range(self) -> LipSyncConfig:
        if self.ceil_db <= self.floor_db:
            raise ValueError(f"ceil_db ({self.ceil_db}) must be above floor_db ({self.floor_db})")
        return self


class VadConfig(Strict):
    start_threshold: float = Field(0.5, ge=0, le=1, description="speech probability to start")
    end_threshold: float = Field(0.35, ge=0, le=1, description="speech probability to end")
    start_ms: float = Field(64.0, ge=0, description="speech needed before 'started'")
    end_ms: float = Field(480.0, ge=0, description="silence needed before 'ended'")


class LoopConfig(Strict):
    realtime: bool = Field(False, description="pace file input at 80 ms per frame")
    queue_size: int = Field(256, ge=1, description="events buffered per subscriber")
    record_queue_size: int = Field(65536, ge=1, description="events buffered for the JSONL log")


class SamplingConfig(Strict):
    temp: float = Field(0.8, ge=0, description="audio token sampling temperature")
    temp_text: float = Field(0.7, ge=0, description="text token sampling temperature")
    top_k: int = Field(250, ge=0, description="audio top-k (0: off)")
    top_k_text: int = Field(25, ge=0, description="text top-k (0: off)")
    seed: int = Field(299792458, description="random seed for model init and sampling")


class RolloverConfig(Strict):
    max_steps: int = Field(3000, ge=16, description="generator steps per model session")
    margin_steps: int = Field(250, ge=0, description="start looking for silence this early")
    silence_frames: int = Field(6, ge=1, description="quiet frames that make a safe moment")
    silence_db: float = Field(-45.0, description="both voices below this count as quiet")


class MlxConfig(Strict):
    hf_repo: str = Field("kyutai/moshiko-mlx-q4", description="HF repo id or local directory")
    quantize: Literal[4, 8, "bf16", "auto"] = Field(
        "auto", description="weight format; auto: from config.json, the repo name or the files"
    )
    codec: Literal["auto", "rustymimi", "mlx"] = Field(
        "auto", description="Mimi runtime; auto: MLX Mimi if config.json has mimi_config"
    )


class ReplayConfig(Strict):
    scene: str = Field("greeting", description="shipped scene name or path to a scene.yaml")


class VoiceConfig(Strict):
    backend: Literal["replay", "mlx", "torch", "remote"] = Field(
        "replay", description="which voice backend the fast loop runs"
    )
    replay: ReplayConfig = ReplayConfig()
    mlx: MlxConfig = MlxConfig()
    sampling: SamplingConfig = SamplingConfig()
    rollover: RolloverConfig = RolloverConfig()
    lipsync: LipSyncConfig = LipSyncConfig()
    vad: VadConfig = VadConfig()
    loop: LoopConfig = LoopConfig()
