"""The transcript in a process of its own, for live input.

Why a process: pocketsphinx holds the GIL while it decodes (measured here: a thread feeding it
80 ms chunks delayed another thread's wake-ups by up to 60 ms), and the fast loop shares the
GIL. Why the fast loop writes the pipe itself: waking a worker thread in this process on every
frame makes the two threads contend for the GIL in the very microseconds the frame is being
handled (measured here: overhead p99 +4 ms on a loaded 2-core machine). A non-blocking write to
a pipe wakes only the child; this process hears back when words come, later in the frame.

Wire (parent -> child): a little-endian header ``<qI`` (frame index, byte count) and that many
bytes of float32 24 kHz audio; a count of 0 means "the input ended". Child -> parent: JSON
lines: ``{"ready": true}`` once it listens, ``{"word": [index, text, start, end, final]}`` per
word (start/end already on the mic clock), ``{"done": true, "cpu_ms": [...]}`` after the end,
``{"error": "..."}`` when the recogniser cannot start or fails.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from track2_voice.events import UserWord, VoiceError
from track2_voice.timings import RecentTimings
from track2_voice.transcript.base import RecognizerError

HEADER = struct.Struct("<qI")
NICE = 10  # the child's scheduling priority below the creature's


def _serve(backend: str, cfg_json: str) -> int:
    from track2_voice.config import TranscriptConfig
    from track2_voice.transcript.recognizers import in_process
    from track2_voice.transcript.worker import TranscriptWorker

    out = sys.stdout
    try:  # the voice must win a contended core: the transcript can wait a few ms
        os.nice(NICE)
    except OSError:
        pass

    def say(msg: dict) -> None:
        try:
            out.write(json.dumps(msg) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):  # the creature went away first: nothing to tell
            os._exit(0)

    def publish(ev) -> None:
        if isinstance(ev, UserWord):
            say({"word": [ev.index, ev.text, ev.start, ev.end, ev.final]})
        elif isinstance(ev, VoiceError):
            say({"error": ev.error})

    cfg = TranscriptConfig.model_validate_json(cfg_json)
    try:
        worker = TranscriptWorker(publish, in_process(backend, cfg), inline=True,
                                  partials=cfg.partials)  # fmt: skip
    except RecognizerError as e:
        say({"error": str(e)})
        return 1
    say({"ready": True})
    inp = sys.stdin.buffer
    while True:
        head = inp.read(HEADER.size)
        if len(head) < HEADER.size:
            return 0
        index, n = HEADER.unpack(head)
        if n == 0:
            worker.flush()
            cpu = worker.cpu_ms.values()
            say({"done": True, "cpu_ms": [round(float(x), 3) for x in cpu]})
            continue
        worker.feed(index, 0.0, np.frombuffer(inp.read(n), dtype=np.float32))


class ChildTranscript:
    """What the fast loop feeds for live input: ``feed`` writes the frame to the child's pipe
    without waiting (a full pipe drops the frame, counted); a reader thread publishes the
    words the child sends back."""

    inline = False

    def __init__(
        self, publish: Callable, backend: str, cfg_json: str, start_timeout_s: float = 30.0
    ) -> None:
        self.source = backend
        self._publish = publish
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "track2_voice.transcript.child", backend, cfg_json],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        assert self._proc.stdin is not None
        self._fd = self._proc.stdin.fileno()
        os.set_blocking(self._fd, False)
        self._rest = b""  # the part of a frame a full pipe did not take
        self.dropped = 0
        self.words = 0
        self.errors = 0
        self.cpu_ms = RecentTimings()  # the child's, per frame (sent back at the end)
        self._last_index = -1
        self._ready = threading.Event()
        self._done = threading.Event()
        self.error: str | None = None
        self._reader = threading.Thread(target=self._read, name="transcript-child", daemon=True)
        self._reader.start()
        if not self._ready.wait(start_timeout_s) or self.error:
            self.close()
            raise RecognizerError(self.error or f"{backend}: no answer in {start_timeout_s} s")

    # -- the fast loop's side: a non-blocking write ----------------------------------------
    def feed(self, index: int, t: float, pcm: np.ndarray) -> None:
        self._last_index = index
        if self._rest and not self._write_rest():
            self.dropped += 1
            return
        data = HEADER.pack(index, pcm.nbytes) + np.ascontiguousarray(pcm, np.float32).tobytes()
        try:
            n = os.write(self._fd, data)
        except BlockingIOError:
            self.dropped += 1
            return
        except (BrokenPipeError, OSError):
            self.dropped += 1
            return
        self._rest = data[n:]

    def _write_rest(self) -> bool:
        try:
            n = os.write(self._fd, self._rest)
        except (BlockingIOError, BrokenPipeError, OSError):
            return False
        self._rest = self._rest[n:]
        return not self._rest

    # -- words back --------------------------------------------------------------------------
    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                msg = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if "word" in msg:
                index, text, start, end, final = msg["word"]
                self.words += bool(final)
                self._publish(UserWord(index=int(index), t=time.monotonic(), text=str(text),
                                       start=float(start), end=float(end), final=bool(final),
                                       source=self.source))  # fmt: skip
            elif "error" in msg:
                self.error = str(msg["error"])
                self.errors += 1
                if self._ready.is_set():
                    self._publish(VoiceError(index=self._last_index, t=time.monotonic(),
                                             where="transcript", error=self.error))  # fmt: skip
            elif msg.get("ready"):
                pass
            elif msg.get("done"):
                for x in msg.get("cpu_ms", []):
                    self.cpu_ms.append(float(x))
                self._done.set()
            self._ready.set()
        self._ready.set()
        self._done.set()

    def flush(self, timeout: float = 30.0) -> None:
        """The input ended: send what is left and the end, and wait for the last words."""
        end = time.monotonic() + timeout
        while self._rest and time.monotonic() < end and not self._write_rest():
            time.sleep(0.002)
        os.set_blocking(self._fd, True)
        try:
            os.write(self._fd, HEADER.pack(self._last_index, 0))
        except OSError:
            return
        finally:
            os.set_blocking(self._fd, False)
        self._done.wait(max(0.0, end - time.monotonic()))

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout=2.0)
            except (subprocess.TimeoutExpired, OSError):
                proc.kill()
                proc.wait()
        self._reader.join(timeout=2.0)


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], sys.argv[2]))
