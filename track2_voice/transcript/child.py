"""A recogniser in a process of its own, for live input.

Why a process: pocketsphinx holds the GIL while it decodes (measured here: a thread feeding it
80 ms chunks delayed another thread's wake-ups by up to 60 ms), and the fast loop shares the
GIL. In a child process its CPU is its own; the worker's thread only writes frames to a pipe
and reads words back, both of which release the GIL.

Wire (parent -> child): a 4-byte little-endian length and that many bytes of float32 24 kHz
audio; length 0 means "the input ended". Child -> parent: one JSON line per batch of words,
``{"words": [[text, start, end, final], ...], "done": bool}``; a line with ``"error"`` when
the recogniser cannot start.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

import numpy as np

from track2_voice.transcript.base import Heard, RecognizerError


def _serve(backend: str, cfg_json: str) -> int:
    from track2_voice.config import TranscriptConfig
    from track2_voice.transcript.recognizers import in_process

    out = sys.stdout
    try:
        rec = in_process(backend, TranscriptConfig.model_validate_json(cfg_json))
    except RecognizerError as e:
        out.write(json.dumps({"error": str(e)}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"words": [], "done": False, "ready": True}) + "\n")
    out.flush()
    inp = sys.stdin.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return 0
        (n,) = struct.unpack("<I", head)
        if n == 0:
            words, done = rec.finish(), True
        else:
            words, done = rec.accept(np.frombuffer(inp.read(n), dtype=np.float32)), False
        if words or done:
            line = {"words": [[w.text, w.start, w.end, w.final] for w in words], "done": done}
            out.write(json.dumps(line) + "\n")
            out.flush()


class ChildRecognizer:
    """A recogniser run by ``python -m track2_voice.transcript.child``: ``accept`` writes the
    audio and returns the words that came back meanwhile; ``poll`` waits for more."""

    def __init__(self, backend: str, cfg_json: str, start_timeout_s: float = 30.0) -> None:
        self.name = backend
        root = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "track2_voice.transcript.child", backend, cfg_json],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._words: deque[Heard] = deque()
        self._cond = threading.Condition()
        self._done = False
        self._ready = threading.Event()
        self.error: str | None = None
        self._reader = threading.Thread(target=self._read, name="transcript-child", daemon=True)
        self._reader.start()
        if not self._ready.wait(start_timeout_s) or self.error:
            self.close()
            raise RecognizerError(self.error or f"{backend}: no answer in {start_timeout_s} s")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                msg = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if "error" in msg:
                self.error = str(msg["error"])
                self._ready.set()
                break
            self._ready.set()
            with self._cond:
                self._words.extend(Heard(str(a), float(b), float(c), bool(d))
                                   for a, b, c, d in msg["words"])  # fmt: skip
                self._done = self._done or bool(msg["done"])
                self._cond.notify_all()
        self._ready.set()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def _send(self, payload: bytes) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(struct.pack("<I", len(payload)) + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise RecognizerError(f"{self.name}: the recogniser process ended") from None

    def _take(self) -> list[Heard]:
        with self._cond:
            out = list(self._words)
            self._words.clear()
        return out

    def accept(self, pcm: np.ndarray) -> list[Heard]:
        self._send(np.ascontiguousarray(pcm, dtype=np.float32).tobytes())
        return self._take()

    def poll(self, timeout: float) -> list[Heard]:
        with self._cond:
            if not self._words:
                self._cond.wait(timeout)
        return self._take()

    def finish(self, timeout: float = 10.0) -> list[Heard]:
        self._send(b"")
        with self._cond:
            self._cond.wait_for(lambda: self._done, timeout)
        return self._take()

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


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], sys.argv[2]))
