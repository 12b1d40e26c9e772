"""Where frames come from and where the creature's voice goes.

Sources are *pacing*: ``read()`` returns when the next frame is available (a file as fast as
possible or at real time, a sound card by its clock, pushed browser audio by a clock). Sinks
are *non-blocking*: ``write()`` hands the frame to a thread or a ring buffer and returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from track2_voice.audio.files import (
    AudioInputError,
    frames_of,
    load_audio,
    wav_shortfall,
    write_wav,
)
from track2_voice.frames import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, Frame, silence

__all__ = [
    "AudioInputError",
    "AudioSink",
    "AudioSource",
    "ClockSource",
    "FileSource",
    "NullSink",
    "SoundDeviceSink",
    "SoundDeviceSource",
    "WavFileSink",
    "check_sound_device",
    "frames_of",
    "load_audio",
    "wav_shortfall",
    "write_wav",
]
log = logging.getLogger(__name__)


# -- sources ---------------------------------------------------------------------------------


class AudioSource:
    """Yields frames; ``read()`` returns None at the end of the stream."""

    realtime: bool = True

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class FileSource(AudioSource):
    def __init__(self, path: str | Path, realtime: bool = False) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.samples = load_audio(self.path)
        self._frames = frames_of(self.samples)
        self._i = 0
        self._t0: float | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def read(self) -> Frame | None:
        if self._i >= len(self._frames):
            return None
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            due = self._t0 + (self._i + 1) * FRAME_SECONDS
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = Frame(self._i, self._frames[self._i], time.monotonic())
        self._i += 1
        return frame


class ClockSource(AudioSource):
    """A real-time clock of frames. Audio pushed from elsewhere (a browser, a test) is used
    when present; otherwise the frame is silence. This is the seam for browser audio."""

    def __init__(self, max_frames: int | None = None, backlog: int = 8) -> None:
        self.max_frames = max_frames
        self._pushed: deque[np.ndarray] = deque(maxlen=backlog)
        self._pending = np.zeros(0, dtype=np.float32)
        self._lock = threading.Lock()
        self.dropped = 0
        self._i = 0
        self._t0: float | None = None
        self._closed = threading.Event()

    def push(self, pcm: np.ndarray) -> None:
        """Accept 24 kHz mono float32 samples of any length; they are re-cut into frames."""
        with self._lock:
            buf = np.concatenate((self._pending, np.asarray(pcm, dtype=np.float32)))
            while buf.size >= FRAME_SAMPLES:
                if len(self._pushed) == self._pushed.maxlen:
                    self.dropped += 1
                self._pushed.append(buf[:FRAME_SAMPLES])
                buf = buf[FRAME_SAMPLES:]
            self._pending = buf

    def read(self) -> Frame | None:
        if self.max_frames is not None and self._i >= self.max_frames:
            return None
        if self._t0 is None:
            self._t0 = time.monotonic()
        delay = self._t0 + (self._i + 1) * FRAME_SECONDS - time.monotonic()
        if delay > 0 and self._closed.wait(delay):
            return None
        if self._closed.is_set():
            return None
        try:
            pcm = self._pushed.popleft()
        except IndexError:
            pcm = silence()
        frame = Frame(self._i, pcm, time.monotonic())
        self._i += 1
        return frame

    def close(self) -> None:
        self._closed.set()


def _sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:  # PortAudio library missing
        raise AudioInputError(f"the sound card is unavailable: {e}") from e
    return sd


def check_sound_device(kind: str) -> None:
    """Raise a clear error if there is no usable input/output device."""
    sd = _sounddevice()
    try:
        sd.query_devices(kind=kind)
    except Exception as e:
        raise AudioInputError(
            f"no sound {kind} device found ({e}); use --input FILE / --output FILE instead"
        ) from e


class _CardStream:
    """What the sound card's source and sink share: a started PortAudio stream of one frame
    per callback (24 kHz mono float32), its latency, and closing it."""

    _stream: Any

    def _open(self, kind: str, device: str | int | None, callback: Callable[..., None]) -> None:
        """Open and start the card's ``kind`` ("input" or "output") side; a missing card or
        device is an ``AudioInputError`` that says what to use instead."""
        check_sound_device(kind)
        sd = _sounddevice()
        stream_type = sd.InputStream if kind == "input" else sd.OutputStream
        self._stream = stream_type(
            samplerate=SAMPLE_RATE,
            channels=1,
            dtype="float32",
            blocksize=FRAME_SAMPLES,
            device=device,
            callback=callback,
        )
        self._stream.start()

    @property
    def latency_ms(self) -> float:
        """PortAudio's latency: capture to callback (input), callback to the speaker (output)."""
        return float(self._stream.latency) * 1000.0

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


class SoundDeviceSource(_CardStream, AudioSource):
    """The host's microphone, read in 1920-sample blocks by PortAudio's clock."""

    def __init__(self, device: str | int | None = None) -> None:
        self._q: queue.Queue[np.ndarray] = queue.Queue(maxsize=50)
        self._i = 0
        self.dropped = 0

        def callback(indata, frames, time_info, status):  # PortAudio thread
            try:
                self._q.put_nowait(indata[:, 0].copy())
            except queue.Full:
                self.dropped += 1

        self._open("input", device, callback)

    def read(self) -> Frame | None:
        pcm = self._q.get()
        frame = Frame(self._i, pcm, time.monotonic())
        self._i += 1
        return frame


# -- sinks -----------------------------------------------------------------------------------


class AudioSink:
    def write(self, pcm: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NullSink(AudioSink):
    def write(self, pcm: np.ndarray) -> None:
        pass


class WavFileSink(AudioSink):
    """Writes on its own thread so the loop never waits on the disk."""

    def __init__(self, path: str | Path, maxsize: int = 65536) -> None:
        import soundfile as sf

        self.path = Path(path)
        if self.path.is_dir():
            raise AudioInputError(f"--output {self.path}: is a directory; expected a .wav file")
        if self.path.parent and not self.path.parent.exists():
            raise AudioInputError(f"{self.path}: directory {self.path.parent} does not exist")
        try:
            self._file = sf.SoundFile(
                str(self.path),
                "w",
                samplerate=SAMPLE_RATE,
                channels=1,
                subtype="PCM_16",
                format="WAV",
            )
        except Exception as e:  # soundfile raises LibsndfileError / TypeError variants
            raise AudioInputError(f"--output {self.path}: cannot write a WAV file ({e})") from e
        self._q: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name="wav-sink", daemon=True)
        self._thread.start()

    def write(self, pcm: np.ndarray) -> None:
        try:
            self._q.put_nowait(pcm)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            pcm = self._q.get()
            if pcm is None:
                break
            self._file.write(pcm)
            self.frames += 1

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        self._file.close()


class SoundDeviceSink(_CardStream, AudioSink):
    """The host's speaker: a ring buffer drained by PortAudio; underruns play silence.

    ``on_render(pcm)``, when set, is told each frame as PortAudio takes it to play (silence on
    an underrun): the echo canceller's far-end reference, on the playback clock."""

    def __init__(self, device: str | int | None = None, max_frames: int = 25) -> None:
        self._buf: deque[np.ndarray] = deque(maxlen=max_frames)
        self.underruns = 0
        self.on_render = None

        def callback(outdata, frames, time_info, status):
            try:
                pcm = self._buf.popleft()
            except IndexError:
                pcm = silence()
                self.underruns += 1
            outdata[:, 0] = pcm
            if self.on_render is not None:
                self.on_render(pcm)

        self._open("output", device, callback)

    def write(self, pcm: np.ndarray) -> None:
        self._buf.append(pcm)
