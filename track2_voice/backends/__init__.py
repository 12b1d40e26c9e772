"""Backend registry. Heavy imports (mlx, torch) happen only when that backend is chosen."""

from __future__ import annotations

from track2_voice.backends.base import Backend, BackendError, StepResult
from track2_voice.common.settings import BACKEND_NAMES
from track2_voice.config import VoiceConfig

BACKENDS = BACKEND_NAMES


def create_backend(cfg: VoiceConfig) -> Backend:
    name = cfg.backend
    if name == "replay":
        from track2_voice.backends.replay import ReplayBackend

        return ReplayBackend(cfg.replay.scene)
    if name == "mlx":
        from track2_voice.backends.mlx_backend import MlxBackend

        return MlxBackend(cfg.mlx, cfg.sampling, cfg.rollover)
    if name == "torch":
        try:
            from track2_voice.backends.torch_backend import TorchBackend
        except ImportError as e:
            raise BackendError(f"the torch backend is not available: {e}") from e
        return TorchBackend(cfg)  # type: ignore[call-arg]
    if name == "remote":
        try:
            from track2_voice.backends.remote import RemoteBackend
        except ImportError as e:
            raise BackendError(f"the remote backend is not available: {e}") from e
        return RemoteBackend(cfg)  # type: ignore[call-arg]
    raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendError", "StepResult", "create_backend"]
