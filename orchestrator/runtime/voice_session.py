"""Wires a config into a running creature: the fast loop (source, backend, sink) on the calling
thread, the bus, the one I/O loop that hosts the brain and the face, the recorder, Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bus import Bus
from orchestrator.config import CreatureConfig
from orchestrator.runtime.io_loop import IoLoop
from orchestrator.runtime.metrics import MetricsService
from orchestrator.runtime.record import JsonlRecorder
from orchestrator.runtime.slow_loop import SlowLoop
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
from track2_voice.audio.echo import cancel_echo
from track2_voice.backends import create_backend
from track2_voice.common.errors import ConfigError
from track2_voice.loop import FastLoop, LoopStats
from track2_voice.transcript.base import RecognizerError
from track2_voice.transcript.worker import start_transcript

log = logging.getLogger(__name__)
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


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


@dataclass
class VoiceSession:
    """Everything the fast loop needs, built from config; ``run`` blocks until it ends."""

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
        if self.cfg.interpreting is not None and not self.cfg.slow_loop.enabled:
            raise ConfigError(
                "mode: interpret needs slow_loop.enabled: true (the brain follows the "
                "translation for the captions and the record)"
            )
        self.slow = (
            SlowLoop(
                self.cfg.slow_loop,
                self.bus,
                self.io,
                self.state,
                visemes=self.visemes,
                interpret=self.cfg.interpreting,
            )
            if self.cfg.slow_loop.enabled
            else None
        )
        self.backend = create_backend(self.cfg.voice)
        self.source = make_source(self.cfg)
        self.sink = make_sink(self.cfg)
        self.echo = None
        audio = self.cfg.audio
        if audio.input == "local" and audio.output == "local" and audio.echo.enabled:
            # a body with its own mic and speaker must not hear its own voice
            self.source, self.echo = cancel_echo(self.source, self.sink, audio.echo)
        self.recorder = (
            JsonlRecorder(self.record, self.bus, self.cfg.voice.loop.record_queue_size)
            if self.record
            else None
        )
        try:  # the user's words, heard off the fast loop, from whatever the user speaks into
            self.transcript = start_transcript(
                self.bus.publish, self.cfg.voice.transcript, live=self.source.realtime
            )
        except RecognizerError as e:
            raise ConfigError(str(e)) from None
        self.loop = FastLoop(
            self.backend, self.source, self.sink, self.bus, self.cfg.voice,
            transcript=self.transcript,
        )  # fmt: skip
        self.io.start()
        # served by the face server, so only with it; started now to see the robots connect
        m = self.cfg.metrics
        self.metrics = (
            MetricsService(self.bus, m.queue_size, self.clock).start(self.io)
            if m.enabled and self.cfg.face.enabled
            else None
        )

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
        previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():

            def on_signal(signum, frame):
                log.info("%s: stopping after this frame", STOP_SIGNALS[signum])
                self.stop_signal = self.stop_signal or signum
                self.loop.stop()

            for signum in STOP_SIGNALS:
                previous[signum] = signal.signal(signum, on_signal)
        try:
            return self.loop.run(max_frames=max_frames, stop_when_finished=stop_when_finished)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def close(self) -> None:
        self.loop.close()
        if self.slow is not None:
            self.slow.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.io.stop()
        if self.recorder is not None:
            self.recorder.close()
