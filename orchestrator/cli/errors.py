"""Exceptions that mean 'the user gave us something wrong': printed as one clear line."""

from face.phone.tls import TLSError
from orchestrator.brain.outbox import OutboxError
from orchestrator.config import ConfigError
from orchestrator.runtime.record import RecordError
from track2_voice.audio.devices import AudioInputError
from track2_voice.audio.scene import SceneError
from track2_voice.backends.base import BackendError

USER_ERRORS: tuple[type[BaseException], ...] = (
    AudioInputError,
    BackendError,
    SceneError,
    ConfigError,
    FileExistsError,
    FileNotFoundError,
    NotADirectoryError,
    OutboxError,
    RecordError,
    TLSError,
)
