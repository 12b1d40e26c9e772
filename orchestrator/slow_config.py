"""Typed settings of the slow loop (section ``slow_loop`` of configs/creature.yaml)."""

from __future__ import annotations

from pydantic import Field, field_validator

from orchestrator.brain.tool_schema import actions
from track2_voice.config import Strict


class IntentConfig(Strict):
    rules_file: str | None = Field(None, description="intents YAML; null = configs/intents.yaml")
    pause_frames: int = Field(8, ge=1, description="frames without text that end an utterance")
    mouth_quiet_frames: int = Field(5, ge=1, description="quiet-mouth frames that end one")
    mouth_quiet_level: float = Field(0.05, ge=0, le=1, description="mouth below this is quiet")
    repeat_window_s: float = Field(6.0, ge=0, description="same action+object fires once per")
    max_phrase_chars: int = Field(400, ge=40, description="rolling buffer cap")


ALL_ACTIONS = list(actions())  # the tool schema's action enum


class SafetyConfig(Strict):
    allowed_actions: list[str] = Field(
        default_factory=lambda: list(ALL_ACTIONS), description="actions a robot may be sent"
    )
    min_confidence: float = Field(0.6, ge=0, le=1, description="intents below this are refused")
    rate_limit_calls: int = Field(4, ge=1, description="at most this many calls ...")
    rate_limit_window_s: float = Field(10.0, gt=0, description="... per this many seconds")

    @field_validator("allowed_actions")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ALL_ACTIONS]
        if bad:
            raise ValueError(f"unknown action(s) {bad}; known: {ALL_ACTIONS}")
        return v


class RobotConfig(Strict):
    enabled: bool = Field(True, description="serve the robot WebSocket channel")
    host: str = Field("127.0.0.1", description="bind address (loopback unless you mean it)")
    port: int = Field(8766, ge=0, le=65535, description="0 picks a free port")
    token: str = Field(
        "creature-dev-token",
        min_length=8,
        description="robots present it as ?token= or 'Authorization: Bearer'; env "
        "CREATURE_ROBOT_TOKEN overrides",
    )
    send_timeout_s: float = Field(2.0, gt=0, description="a robot that does not read is dropped")
    queue_size: int = Field(256, ge=1, description="messages buffered per robot connection")


class WebhookConfig(Strict):
    url: str | None = Field(None, description="POST every tool call here too (null = off)")
    timeout_s: float = Field(3.0, gt=0, description="per attempt")
    retries: int = Field(3, ge=0, description="attempts after the first")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay, doubled each time")
    queue_size: int = Field(256, ge=1, description="calls waiting for the webhook")


class OutboxConfig(Strict):
    path: str = Field("creature-outbox.sqlite3", description="SQLite file (a real file)")
    max_age_s: float = Field(
        300.0,
        ge=0,
        description="open calls older than this are cancelled (expired), never sent again (0 = never)",
    )


class AffectMapConfig(Strict):
    file: str | None = Field(None, description="affect YAML; null = configs/affect.yaml")


class SlowLoopConfig(Strict):
    enabled: bool = Field(True, description="run intents, tools, state machine and affect")
    queue_size: int = Field(2048, ge=16, description="events buffered for the slow loop")
    intents: IntentConfig = IntentConfig()
    safety: SafetyConfig = SafetyConfig()
    robot: RobotConfig = RobotConfig()
    webhook: WebhookConfig = WebhookConfig()
    outbox: OutboxConfig = OutboxConfig()
    affect: AffectMapConfig = AffectMapConfig()
    finish_wait_s: float = Field(
        8.0, ge=0, description="on exit, wait this long for a connected robot to finish"
    )
