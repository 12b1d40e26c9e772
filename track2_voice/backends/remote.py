"""A Moshi running elsewhere (a GPU host), reached over Kyutai's wire protocol.

The network lives on its own thread with its own asyncio loop. ``step(pcm)`` never waits:
it queues the user's frame (bounded, oldest dropped) and returns the next frame from a small
jitter buffer (silence when it is empty) with the text pieces aligned to it (see
``track2_voice.jitter`` for the rule). When the server refuses, drops or goes silent, the
fast loop carries on with silence, a "disconnected" event is published, and the network
thread reconnects with capped exponential backoff; "connected" follows when it is back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from track2_voice.backends.base import Backend, BackendError, StepResult
from track2_voice.backends.remote_link import RemoteLink
from track2_voice.events import DiscreteEvent, PassageEnded
from track2_voice.frames import silence
from track2_voice.texttap import split_end_marker

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0  # close() waits this long for the network thread


class RemoteBackend(RemoteLink, Backend):
    """The fast loop's side: ``step`` queues a frame and pops one, and never waits; the
    network thread (:class:`RemoteLink`, the same object) fills and drains the other ends."""

    name = "remote"

    # -- fast-loop side -----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="remote-net", daemon=True)
        self._thread.start()
        if self._connected.wait(self.rcfg.start_wait_s):
            return
        if self.rcfg.fail_on_start:
            err = self.last_error or f"no session within {self.rcfg.start_wait_s:g} s"
            self.close()
            raise BackendError(f"remote backend: {err}")
        log.warning(
            "remote backend: not connected yet (%s); retrying in the background", self.last_error
        )

    def step(self, pcm: np.ndarray) -> StepResult:
        loop = self._loop
        if self._connected.is_set() and loop is not None:
            if len(self._send_queue) == self._send_queue.maxlen:
                self.dropped_sends += 1
            self._send_queue.append(pcm)
            if self._sender_waker is not None:
                self._sender_waker.wake()  # no system call on the fast loop's thread
        frame, text = self.jitter.pop()
        events: list[DiscreteEvent] = []
        while self._events:
            events.append(self._events.popleft())
        if text:
            # Kyutai's hibiki-zero server sends a translation's end as the text </s>; it
            # travelled with its audio frame, so it is placed where it is heard
            text, ended = split_end_marker(text)
            text = text or None
            if ended:
                self.passages_ended += 1
                events.append(PassageEnded())
        return StepResult(frame.pcm if frame is not None else silence(), text, events)

    def reset(self) -> None:
        """Forget the conversation: end this session; the next one starts fresh."""
        loop = self._loop
        if loop is not None and self._session_ended is not None:
            loop.call_soon_threadsafe(self._session_ended.set)
        self.jitter.clear()

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and self._stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed in between
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
        if self._sender_waker is not None:
            self._sender_waker.close()
        self._thread = None

    def stats(self) -> dict[str, Any]:
        s = self.jitter.stats
        return {
            "sessions": self.sessions,
            "sent_frames": self.sent_frames,
            "dropped_sends": self.dropped_sends,
            "received_frames": s.received,
            "played_frames": s.played,
            "underruns": s.underruns,
            "dropped_frames": s.dropped,
            "late_text": s.late_text,
            "passages_ended": self.passages_ended,
        }
