"""The transcript in a process of its own, for live input.

Why a process: pocketsphinx holds the GIL while it decodes (measured here: a thread feeding it
80 ms chunks delayed another thread's wake-ups by up to 60 ms), and the fast loop shares the
GIL. Why the fast loop writes and reads the pipes itself: a thread of this process that wakes
for the transcript contends with the loop for the GIL, and one preempted while it holds the GIL
stalls the loop until the OS runs it again (measured here on a loaded 2-core machine: a worker
thread woken per frame, overhead p99 +4 ms; a reader thread, +12 ms). A non-blocking write
wakes only the child; the words it sent back are read, without waiting, in the next frame.

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
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from track2_voice.events import UserWord, VoiceError
from track2_voice.timings import RecentTimings
from track2_voice.transcript.base import RecognizerError

HEADER = struct.Struct("<qI")
NICE = 4  # the child's scheduling priority below the creature's (a contended core: voice first)
PIPE_BYTES = 1 << 20  # audio the pipe holds for a child that fell behind (~13 s); then drops
F_SETPIPE_SZ = 1031  # Linux fcntl; elsewhere the pipe keeps the OS's size


def _serve(backend: str, cfg_json: str) -> int:
    from track2_voice.config import TranscriptConfig
    from track2_voice.transcript.recognizers import in_process
    from track2_voice.transcript.worker import TranscriptWorker

    out = sys.stdout
    try:  # the voice must win a contended core: the transcript can wait a few ms
        os.nice(NICE)
    except OSError:
        pass
    try:  # and waking it (a frame written) must not preempt the loop that wrote it: a batch
        # task gets its fair share of the CPU but never preempts on wake-up (Linux)
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
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
        worker.hear(index, 0.0, np.frombuffer(inp.read(n), dtype=np.float32))


class ChildTranscript:
    """What the fast loop feeds for live input: ``hear`` writes the frame to the child's pipe
    without waiting (a full pipe drops the frame, counted), then reads whatever words the
    child has sent back since, without waiting either, and publishes them. No thread of this
    process wakes for the transcript: a thread that held the GIL when the OS preempted it
    would hold up the loop (measured here with a reader thread on a loaded 2-core machine:
    overhead p99 +12 ms)."""

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
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._fd = self._proc.stdin.fileno()
        self._out = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        os.set_blocking(self._out, False)
        try:  # room for a burst the child cannot hear at once (the OS's default: 64 KiB)
            import fcntl

            fcntl.fcntl(self._fd, F_SETPIPE_SZ, PIPE_BYTES)
        except (ImportError, OSError):
            pass
        self._rest = b""  # the part of a frame a full pipe did not take
        self._partial_line = b""
        self.dropped = 0
        self.words = 0
        self.errors = 0
        self.cpu_ms = RecentTimings()  # the child's, per frame (sent back at the end)
        self._last_index = -1
        self._ready = False
        self._done = False
        self.error: str | None = None
        self._wait(lambda: self._ready or self.error is not None, start_timeout_s)
        if not self._ready:
            self.close()
            raise RecognizerError(self.error or f"{backend}: no answer in {start_timeout_s} s")

    # -- the fast loop's side: a non-blocking write, a non-blocking read --------------------
    def hear(self, index: int, t: float, pcm: np.ndarray) -> None:
        self._last_index = index
        if self._rest and not self._write_rest():
            self.dropped += 1
        else:
            data = HEADER.pack(index, pcm.nbytes) + np.ascontiguousarray(pcm, np.float32).tobytes()
            try:
                self._rest = data[os.write(self._fd, data) :]
            except OSError:  # full (BlockingIOError) or gone (BrokenPipeError)
                self.dropped += 1
        self._drain()

    def _write_rest(self) -> bool:
        try:
            n = os.write(self._fd, self._rest)
        except OSError:
            return False
        self._rest = self._rest[n:]
        return not self._rest

    def _drain(self) -> bool:
        """Handle every whole line the child has sent; False once it closed its end."""
        while True:
            try:
                chunk = os.read(self._out, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                self._done = True
                return False
            lines = (self._partial_line + chunk).split(b"\n")
            self._partial_line = lines.pop()
            for raw in lines:
                self._line(raw)

    def _line(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError:
            return
        if "word" in msg:
            index, text, start, end, final = msg["word"]
            self.words += bool(final)
            self._publish(UserWord(index=int(index), t=time.monotonic(), text=str(text),
                                   start=float(start), end=float(end), final=bool(final),
                                   source=self.source))  # fmt: skip
        elif "error" in msg:
            self.error = str(msg["error"])
            self.errors += 1
            if self._ready:
                self._publish(VoiceError(index=self._last_index, t=time.monotonic(),
                                         where="transcript", error=self.error))  # fmt: skip
        elif msg.get("ready"):
            self._ready = True
        elif msg.get("done"):
            for x in msg.get("cpu_ms", []):
                self.cpu_ms.append(float(x))
            self._done = True

    def _wait(self, until: Callable[[], bool], timeout: float) -> None:
        """Read the child's lines, blocking in ``select`` (GIL released), until ``until()``."""
        import select

        end = time.monotonic() + timeout
        while not until():
            left = end - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._out], [], [], left)
            if ready and not self._drain():
                return

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
        self._done = False
        self._wait(lambda: self._done, max(0.0, end - time.monotonic()))

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
        if proc.stdout is not None:
            proc.stdout.close()


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], sys.argv[2]))
