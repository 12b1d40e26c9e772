"""Kyutai's streaming STT protocol (``/api/asr-streaming``, msgpack) between the creature's
client (``voice.transcript.backend: kyutai-remote``) and ``creature model-server`` serving a
tiny random STT checkpoint in batched slots: the same words as in-process, two sessions in one
batch, credentials and malformed messages."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests.model_server_support import TOKEN
from track2_voice.audio.devices import frames_of
from track2_voice.config import KyutaiRemoteSttConfig, KyutaiSttConfig, TranscriptConfig
from track2_voice.events import UserWord
from track2_voice.transcript.kyutai_remote import KyutaiRemoteRecognizer
from track2_voice.transcript.worker import TranscriptWorker, start_transcript

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def server(stt_tiny):
    from track2_voice.model_server.options import ServerOptions
    from track2_voice.model_server.server import ModelServer

    opts = ServerOptions(checkpoint=str(stt_tiny), port=0, token=TOKEN, slots=2,
                         input_queue_frames=500, output_queue_frames=500)  # fmt: skip
    srv = ModelServer(opts).start_in_thread()
    yield srv
    srv.stop()


def asr_url(srv) -> str:
    return f"ws://127.0.0.1:{srv.port}/api/asr-streaming"


def noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(24_000 * seconds))).astype(np.float32)


def hear(w, pcm: np.ndarray, got: list) -> list[UserWord]:
    for i, f in enumerate(frames_of(pcm)):
        w.hear(i, time.monotonic(), f)
    w.flush()
    w.close()
    return got


def finals_within(words: list[UserWord], seconds: float) -> list[tuple[str, float, float]]:
    return [(u.text, u.start, u.end) for u in words if u.final and u.end <= seconds]


def test_the_remote_client_hears_the_same_words_as_in_process(stt_tiny, server, monkeypatch):
    monkeypatch.setenv("CREATURE_STT_API_KEY", TOKEN)
    pcm = noise(2.0, seed=4)
    local: list[UserWord] = []
    cfg = TranscriptConfig(backend="kyutai", kyutai=KyutaiSttConfig(hf_repo=str(stt_tiny)))
    hear(start_transcript(local.append, cfg, live=False), pcm, local)
    remote: list[UserWord] = []
    rec = KyutaiRemoteRecognizer(KyutaiRemoteSttConfig(url=asr_url(server)))
    assert rec.sessions == 1, rec.last_error
    hear(TranscriptWorker(remote.append, rec, inline=True), pcm, remote)
    assert all(u.source == "kyutai-remote" for u in remote)
    want = finals_within(local, 2.0)
    assert want, "the model wrote no word in the audio"
    assert finals_within(remote, 2.0) == want


def test_two_sessions_share_the_batch_and_each_hears_its_own_audio(stt_tiny, server, monkeypatch):
    """A classroom: two clients at once, one batched step for both, each its own words."""
    monkeypatch.setenv("CREATURE_STT_API_KEY", TOKEN)
    cfg = TranscriptConfig(backend="kyutai", kyutai=KyutaiSttConfig(hf_repo=str(stt_tiny)))
    sounds = [noise(1.6, seed=7), noise(1.6, seed=8)]
    alone = []
    for pcm in sounds:
        got: list[UserWord] = []
        alone.append(finals_within(hear(start_transcript(got.append, cfg, False), pcm, got), 1.6))
    recs = [KyutaiRemoteRecognizer(KyutaiRemoteSttConfig(url=asr_url(server))) for _ in sounds]
    outs: list[list[UserWord]] = [[], []]
    workers = [TranscriptWorker(o.append, r, inline=True) for o, r in zip(outs, recs)]
    for i, frames in enumerate(zip(*(frames_of(p) for p in sounds))):
        for w, f in zip(workers, frames):
            w.hear(i, time.monotonic(), f)
    for w in workers:
        w.flush()
        w.close()
    assert [finals_within(o, 1.6) for o in outs] == alone
    assert alone[0] != alone[1]


async def _talk(url: str, headers: dict, messages: list[bytes], until: str, timeout=30.0):
    import msgpack
    import websockets

    got = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        got.append(msgpack.unpackb(await ws.recv()))
        for m in messages:
            await ws.send(m)
        async with asyncio.timeout(timeout):
            async for raw in ws:
                got.append(msgpack.unpackb(raw))
                if got[-1]["type"] == until:
                    break
    return got


def test_the_protocol_answers_bad_messages_and_keeps_serving(server):
    import msgpack

    audio = msgpack.packb({"type": "Audio", "pcm": noise(0.8, 1).tolist()})
    bad = [b"\xc1not msgpack", msgpack.packb([1, 2]), msgpack.packb({"type": "Audio", "pcm": "x"}),
           msgpack.packb({"type": "Dance"})]  # fmt: skip
    marker = msgpack.packb({"type": "Marker", "id": 42})
    silence = msgpack.packb({"type": "Audio", "pcm": [0.0] * 24_000})
    got = asyncio.run(_talk(asr_url(server), {"kyutai-api-key": TOKEN},
                            [*bad, audio, silence, marker], until="Marker"))  # fmt: skip
    assert got[0] == {"type": "Ready"}
    errors = [m for m in got if m["type"] == "Error"]
    assert len(errors) == len(bad)
    steps = [m["step_idx"] for m in got if m["type"] == "Step"]
    assert steps and steps == list(range(1, len(steps) + 1))
    assert got[-1] == {"type": "Marker", "id": 42}
    # the marker comes once the whole frames before it (10 + 12 of 12.5) went through the model
    assert steps[-1] >= 10 + 12


def test_a_wrong_key_is_refused_with_an_error(server):
    import msgpack
    import websockets

    async def go():
        async with websockets.connect(
            asr_url(server), additional_headers={"kyutai-api-key": "wrong-key-123"}
        ) as ws:
            first = msgpack.unpackb(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return first, closed.value.rcvd.code

    first, code = asyncio.run(go())
    assert first["type"] == "Error" and "token" in first["message"]
    assert code == 1008


def test_the_chat_endpoint_of_an_stt_server_points_to_the_stt_one(server):
    import websockets

    async def go():
        url = f"ws://127.0.0.1:{server.port}/api/chat?token={TOKEN}"
        async with websockets.connect(url) as ws:
            first = await ws.recv()
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return first

    first = asyncio.run(go())
    assert first[0] == 5 and b"/api/asr-streaming" in first
