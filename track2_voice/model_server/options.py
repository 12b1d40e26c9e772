"""The model server's settings: what ``creature model-server`` flags set (docs/model_server.md).

Strict models like every other settings model (``track2_voice.common.settings.Strict``): a
misspelt key of a Serve config file is an error, and NaN or infinity is refused. The checks
that name a flag stay in :meth:`ServerOptions.check`, so a bad flag is one line naming it.
"""

from __future__ import annotations

from typing import get_args

from pydantic import ConfigDict, Field

from track2_voice.common.settings import Strict
from track2_voice.config import RolloverConfig, Sampling, TorchDevice, TorchDtype

DEFAULT_PORT = 8998  # Kyutai's servers use it, so their clients' defaults find this one


class SlotSampling(Sampling):
    """How one session samples: the voice's sampling settings (same names, same defaults) plus
    a seed per stream (Kyutai's query parameters map onto these; params.py)."""

    model_config = ConfigDict(frozen=True)

    seed_text: int = 0
    seed_audio: int = 0


class ServerOptions(Strict):
    checkpoint: str
    slots: int = 8
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    device: str = "auto"  # auto: cuda when present
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    token: str | None = None  # required unless open_access (the CLI keeps one in the state dir)
    open_access: bool = False  # no token (Kyutai's clients cannot send one): trusted LANs only
    allowed_origins: tuple[str, ...] = ()  # browser origins beyond the server's own host
    static_dir: str | None = None  # serve a web client (e.g. Kyutai's) from this directory
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    context: int | None = (
        None  # LM attention window in steps (KV memory per slot); None: the model's
    )
    # seeds: random per session; the fields set (by flags) win over the checkpoint's
    # lm_gen_config, the others come from it (``sampling.model_fields_set``)
    sampling: SlotSampling = Field(default_factory=SlotSampling)
    rollover: RolloverConfig = Field(default_factory=RolloverConfig)
    frame_s: float = 0.08
    input_queue_frames: int = 8  # per session; beyond it the oldest frame is dropped
    output_queue_frames: int = 25  # per session; beyond it the oldest frame is dropped
    stall_timeout_s: float = 10.0  # a client that accepts nothing this long is closed
    idle_timeout_s: float = 60.0  # a client that sends nothing this long is closed (frees a slot)
    send_buffer_bytes: int | None = None  # per client: kernel + event-loop send buffer; None: OS
    max_message_bytes: int = 256 * 1024  # one 80 ms Opus page is a few hundred bytes
    extra_connections: int = 16  # sockets allowed beyond the slots (refusals, health checks)
    warmup: bool = True
    # sent to every session as Moshi metadata (kind 4, JSON) before the handshake, as Kyutai's
    # Rust server sends its own: a cluster replica names itself so a client's record shows
    # where each session ran (docs/ray_serve.md)
    instance: dict[str, str | int] | None = None

    def check(self) -> None:
        """Raise ValueError naming the flag when a value cannot work."""
        if self.slots < 1:
            raise ValueError(f"--slots must be at least 1, got {self.slots}")
        if not (0 <= self.port < 65536):
            raise ValueError(f"--port must be 0..65535, got {self.port}")
        for flag, value, allowed in (
            ("--device", self.device, get_args(TorchDevice)),
            ("--dtype", self.dtype, get_args(TorchDtype)),
        ):
            if value not in allowed:
                *first, last = allowed
                raise ValueError(f"{flag} must be {', '.join(first)} or {last}, got {value!r}")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("--token must be at least 8 characters")
        if not self.open_access and not self.token:
            raise ValueError("an access token is needed (--token), unless --open")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("--ssl-certfile and --ssl-keyfile go together")
        if self.context is not None and self.context < 16:
            raise ValueError(f"--context must be at least 16 steps, got {self.context}")
        if self.context is not None and self.rollover.max_steps > self.context:
            raise ValueError(
                f"--max-steps ({self.rollover.max_steps}) must not exceed --context "
                f"({self.context}): a slot rolls over before its window is full"
            )
        if self.stall_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("--stall-timeout and --idle-timeout must be positive")
        if self.input_queue_frames < 1 or self.output_queue_frames < 1:
            raise ValueError("queue sizes must be at least 1 frame")

    @property
    def max_connections(self) -> int:
        return self.slots + self.extra_connections
