"""The network side of the remote backend: a Moshi session over Kyutai's wire protocol,
run on its own thread and asyncio loop. It takes the user's frames from a bounded queue,
encodes and sends them, and decodes what comes back into the jitter buffer; it reconnects
(:func:`keep_connected`) when the server refuses, drops or goes silent. The fast loop's
side, which only touches the queue and the buffer, is :class:`RemoteBackend`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from track2_voice.backends.moshi_protocol import (
    Kind,
    PcmFramer,
    ProtocolError,
    RemoteError,
    close_quietly,
    decode_text,
    open_session,
    parse_metadata,
    session_url,
    where,
)
from track2_voice.backends.remote_session import (
    ServerSilent,
    describe_end,
    keep_connected,
)
from track2_voice.config import VoiceConfig
from track2_voice.events import Connected, Disconnected, DiscreteEvent, VoiceError
from track2_voice.frames import SAMPLE_RATE
from track2_voice.jitter import JitterBuffer
from track2_voice.redact import redact_url
from track2_voice.waker import LoopWaker

# the backend's logger: its lines read as they always have, whichever half writes them
log = logging.getLogger("track2_voice.backends.remote")

RECV_TICK_S = 0.25  # how often the receiver checks for a silent server
SENDING_WINDOW_S = 1.0  # "we are sending" means a frame went out within this time
TIMING_KEEP = 4096  # frames of timing kept for diagnostics


@dataclass
class RemoteTiming:
    """Per-frame costs on the network thread (bounded, for benchmarks and diagnostics)."""

    encode_ms: deque = field(default_factory=lambda: deque(maxlen=TIMING_KEEP))
    decode_ms: deque = field(default_factory=lambda: deque(maxlen=TIMING_KEEP))
    sent_at: deque = field(default_factory=lambda: deque(maxlen=TIMING_KEEP))
    received_at: deque = field(default_factory=lambda: deque(maxlen=TIMING_KEEP))


class RemoteLink:
    """The socket client: everything here runs on the network thread except ``__init__``."""

    def __init__(self, cfg: VoiceConfig) -> None:
        self.rcfg = cfg.remote
        self.url = session_url(
            self.rcfg.url, cfg.sampling if self.rcfg.send_sampling else None, self.rcfg.extra_query
        )
        # what events (so the record) and log lines say: the configured URL without its token;
        # self.url, with it, is what every (re)connection uses
        self.shown_url = redact_url(self.rcfg.url)
        self.jitter = JitterBuffer(self.rcfg.jitter_frames, self.rcfg.max_buffer_frames)
        self._send_queue: deque[np.ndarray] = deque(maxlen=self.rcfg.send_queue_frames)
        self._events: deque[DiscreteEvent] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._session_ended: asyncio.Event | None = None
        self._sender_waker: LoopWaker | None = None
        self.info: dict[str, Any] = {}
        self.last_error: str | None = None
        self.sessions = 0
        self.sent_frames = 0
        self.dropped_sends = 0
        self.passages_ended = 0  # translation ends (</s>) heard from a Hibiki server
        self._last_sent = 0.0
        self._last_recv = 0.0
        self.timing = RemoteTiming()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _publish(self, event: DiscreteEvent) -> None:
        event.t = time.monotonic()
        self._events.append(event)

    def _wake_sender(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._supervise(loop))
        finally:
            self._connected.clear()
            pending = asyncio.all_tasks(loop)  # e.g. the websocket's keepalive
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _supervise(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self._sender_waker = LoopWaker(loop, self._wake_sender, "remote-wake")
        self._loop = loop
        cfg = self.rcfg
        await keep_connected(
            self._attempt,
            self._stop,
            cfg.backoff_base_s,
            cfg.backoff_cap_s,
            self._ended,
            self._went_down,
            log,
        )

    async def _attempt(self) -> tuple[str, bool]:
        """One connection: (why it ended, whether a session ran)."""
        cfg = self.rcfg
        try:
            ws, info = await open_session(
                self.url, cfg.insecure_tls, cfg.connect_timeout_s, cfg.handshake_timeout_s
            )
        except RemoteError as e:
            return str(e), False
        except Exception as e:  # anything else is still a reason to retry, loudly
            return f"unexpected error connecting to {where(self.url)}: {e!r}", False
        return await self._run_session(ws, info), True

    def _ended(self, reason: str) -> None:
        self._connected.clear()
        self.last_error = reason

    def _went_down(self, reason: str, delay: float) -> None:
        log.warning("remote: %s; reconnecting in %.2f s", reason, delay)
        self._publish(Disconnected(url=self.shown_url, reason=reason, retry_s=delay))

    async def _run_session(self, ws, info: dict[str, Any]) -> str:
        """One session, until it drops, goes silent, is reset or the backend closes."""
        self.info = info
        self.sessions += 1
        self._send_queue.clear()
        self.jitter.clear()
        self.timing.sent_at.clear()
        self.timing.received_at.clear()
        self._session_ended = asyncio.Event()
        self._last_recv = time.monotonic()
        self._connected.set()
        log.info("remote: connected to %s (session %d)", where(self.url), self.sessions)
        self._publish(Connected(url=self.shown_url, session=self.sessions, extra=dict(info)))
        sender = asyncio.create_task(self._send_loop(ws))
        receiver = asyncio.create_task(self._recv_loop(ws))
        stopper = asyncio.create_task(self._stop.wait())
        ended = asyncio.create_task(self._session_ended.wait())
        tasks = {sender, receiver, stopper, ended}
        reason = "session ended"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            self._connected.clear()
            if stopper in done:
                reason = "closed"
            elif ended in done:
                reason = "reset: a new session was requested"
            else:
                for t in (receiver, sender):
                    if t in done:
                        reason = describe_end(t.exception(), where(self.url))
                        break
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await close_quietly(ws)
        return reason

    async def _send_loop(self, ws) -> None:
        import sphn

        writer = sphn.OpusStreamWriter(SAMPLE_RATE)
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._send_queue:
                pcm = self._send_queue.popleft()
                t = time.perf_counter()
                page = writer.append_pcm(pcm)
                self.timing.encode_ms.append((time.perf_counter() - t) * 1000.0)
                self.sent_frames += 1
                if len(page):
                    await ws.send(bytes([Kind.AUDIO]) + page)
                self._last_sent = time.monotonic()
                self.timing.sent_at.append(self._last_sent)

    async def _recv_loop(self, ws) -> None:
        import sphn

        reader = sphn.OpusStreamReader(SAMPLE_RATE)
        framer = PcmFramer()
        silent_after = self.rcfg.silence_timeout_s
        while True:
            try:
                msg = await asyncio.wait_for(ws.recv(), RECV_TICK_S)
            except (TimeoutError, asyncio.TimeoutError):
                now = time.monotonic()
                sending = now - self._last_sent < SENDING_WINDOW_S
                if sending and now - self._last_recv > silent_after:
                    raise ServerSilent(
                        f"{where(self.url)} sent nothing for {silent_after:g} s "
                        "while we were sending"
                    ) from None
                continue
            now = time.monotonic()
            self._last_recv = now
            if isinstance(msg, str) or not msg:
                raise ProtocolError(f"expected a binary message with a kind byte, got {msg!r:.60}")
            kind, payload = msg[0], msg[1:]
            if kind == Kind.AUDIO:
                t = time.perf_counter()
                try:
                    pcm = reader.append_bytes(payload)
                except Exception as e:
                    raise ProtocolError(f"undecodable Ogg/Opus audio from the server: {e}") from e
                for frame in framer.push(np.asarray(pcm, dtype=np.float32)):
                    self.jitter.push_audio(frame, now)
                    self.timing.received_at.append(now)
                self.timing.decode_ms.append((time.perf_counter() - t) * 1000.0)
            elif kind == Kind.TEXT:
                self.jitter.push_text(decode_text(payload))
            elif kind == Kind.METADATA:
                self.info["metadata"] = parse_metadata(payload)
            elif kind == Kind.ERROR:
                text = decode_text(payload)
                log.error("remote server error: %s", text)
                self._publish(VoiceError(where="remote", error=text))
            elif kind in (Kind.PING, Kind.CONTROL, Kind.HANDSHAKE):
                continue
            else:
                log.warning("remote: ignoring a message of unknown kind %d", kind)
