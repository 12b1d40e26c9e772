"""What the model server's tests share with the Ray Serve and interpreter tests: the real
CLI in this process, test sounds, the unbatched reference a batched session must equal, a
schedule runner for the batch engine, a Moshi-protocol client over the wire, and the
creature's own remote backend holding one session."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GREEDY_QUERY = "text_temperature=0&audio_temperature=0"
TOKEN = "test-token-0123"


def cli(*args: str) -> int:
    """The real CLI, in this process (no second interpreter to start)."""
    from orchestrator.cli.main import main

    return main(list(args))


def sounds(n_frames: int, seed: int) -> np.ndarray:
    """A different sound per seed: noise or a gliding tone at its own level."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames * 1920) / 24000
    level = 0.02 + 0.1 * (seed % 4)
    if seed % 2:
        x = np.sin(2 * np.pi * (150 + 90 * seed) * t * (1 + 0.2 * t))
    else:
        x = rng.standard_normal(t.size)
    return (level * x).astype(np.float32).reshape(n_frames, 1920)


def reference(ckpt: Path, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """One session alone, as Kyutai's server runs it: batch of one, greedy (``moshi.server``;
    for a translation checkpoint ``hibiki-zero serve``: conditioned, cfg 1). Per frame: None
    while the acoustic delay fills, else (tokens, pcm)."""
    import torch
    from moshi.models import LMGen

    from track2_voice.backends.model_kind import CFG_COEF, ModelKind, condition_tensors
    from track2_voice.model_server.engine import load_model

    m = load_model(ckpt, "cpu", torch.float32)
    kind = ModelKind.of(m.model_type)
    ct = condition_tensors(kind, m.lm, 1) if kind.translates else None
    gen = LMGen(m.lm, temp=0, temp_text=0, cfg_coef=CFG_COEF, condition_tensors=ct)
    out: list = []
    with torch.no_grad(), gen.streaming(1), m.mimi.streaming(1):
        for i, f in enumerate(frames):
            codes = m.mimi.encode(torch.from_numpy(f)[None, None])
            if i == 0:
                m.mimi.reset_streaming()
            tokens = gen.step(codes[:, :, :1])
            if tokens is None:
                out.append(None)
                continue
            pcm = m.mimi.decode(tokens[:, 1:])
            out.append((tokens[0, :, 0].numpy().copy(), pcm[0, 0].numpy().copy()))
    return out


def greedy():
    from track2_voice.model_server.options import SlotSampling

    return SlotSampling(temp_text=0, temp=0, top_k_text=0, top_k=0)


def run_schedule(eng, plan: dict[int, tuple[int, np.ndarray]], steps: int, sampling=None):
    """plan: slot -> (first step, frames). Returns slot -> the outputs it received."""
    got: dict[int, list] = {slot: [] for slot in plan}
    for t in range(steps):
        batch = {}
        for slot, (start, frames) in plan.items():
            if t == start:
                eng.reset_slot(slot, sampling(slot) if sampling else greedy())
            if start <= t < start + len(frames):
                batch[slot] = frames[t - start]
        for o in eng.step(batch):
            got[o.slot].append(o)
    return got


def assert_same_stream(outputs, ref) -> None:
    assert len(outputs) == len(ref)
    for i, (o, r) in enumerate(zip(outputs, ref)):
        if r is None:
            assert o.pcm is None and o.tokens is None, f"frame {i}"
            continue
        assert o.tokens is not None, f"frame {i}: no output where moshi.server has one"
        assert np.array_equal(o.tokens, r[0]), f"frame {i}: tokens {o.tokens} != {r[0]}"
        np.testing.assert_allclose(o.pcm, r[1], atol=1e-5, err_msg=f"frame {i}")


def opus_pages(frames: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """Ogg/Opus pages as a client sends them, and the frames the server will decode."""
    import sphn

    from track2_voice.backends.moshi_protocol import PcmFramer

    writer, reader, framer = sphn.OpusStreamWriter(24000), sphn.OpusStreamReader(24000), PcmFramer()
    pages = [p for p in (writer.append_pcm(f) for f in frames) if len(p)]
    decoded = [fr for p in pages for fr in framer.push(np.asarray(reader.append_bytes(p)))]
    return pages, np.array(decoded, dtype=np.float32)


class WireClient:
    """A Moshi-protocol client: opens a session (``where``: the handshake's metadata, e.g.
    the replica it landed on), sends pages (paced or all at once), records what comes back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws = None
        self.where: dict = {}
        self.audio_at: list[float] = []
        self.texts: list[str] = []
        self.errors: list[str] = []
        self.sent = 0

    async def open(self) -> WireClient:
        from track2_voice.backends.moshi_protocol import open_session

        self.ws, info = await open_session(self.url)
        self.where = info.get("metadata") or {}
        return self

    async def run(self, pages: list[bytes], pace_s: float | None, until=None, tail_s=1.0):
        """Open, then ``stream``."""
        await self.open()
        await self.stream(pages, pace_s, until, tail_s)

    async def stream(self, pages: list[bytes], pace_s: float | None, until=None, tail_s=1.0):
        """Send ``pages``, then listen until ``until(self)`` or for ``tail_s``; then close."""
        rx = asyncio.create_task(self._receive())
        try:
            t0 = time.monotonic()
            for i, p in enumerate(pages):
                await self.ws.send(b"\x01" + p)
                self.sent += 1
                if pace_s:
                    await asyncio.sleep(max(0.0, t0 + (i + 1) * pace_s - time.monotonic()))
            deadline = time.monotonic() + tail_s
            while time.monotonic() < deadline and not (until and until(self)):
                await asyncio.sleep(0.02)
        finally:
            rx.cancel()
            await self.ws.close()

    async def _receive(self) -> None:
        async for m in self.ws:
            if m[0] == 1:
                self.audio_at.append(time.monotonic())
            elif m[0] == 2:
                self.texts.append(m[1:].decode())
            elif m[0] == 5:
                self.errors.append(m[1:].decode())


@dataclass
class RemoteRun:
    """What one session of the remote backend left: the loop's stats, the backend's (after
    the replies), every event the loop published, and the input's length in frames."""

    stats: Any
    backend: dict
    events: list
    frames: int


def remote_session(cfg, wav: Path, behind: int, wait_s: float = 30.0) -> RemoteRun:
    """The real fast loop reads ``wav`` in real time through the remote backend of ``cfg``
    (to ``cfg.remote.url``); after the input, until every reply but ``behind`` came back
    (the pipeline's delay; a loaded CPU lags), at most ``wait_s``."""
    from orchestrator.bus import Bus
    from tests.slow_support import wait_until
    from track2_voice.audio.devices import FileSource, NullSink
    from track2_voice.backends.remote import RemoteBackend
    from track2_voice.loop import FastLoop

    cfg.remote.max_buffer_frames = 50  # keep every reply, even if the shared CPU stalls
    backend = RemoteBackend(cfg)
    hub = Bus()
    sub = hub.subscribe("test", 100_000)
    source = FileSource(wav, realtime=True)
    loop = FastLoop(backend, source, NullSink(), hub, cfg)
    backend.start()
    try:
        stats = loop.run()
        try:
            wait_until(lambda: backend.stats()["received_frames"] >= len(source) - behind, wait_s)
        except AssertionError:
            raise AssertionError(f"replies missing: {backend.stats()}") from None
        st = backend.stats()
    finally:
        loop.close()
    return RemoteRun(stats, st, sub.drain(), len(source))
