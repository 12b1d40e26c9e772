"""Exceptions that mean 'the user gave us something wrong': printed as one clear line."""

from orchestrator.config import ConfigError
from track2_voice.audio_io import AudioInputError
from track2_voice.backends.base import BackendError
from track2_voice.scene import SceneError

USER_ERRORS: tuple[type[BaseException], ...] = (
    AudioInputError,
    BackendError,
    SceneError,
    ConfigError,
    FileNotFoundError,
)
