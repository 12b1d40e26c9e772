"""Wires a config into a running creature: the fast loop (source, backend, sink) on the calling
thread, the bus, the one I/O loop that hosts the brain and the face, the recorder, Ctrl-C.
Built, started, run and closed in that order (``VoiceSession``)."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bus import Bus
from orchestrator.config import CreatureConfig
from orchestrator.runtime.brain_host import BrainHost
from orchestrator.runtime.io_loop import IoLoop
from orchestrator.runtime.metrics import MetricsService
from orchestrator.runtime.record import JsonlRecorder
from orchestrator.runtime.stop_signals import STOP_SIGNALS, on_stop_signals
from orchestrator.runtime.visemes import build_viseme_tracker
from orchestrator.state_dir import state_dir
from track2_voice.audio.devices import (
    AudioSink,
    AudioSource,
    ClockSource,
    FileSource,
    NullSink,
    SoundDeviceSink,
    SoundDeviceSource,
    WavFileSink,
)
from track2_voice.audio.echo import EchoCanceller, cancel_echo
from track2_voice.backends import create_backend
from track2_voice.common.errors import ConfigError
from track2_voice.loop import FastLoop, LoopStats
from track2_voice.transcript.base import RecognizerError, Transcriber
from track2_voice.transcript.worker import start_transcript

log = logging.getLogger(__name__)


def make_source(cfg: CreatureConfig, max_frames: int | None = None) -> AudioSource:
    inp = cfg.audio.input
    if inp is None:
        return ClockSource(max_frames=max_frames)
    if inp == "local":
        return SoundDeviceSource(cfg.audio.input_device)
    # a remote server works at real time: a file sent faster would only come back as silence
    realtime = cfg.voice.loop.realtime or cfg.voice.backend == "remote"
    return FileSource(inp, realtime=realtime)


def make_sink(cfg: CreatureConfig) -> AudioSink:
    out = cfg.audio.output
    if out is None:
        return NullSink()
    if out == "local":
        return SoundDeviceSink(cfg.audio.output_device)
    return WavFileSink(out)


def make_audio(cfg: CreatureConfig) -> tuple[AudioSource, AudioSink, EchoCanceller | None]:
    """The session's ears and voice; with a local mic and speaker, the ears cancel the voice
    (a body with its own mic and speaker must not hear itself)."""
    source, sink = make_source(cfg), make_sink(cfg)
    audio = cfg.audio
    if audio.input == "local" and audio.output == "local" and audio.echo.enabled:
        source, echo = cancel_echo(source, sink, audio.echo)
        return source, sink, echo
    return source, sink, None


def check_mode(cfg: CreatureConfig) -> None:
    if cfg.interpreting is not None and not cfg.slow_loop.enabled:
        raise ConfigError(
            "mode: interpret needs slow_loop.enabled: true (the brain follows the "
            "translation for the captions and the record)"
        )


@dataclass
class VoiceSession:
    """Everything the fast loop needs, built from config. Its life has four steps, each with
    one owner of its threads (docs/architecture.md, "Lifecycle"):

    - build (the constructor): checks the config and builds the parts; it starts no thread,
      so a bad config leaves nothing running;
    - ``start``: the audio, then the recorder, the I/O loop, the metrics, the transcript
      worker and the fast loop (with its VAD worker), each with its stop on one exit stack; ``start_slow`` and
      ``start_backend`` start the brain and load the model;
    - ``run``: the fast loop on the calling thread until it ends, Ctrl-C or SIGTERM;
    - ``close``: the exit stack, so every started service stops, in reverse order.

    ``with VoiceSession(cfg) as session`` starts it and closes it."""

    cfg: CreatureConfig
    record: Path | None = None
    bus: Bus = field(default_factory=Bus)
    state: Path | None = None  # the state directory; None: from cfg.state_dir
    stop_signal: int | None = field(default=None, init=False)  # what stopped ``run``, if any
    clock = staticmethod(time.monotonic)  # the clock of the frames' time stamps

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = state_dir(self.cfg.state_dir)
        self.io = IoLoop()
        # first: its rules and maps are checked before any audio or model is opened
        self.visemes = build_viseme_tracker(self.cfg)  # the face's, fed on the I/O loop
        check_mode(self.cfg)
        self.slow = self._build_slow()
        self.backend = create_backend(self.cfg.voice)
        # opened by ``start``: a WAV sink writes on a thread, a sound card streams on one
        self.source: AudioSource | None = None
        self.sink: AudioSink | None = None
        self.echo: EchoCanceller | None = None
        self.recorder: JsonlRecorder | None = None
        self.metrics: MetricsService | None = None
        self.transcript: Transcriber | None = None
        self.loop: FastLoop | None = None  # built by ``start``: its VAD worker is a thread
        self._services = ExitStack()

    def _build_slow(self) -> BrainHost | None:
        if not self.cfg.slow_loop.enabled:
            return None
        return BrainHost(
            self.cfg.slow_loop,
            self.bus,
            self.io,
            self.state,
            visemes=self.visemes,
            interpret=self.cfg.interpreting,
        )

    # -- start / stop ---------------------------------------------------------------------------
    def __enter__(self) -> VoiceSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> VoiceSession:
        """Open the audio, then start the services; each one's stop goes on the stack as it
        starts, and a failure half way stops what had started."""
        self.source, self.sink, self.echo = make_audio(self.cfg)  # a bad file: nothing started
        try:
            self._start_services()
        except BaseException:
            self.close()
            if self.loop is None:  # the loop that closes them was not built
                self._close_audio()
            raise
        return self

    def _start_services(self) -> None:
        """Closed in reverse: the fast loop, the brain, the metrics, the I/O loop, and the
        recorder last (it writes the loop's final events)."""
        stack = self._services
        if self.record:
            size = self.cfg.voice.loop.record_queue_size
            self.recorder = stack.enter_context(closing(JsonlRecorder(self.record, self.bus, size)))
        stack.callback(self.io.stop)
        self.io.start()
        m = self.cfg.metrics
        if m.enabled and self.cfg.face.enabled:  # served by the face server, so only with it
            self.metrics = MetricsService(self.bus, m.queue_size, self.clock)
            stack.callback(self.metrics.stop)
            self.metrics.start(self.io)  # now, to see the robots connect
        if self.slow is not None:  # stopped whether or not ``start_slow`` started it
            stack.callback(self.slow.stop)
        self.transcript = self._start_transcript()
        self.loop = FastLoop(
            self.backend, self.source, self.sink, self.bus, self.cfg.voice,
            transcript=self.transcript,
        )  # fmt: skip
        stack.callback(self.loop.close)  # closes the transcript, sink, source and backend

    def _start_transcript(self) -> Transcriber | None:
        """The user's words, heard off the fast loop, from whatever the user speaks into."""
        try:
            return start_transcript(
                self.bus.publish, self.cfg.voice.transcript, live=self.source.realtime
            )
        except RecognizerError as e:
            raise ConfigError(str(e)) from None

    def _close_audio(self) -> None:
        for part in (self.transcript, self.sink, self.source):
            if part is not None:
                part.close()

    def start_slow(self) -> None:
        """Intents, tool calls, robot channel, state machine and affect, on the I/O loop."""
        if self.slow is not None:
            self.slow.start()
            log.info("%s", self.slow.robot_hint())

    def start_backend(self) -> None:
        log.info("starting backend %s", self.backend.name)
        self.backend.start()
        kind = getattr(self.backend, "kind", None)  # known for the in-process backends
        if kind is not None and kind.translates != (self.cfg.interpreting is not None):
            log.warning(
                "the model is a %s model (model_type %s) but mode is %s: %s",
                "translation" if kind.translates else "conversation",
                kind.value,
                self.cfg.mode,
                "use --mode interpret for captions and no intents from a visitor's words"
                if kind.translates
                else "its words are its own, not a translation",
            )

    def run(self, max_frames: int | None = None, stop_when_finished: bool = False) -> LoopStats:
        """Run the loop on this thread; Ctrl-C and SIGTERM (how service managers and
        containers stop a program) both stop it cleanly after the current frame, so the
        record ends with ``loop_stopped`` and the command prints its summary.
        ``stop_signal`` says which one did (the command exits 128 + it)."""
        assert self.loop is not None, "start() the session first"
        with on_stop_signals(self._on_stop_signal):
            return self.loop.run(max_frames=max_frames, stop_when_finished=stop_when_finished)

    def _on_stop_signal(self, signum: int) -> None:
        log.info("%s: stopping after this frame", STOP_SIGNALS[signum])
        self.stop_signal = self.stop_signal or signum
        self.loop.stop()

    def close(self) -> None:
        """Stop what ``start`` started, in reverse order (a second call does nothing)."""
        self._services.close()
