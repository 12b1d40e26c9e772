"""A client of Kyutai's streaming STT protocol (moshi-server's ``/api/asr-streaming``, and
``creature model-server`` with an STT checkpoint): the user's audio out, timed words back.

Wire format: ``track2_voice/model_server/asr.py`` (msgpack ``Audio``/``Marker`` out;
``Ready``, ``Word``, ``EndWord``, ``Step``, ``Marker``, ``Error`` back). The client runs its
own asyncio loop on a thread: the transcript worker hands it frames and takes the words that
came back, never waiting on the network.

Times: the server counts the audio of its session; a session lost and opened again starts at
zero, so each session's times are shifted by the audio this client had taken when it began
(frames taken while no session was open are counted, not sent).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from collections import deque

import numpy as np

from track2_voice.config import KyutaiRemoteSttConfig
from track2_voice.frames import FRAME_SECONDS, SAMPLE_RATE
from track2_voice.transcript.base import Heard

log = logging.getLogger(__name__)

SEND_QUEUE_FRAMES = 64  # frames waiting for the socket; oldest dropped beyond this
FLUSH_SILENCE_S = 2.0  # at the end: silence to push the last words out (> the model's delay)
FINISH_TIMEOUT_S = 15.0


class KyutaiRemoteRecognizer:
    name = "kyutai-remote"

    def __init__(self, cfg: KyutaiRemoteSttConfig | None = None) -> None:
        self.cfg = cfg or KyutaiRemoteSttConfig()
        self.key = os.environ.get(self.cfg.api_key_env) or None
        self.fed_s = 0.0
        self.dropped = 0
        self.sessions = 0
        self.last_error: str | None = None
        self._words: deque[Heard] = deque()
        self._cond = threading.Condition()
        self._offset = 0.0  # fed_s when the current session began
        self._pending: tuple[str, float] | None = None  # the word whose end is not known yet
        self._connected = threading.Event()
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue | None = None
        self._markers: dict[int, asyncio.Event] = {}
        self._thread = threading.Thread(target=self._run, name="kyutai-remote", daemon=True)
        self._thread.start()
        if not self._connected.wait(self.cfg.connect_timeout_s):
            log.warning("transcript: no STT session with %s yet (%s); retrying in the "
                        "background", self.cfg.url, self.last_error)  # fmt: skip

    # -- the worker's side ---------------------------------------------------------------------
    def accept(self, pcm: np.ndarray) -> list[Heard]:
        samples = np.asarray(pcm, np.float32)
        start = self.fed_s
        self.fed_s += samples.shape[0] / SAMPLE_RATE
        if self._connected.is_set():
            self._loop.call_soon_threadsafe(self._enqueue, samples, start)
        return self._take()

    def poll(self, timeout: float) -> list[Heard]:
        with self._cond:
            if not self._words:
                self._cond.wait(timeout)
        return self._take()

    def _take(self) -> list[Heard]:
        with self._cond:
            out = list(self._words)
            self._words.clear()
        return out

    def finish(self) -> list[Heard]:
        """Silence past the model's delay and a marker; the words up to it, then the last
        word closed."""
        if self._connected.is_set():
            fut = asyncio.run_coroutine_threadsafe(self._flush(), self._loop)
            try:
                fut.result(FINISH_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 (a lost session: what came back is kept)
                log.warning("transcript: the STT server did not flush: %s", e)
        with self._cond:
            self._close_pending(None)
        return self._take()

    def close(self) -> None:
        self._closing = True

        async def stop() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop(), self._loop)
            self._thread.join(timeout=3.0)

    # -- the loop's side -------------------------------------------------------------------------
    def _enqueue(self, samples: np.ndarray, start: float) -> None:
        q = self._queue
        if q is None:
            return
        if q.full():
            q.get_nowait()
            self.dropped += 1
        q.put_nowait(("Audio", samples))

    async def _flush(self) -> None:
        assert self._queue is not None
        silence = np.zeros(int(SAMPLE_RATE * FRAME_SECONDS), np.float32)
        for _ in range(round(FLUSH_SILENCE_S / FRAME_SECONDS)):
            await self._queue.put(("Audio", silence))
        marker = len(self._markers) + 1
        done = self._markers[marker] = asyncio.Event()
        await self._queue.put(("Marker", marker))
        await done.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.create_task(self._keep_connected())
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _keep_connected(self) -> None:
        while not self._closing:
            try:
                await self._session()
            except Exception as e:  # noqa: BLE001 (any failure: retry after the backoff)
                self.last_error = f"{type(e).__name__}: {e}"
                log.info("transcript: STT session with %s: %s", self.cfg.url, self.last_error)
            self._connected.clear()
            await asyncio.sleep(self.cfg.backoff_s)

    async def _session(self) -> None:
        import msgpack
        import websockets

        headers = {"kyutai-api-key": self.key} if self.key else {}
        ssl_ctx = None
        if self.cfg.url.startswith("wss://") and self.cfg.insecure_tls:
            ssl_ctx = ssl.create_default_context()
            ssl_ctx.check_hostname = False
            ssl_ctx.verify_mode = ssl.CERT_NONE
        async with websockets.connect(
            self.cfg.url,
            additional_headers=headers,
            open_timeout=self.cfg.connect_timeout_s,
            ssl=ssl_ctx,
            max_size=1 << 20,
        ) as ws:
            first = msgpack.unpackb(
                await asyncio.wait_for(ws.recv(), self.cfg.connect_timeout_s), raw=False
            )
            if first.get("type") != "Ready":
                raise ConnectionError(f"expected Ready, got {first}")
            self._queue = asyncio.Queue(SEND_QUEUE_FRAMES)
            self._offset = self.fed_s
            self.sessions += 1
            self._connected.set()
            sender = asyncio.create_task(self._send(ws, self._queue))
            try:
                async for raw in ws:
                    self._on_message(msgpack.unpackb(raw, raw=False))
            finally:
                sender.cancel()

    async def _send(self, ws, q: asyncio.Queue) -> None:
        import msgpack

        while True:
            kind, body = await q.get()
            if kind == "Audio":
                msg = {"type": "Audio", "pcm": body.tolist()}
            else:
                msg = {"type": "Marker", "id": body}
            await ws.send(msgpack.packb(msg, use_single_float=False))

    def _on_message(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "Word":
            start = self._offset + float(msg.get("start_time", 0.0))
            text = str(msg.get("text", ""))
            with self._cond:
                self._close_pending(start)
                self._pending = (text, start)
                self._words.append(Heard(text, round(start, 3), round(start + FRAME_SECONDS, 3),
                                         False))  # fmt: skip
                self._cond.notify_all()
        elif kind == "EndWord":
            with self._cond:
                self._close_pending(self._offset + float(msg.get("stop_time", 0.0)))
                self._cond.notify_all()
        elif kind == "Marker":
            event = self._markers.pop(msg.get("id"), None)
            if event is not None:
                event.set()
        elif kind == "Error":
            self.last_error = str(msg.get("message"))
            log.warning("transcript: the STT server says: %s", self.last_error)

    def _close_pending(self, end: float | None) -> None:
        """The open word is final: it ended at ``end`` (the next word's start, or silence)."""
        if self._pending is None:
            return
        text, start = self._pending
        self._pending = None
        stop = max(end if end is not None else start + FRAME_SECONDS, start + FRAME_SECONDS)
        self._words.append(Heard(text, round(start, 3), round(stop, 3), True))
        self._cond.notify_all()
