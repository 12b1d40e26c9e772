"""Typed settings of the fast loop. Loaded and validated by ``orchestrator.config``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from track2_voice.common.settings import BackendName, Strict


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

    @model_validator(mode="after")
    def _range(self) -> VadConfig:
        if self.end_threshold > self.start_threshold:
            raise ValueError(
                f"end_threshold ({self.end_threshold}) must not be above start_threshold "
                f"({self.start_threshold})"
            )
        return self


class EchoConfig(Strict):
    """Echo cancellation for a body with its own mic and speaker (``--audio local``)."""

    enabled: bool = Field(
        True, description="remove the creature's own voice from the mic when both are local"
    )
    delay_ms: float | None = Field(
        None,
        ge=0,
        le=500,
        description="speaker-to-mic delay hint for the canceller; null: the sound card's "
        "reported output + input latency (the canceller finds the exact delay itself)",
    )
    noise_suppression: bool = Field(False, description="also suppress steady background noise")
    high_pass_filter: bool = Field(True, description="remove rumble below ~80 Hz from the mic")
    estimate_every_s: float = Field(
        5.0, gt=0, description="how often the measured echo delay is estimated and logged"
    )


class LoopConfig(Strict):
    realtime: bool = Field(False, description="pace file input at 80 ms per frame")
    queue_size: int = Field(256, ge=1, description="events buffered per subscriber")
    record_queue_size: int = Field(65536, ge=1, description="events buffered for the JSONL log")


class Sampling(Strict):
    """How Moshi's tokens are drawn, with the names Kyutai's ``LMGen`` and a checkpoint's
    ``lm_gen_config`` use; the fast loop's settings and the model server's per-session
    sampling are both this model."""

    temp: float = Field(0.8, ge=0, description="audio token sampling temperature")
    temp_text: float = Field(0.7, ge=0, description="text token sampling temperature")
    top_k: int = Field(250, ge=0, description="audio top-k (0: off)")
    top_k_text: int = Field(25, ge=0, description="text top-k (0: off)")


class SamplingConfig(Sampling):
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


# what PyTorch runs on, for every in-process torch model (voice, transcript, model server)
TorchDevice = Literal["auto", "cpu", "cuda"]
TorchDtype = Literal["auto", "bfloat16", "float16", "float32"]


class TorchConfig(Strict):
    hf_repo: str = Field(
        "kyutai/moshiko-pytorch-bf16", description="HF repo id or local directory (PyTorch weights)"
    )
    device: TorchDevice = Field("auto", description="cuda when present")
    dtype: TorchDtype = Field("auto", description="auto: bfloat16 on CUDA, float32 on CPU")


class RemoteConfig(Strict):
    url: str = Field("ws://127.0.0.1:8998/api/chat", description="Moshi-protocol endpoint")
    insecure_tls: bool = Field(False, description="wss:// without verifying the certificate")
    send_sampling: bool = Field(True, description="pass voice.sampling as Kyutai's query params")
    extra_query: dict[str, str] = Field(
        default_factory=dict, description="more query params (pad_mult, text_prompt, ...)"
    )
    jitter_frames: int = Field(1, ge=1, le=50, description="frames buffered before playing")
    max_buffer_frames: int = Field(8, ge=1, le=500, description="oldest dropped beyond this")
    send_queue_frames: int = Field(16, ge=1, le=500, description="user frames queued to send")
    connect_timeout_s: float = Field(5.0, gt=0, description="TCP + WebSocket open")
    handshake_timeout_s: float = Field(10.0, gt=0, description="wait for the server's handshake")
    silence_timeout_s: float = Field(5.0, gt=0, description="no message this long: reconnect")
    backoff_base_s: float = Field(0.25, gt=0, description="first reconnect delay")
    backoff_cap_s: float = Field(2.0, gt=0, description="longest reconnect delay")
    start_wait_s: float = Field(15.0, ge=0, description="start() waits this long to connect")
    fail_on_start: bool = Field(
        True, description="no connection by start_wait_s: stop with an error, not silence"
    )

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not v.startswith(("ws://", "wss://")):
            raise ValueError("expected a ws:// or wss:// URL such as ws://HOST:8998/api/chat")
        return v

    @model_validator(mode="after")
    def _check(self) -> RemoteConfig:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be >= backoff_base_s")
        if self.max_buffer_frames < self.jitter_frames:
            raise ValueError("max_buffer_frames must be >= jitter_frames")
        return self


class ReplayConfig(Strict):
    scene: str = Field("greeting", description="shipped scene name or path to a scene.yaml")


class PocketsphinxConfig(Strict):
    """pocketsphinx's own files (null: the US English ones in its wheel) and its endpointer."""

    hmm: str | None = Field(None, description="acoustic model folder; null: the wheel's en-us")
    lm: str | None = Field(None, description="language model file; null: the wheel's en-us")
    dictionary: str | None = Field(None, description="pronunciation dictionary; null: CMUdict")
    vad_mode: int = Field(0, ge=0, le=3, description="endpointer aggressiveness (0: loosest)")
    window_s: float = Field(0.3, gt=0, le=2, description="endpointer decision window")
    ratio: float = Field(0.9, gt=0, lt=1, description="share of the window that decides")


