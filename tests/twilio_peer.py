"""A test peer written from Twilio's public Media Streams protocol description (bidirectional
``<Connect><Stream>``): it plays the carrier's side of a call over a real WebSocket.

What it does, as the description says the carrier does: opens the stream, sends ``connected``
then ``start`` (stream and call ids, custom parameters, mu-law 8 kHz mono), then the caller's
audio as ``media`` messages of 20 ms (base64 mu-law, chunk numbers, timestamps) at real time,
``dtmf`` when asked, and ``stop`` at the end. It plays what it is sent through a playback
buffer at real time: a ``mark`` it receives is echoed once the audio queued before it has
played; ``clear`` empties the buffer and echoes every mark still pending.

It records what it received (with arrival times) so tests can check the pacing: how far ahead
of the caller's ear the creature's voice arrived.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field

import numpy as np
import websockets

from face.phone.telephone_audio import CHUNK_BYTES, PHONE_RATE, float_to_mulaw, mulaw_to_float

CHUNK_S = CHUNK_BYTES / PHONE_RATE


@dataclass
class Received:
    media: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, mu-law)
    ahead_s: list[float] = field(default_factory=list)  # buffered audio at each arrival
    marks: list[tuple[float, str]] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    other: list[dict] = field(default_factory=list)

    def audio(self) -> np.ndarray:
        """Everything the creature said, at 8 kHz float."""
        return mulaw_to_float(b"".join(m for _, m in self.media))


class TwilioPeer:
    """``async with TwilioPeer(url, params) as call: await call.say(pcm8k)``."""

    def __init__(
        self,
        url: str,
        custom_parameters: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        call_sid: str = "CA" + "0" * 32,
        stream_sid: str = "MZ" + "1" * 32,
        media_format: dict | None = None,
    ) -> None:
        self.url = url
        self.params = custom_parameters or {}
        self.headers = headers or {}
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.media_format = media_format or {
            "encoding": "audio/x-mulaw",
            "sampleRate": 8000,
            "channels": 1,
        }
        self.got = Received()
        self.ws = None
        self._seq = 0
        self._chunk = 0
        self._t0 = 0.0
        self._play_until = 0.0  # when the playback buffer runs dry
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._reader: asyncio.Task | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    async def __aenter__(self) -> TwilioPeer:
        self.ws = await websockets.connect(self.url, additional_headers=self.headers)
        self._t0 = time.monotonic()
        self._reader = asyncio.create_task(self._read())
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": "AC" + "2" * 32,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": self.media_format,
                    "customParameters": self.params,
                },
                "streamSid": self.stream_sid,
            }
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.ws.close()

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def send(self, msg: dict | str) -> None:
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def say(self, pcm8k: np.ndarray, realtime: bool = True) -> None:
        """The caller's audio (8 kHz float), 20 ms a message, at real time."""
        data = float_to_mulaw(pcm8k)
        start = time.monotonic()
        for k, i in enumerate(range(0, len(data), CHUNK_BYTES)):
            if realtime:
                delay = start + k * CHUNK_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._chunk += 1
            await self.send(
                {
                    "event": "media",
                    "sequenceNumber": self._next_seq(),
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(int(1000 * (time.monotonic() - self._t0))),
                        "payload": base64.b64encode(data[i : i + CHUNK_BYTES]).decode(),
                    },
                    "streamSid": self.stream_sid,
                }
            )

    async def silence(self, seconds: float) -> None:
        await self.say(np.zeros(int(seconds * PHONE_RATE), dtype=np.float32))

    async def dtmf(self, digit: str) -> None:
        await self.send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "stop": {"accountSid": "AC" + "2" * 32, "callSid": self.call_sid},
                "streamSid": self.stream_sid,
            }
        )

    async def wait_for(self, condition, timeout: float) -> bool:
        """Wait (bounded) until ``condition()`` holds; True if it did."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            await asyncio.sleep(0.02)
        return bool(condition())

    # -- what the creature sends --------------------------------------------------------------
    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for text in self.ws:
                now = time.monotonic()
                msg = json.loads(text)
                event = msg.get("event")
                if event == "media":
                    payload = base64.b64decode(msg["media"]["payload"])
                    self._play_until = max(self._play_until, now)
                    self.got.ahead_s.append(self._play_until - now)
                    self._play_until += len(payload) / PHONE_RATE
                    self.got.media.append((now, payload))
                elif event == "mark":
                    name = msg["mark"]["name"]
                    self.got.marks.append((now, name))
                    played_in = max(0.0, self._play_until - now)
                    self._pending[name] = loop.call_later(
                        played_in, lambda n=name: asyncio.ensure_future(self._echo(n))
                    )
                elif event == "clear":
                    self.got.clears.append(now)
                    self._play_until = now
                    for name, handle in list(self._pending.items()):
                        handle.cancel()
                        await self._echo(name)
                elif event == "error":
                    self.got.errors.append(msg.get("error", ""))
                else:
                    self.got.other.append(msg)
            self.close_code = self.ws.close_code  # a normal close ends the loop quietly
        except websockets.ConnectionClosed as e:
            self.close_code = e.rcvd.code if e.rcvd else None
        finally:
            self.closed.set()

    async def _echo(self, name: str) -> None:
        if self._pending.pop(name, None) is None:
            return
        self.got.marks_echoed.append(name)
        try:
            await self.send(
                {
                    "event": "mark",
                    "sequenceNumber": self._next_seq(),
                    "streamSid": self.stream_sid,
                    "mark": {"name": name},
                }
            )
        except websockets.ConnectionClosed:
            pass
