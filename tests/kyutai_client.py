"""Kyutai's Python client (``moshi.client.Connection``) without a sound card.

``Connection.__init__`` opens sounddevice streams; everything else is protocol code: its
input callback Opus-encodes a 1920-sample block and sends it (kind 1) from the audio
thread, its receive loop decodes kind-1 pages into 1920-sample blocks on an output queue
and prints kind-2 text through a ``client_utils`` printer. Here the instance is built
without ``__init__``, with the attributes ``__init__`` would set; a feeder thread calls the
input callback every 80 ms as sounddevice would, and the test reads the output queue
instead of a speaker. The code that talks to the server is Kyutai's, unchanged.
"""

from __future__ import annotations

import asyncio
import io
import queue
import threading
import time

import numpy as np

FRAME = 1920
RATE = 24000


class HeadlessKyutaiClient:
    def __init__(self, url: str, frames: np.ndarray, pace_s: float = 0.08) -> None:
        self.url = url
        self.frames = frames
        self.pace_s = pace_s
        self.text = io.StringIO()
        self.errors = io.StringIO()
        self.received: list[np.ndarray] = []
        self.sent = 0

    async def run(self, tail_s: float = 1.0) -> None:
        import aiohttp
        import sphn
        from moshi.client import Connection
        from moshi.client_utils import RawPrinter

        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as ws:
                conn = Connection.__new__(Connection)
                conn.printer = RawPrinter(stream=self.text, err_stream=self.errors)
                conn.websocket = ws
                conn.sample_rate, conn.frame_size, conn.channels = RATE, FRAME, 1
                conn._done = False
                conn._opus_writer = sphn.OpusStreamWriter(RATE)
                conn._opus_reader = sphn.OpusStreamReader(RATE)
                conn._output_queue = queue.Queue()
                conn._all_pcm_data = None
                conn._event_loop = loop
                receiver = asyncio.create_task(conn._recv_loop())
                feeder = threading.Thread(target=self._feed, args=(conn,), daemon=True)
                feeder.start()
                while feeder.is_alive():
                    await asyncio.sleep(0.05)
                    self._drain(conn)
                deadline = time.monotonic() + tail_s
                while time.monotonic() < deadline and len(self.received) < self.sent - 1:
                    await asyncio.sleep(0.05)
                    self._drain(conn)
                self._drain(conn)
                receiver.cancel()
        self.lost = conn._done

    def _feed(self, conn) -> None:
        """What sounddevice's InputStream does: call back with each block, in real time."""
        t0 = time.monotonic()
        for i, block in enumerate(self.frames):
            conn._on_audio_input(block[:, None], FRAME, None, None)
            self.sent += 1
            time.sleep(max(0.0, t0 + (i + 1) * self.pace_s - time.monotonic()))

    def _drain(self, conn) -> None:
        while True:
            try:
                self.received.append(conn._output_queue.get_nowait())
            except queue.Empty:
                return
