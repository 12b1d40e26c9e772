"""The transcript worker: the user's frames in, ``UserWord`` events out, off the fast loop.

Like the VAD worker (``track2_voice/vad.py``): the loop hands each user frame over with
``hear`` (a bounded drop-oldest deque, drops counted) and never waits; a thread feeds the
recogniser and publishes. Offline runs (a file faster than real time) run it inline, so a
transcript of a file is repeatable.

The mic clock: frame ``i`` covers ``[i * 0.08, (i + 1) * 0.08)`` seconds of the user's audio.
A recogniser counts only the audio it was fed, so where frames were dropped the worker starts a
new stretch and maps the recogniser's times through the stretch they fall in.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable

import numpy as np

from track2_voice.events import UserWord, VoiceError
from track2_voice.frames import FRAME_SECONDS, SAMPLE_RATE
from track2_voice.handoff import hand_over
from track2_voice.timings import RecentTimings
from track2_voice.transcript.base import Heard, Recognizer, RecognizerError, Transcriber

log = logging.getLogger(__name__)

MAX_STRETCHES = 256  # gaps remembered for mapping times back (a word spans only a few)


class MicClock:
    """Seconds of audio fed to the recogniser -> seconds on the mic clock."""

    def __init__(self) -> None:
        self.fed_s = 0.0
        self._next_index: int | None = None
        self._fed: list[float] = []  # where each stretch starts, in fed seconds
        self._mic: list[float] = []  # ... and on the mic clock

    def frame(self, index: int, seconds: float) -> None:
        if index != self._next_index:
            self._fed.append(self.fed_s)
            self._mic.append(index * FRAME_SECONDS)
            if len(self._fed) > MAX_STRETCHES:
                del self._fed[0], self._mic[0]
        self._next_index = index + 1
        self.fed_s += seconds

    def mic(self, fed: float) -> float:
        i = max(0, bisect_right(self._fed, fed) - 1)
        if not self._fed:
            return fed
        return self._mic[i] + (fed - self._fed[i])


class TranscriptWorker:
    def __init__(
        self,
        publish: Callable,
        recognizer: Recognizer,
        maxsize: int = 64,
        inline: bool = False,
        partials: bool = True,
    ) -> None:
        self.recognizer = recognizer
        self.source = recognizer.name
        self._publish = publish
        self.inline = inline
        self.partials = partials
        self._q: deque = deque(maxlen=maxsize)
        self.dropped = 0
        self.words = 0
        self.errors = 0
        self.cpu_ms = RecentTimings()  # the worker thread's CPU per frame (accept + publish)
        self.clock = MicClock()
        self._last_index = -1
        self._failed = False
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread = None
        if not inline:
            self._thread = threading.Thread(target=self._run, name="transcript", daemon=True)
            self._thread.start()

    # -- the fast loop's side: never waits ---------------------------------------------------
    def hear(self, index: int, t: float, pcm: np.ndarray) -> None:
        if self.inline:
            self._process(index, pcm)
            return
        self.dropped += hand_over(self._q, (index, pcm), self._cond)

    # -- the worker's side -------------------------------------------------------------------
    def _run(self) -> None:
        poll = getattr(self.recognizer, "poll", None)
        while not self._stop:
            self._busy = True
            try:
                index, pcm = self._q.popleft()
            except IndexError:
                self._busy = False
                if poll is not None and not self._failed:
                    self._emit(self._guard(lambda: poll(0.02)))
                else:
                    with self._cond:
                        self._cond.wait(0.05)
                continue
            self._process(index, pcm)
            self._busy = False

    def _guard(self, call: Callable[[], list[Heard]]) -> list[Heard]:
        """A recogniser fault is published once and the transcript stops; the voice goes on."""
        if self._failed:
            return []
        try:
            return call()
        except Exception as e:  # noqa: BLE001 (a recogniser fault must not end the session)
            self._failed = True
            self.errors += 1
            log.error("transcript (%s) stopped: %s", self.source, e)
            self._publish(
                VoiceError(
                    index=self._last_index, t=time.monotonic(), where="transcript", error=str(e)
                )  # fmt: skip
            )
            return []

    def _process(self, index: int, pcm: np.ndarray) -> None:
        c0 = time.thread_time()
        self.clock.frame(index, pcm.shape[0] / SAMPLE_RATE)
        self._last_index = index
        self._emit(self._guard(lambda: self.recognizer.accept(pcm)))
        self.cpu_ms.append((time.thread_time() - c0) * 1000.0)

    def _emit(self, heard: list[Heard]) -> None:
        now = time.monotonic()
        for h in heard:
            if not h.final and not self.partials:
                continue
            if h.final:
                self.words += 1
            self._publish(
                UserWord(
                    index=self._last_index,
                    t=now,
                    text=h.text,
                    start=round(self.clock.mic(h.start), 3),
                    end=round(self.clock.mic(h.end), 3),
                    final=h.final,
                    source=self.source,
                )
            )

    def flush(self, timeout: float = 10.0) -> None:
        """The input ended: wait until every fed frame is heard, then settle the last words."""
        end = time.monotonic() + timeout
        while (self._q or self._busy) and time.monotonic() < end:
            time.sleep(0.005)
        finish = self.recognizer.finish
        self._emit(self._guard(finish))

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        try:
            self.recognizer.close()
        except RecognizerError as e:
            log.warning("transcript close: %s", e)


# recognisers that compute on the CPU: live, they run in a child process (child.py)
CHILD_BACKENDS = ("pocketsphinx", "kyutai")


def start_transcript(publish: Callable, cfg, live: bool) -> Transcriber | None:
    """The transcript ``voice.transcript`` asks for, or None when it is off. ``live``: the
    input comes at real time (sound card, phone, telephone, a paced WAV)."""
    from track2_voice.transcript.child import ChildTranscript
    from track2_voice.transcript.recognizers import in_process

    if cfg.backend == "off":
        return None
    if live and cfg.backend in CHILD_BACKENDS:
        return ChildTranscript(publish, cfg.backend, cfg.model_dump_json())
    recognizer = in_process(cfg.backend, cfg)
    return TranscriptWorker(
        publish, recognizer, cfg.queue_frames, inline=not live, partials=cfg.partials
    )