class KyutaiSttConfig(Strict):
    """Kyutai's streaming STT in this process (PyTorch ``moshi``; docs/transcript.md)."""

    hf_repo: str = Field(
        "kyutai/stt-1b-en_fr", description="HF repo id or local directory of an STT checkpoint"
    )
    device: TorchDevice = Field("auto", description="cuda when present")
    dtype: TorchDtype = Field("auto", description="auto: bfloat16 on CUDA, float32 on CPU")


class KyutaiRemoteSttConfig(Strict):
    """A server of Kyutai's streaming STT protocol (moshi-server, ``creature model-server``)."""

    url: str = Field(
        "ws://127.0.0.1:8998/api/asr-streaming", description="Kyutai STT protocol endpoint"
    )
    api_key_env: str = Field(
        "CREATURE_STT_API_KEY",
        description="environment variable holding the key sent as the kyutai-api-key header",
    )
    insecure_tls: bool = Field(False, description="wss:// without verifying the certificate")
    connect_timeout_s: float = Field(5.0, gt=0, description="TCP + WebSocket open and Ready")
    backoff_s: float = Field(1.0, gt=0, description="wait before reconnecting")

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not v.startswith(("ws://", "wss://")):
            raise ValueError(
                "expected a ws:// or wss:// URL such as ws://HOST:8998/api/asr-streaming"
            )
        return v


class TranscriptConfig(Strict):
    """The user's words, heard off the fast loop (docs/transcript.md). Off by default: it costs
    CPU the creature may not have, and it turns the user's speech into text, which a person
    running a creature should choose (it lands in records and on the face)."""

    backend: Literal["off", "pocketsphinx", "kyutai", "kyutai-remote"] = Field(
        "off", description="what hears the user's words; off: no transcript"
    )
    queue_frames: int = Field(64, ge=1, le=1000, description="user frames buffered, oldest dropped")
    partials: bool = Field(True, description="also publish words not yet settled (final: false)")
    pocketsphinx: PocketsphinxConfig = PocketsphinxConfig()
    kyutai: KyutaiSttConfig = KyutaiSttConfig()
    kyutai_remote: KyutaiRemoteSttConfig = KyutaiRemoteSttConfig()


class VoiceConfig(Strict):
    backend: BackendName = Field("replay", description="which voice backend the fast loop runs")
    replay: ReplayConfig = ReplayConfig()
    mlx: MlxConfig = MlxConfig()
    torch: TorchConfig = TorchConfig()
    remote: RemoteConfig = RemoteConfig()
    sampling: SamplingConfig = SamplingConfig()
    rollover: RolloverConfig = RolloverConfig()
    lipsync: LipSyncConfig = LipSyncConfig()
    vad: VadConfig = VadConfig()
    transcript: TranscriptConfig = TranscriptConfig()
    loop: LoopConfig = LoopConfig()
