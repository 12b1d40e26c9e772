"""The batched model server on this CPU with a tiny random checkpoint (real moshi code,
real WebSockets): each batched session gets exactly the tokens it would get alone, a slot's
join/leave/rollover never touches another slot, each slot samples from its own seed, a full
server refuses clearly, Kyutai's Python client and the creature's remote backend hold
sessions, and a client that stops reading delays nobody else.

The reference for "alone" is the hot path of ``moshi.server`` (batch of one), written out
below; greedy decoding in float32 makes the comparison exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, creature
from tests.model_server_support import (
    GREEDY_QUERY,
    TOKEN,
    WireClient,
    assert_same_stream,
    cli,
    greedy,
    opus_pages,
    reference,
    remote_session,
    run_schedule,
    sounds,
)

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]


ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # several processes share two cores here


@pytest.fixture(scope="module")
def ckpt(random_tiny) -> Path:
    """The session's tiny checkpoint, whose Mimi hears its input (conftest)."""
    return random_tiny


def engine(ckpt: Path, slots: int):
    from track2_voice.model_server.engine import BatchEngine

    return BatchEngine.load(ckpt, slots)


def test_each_batched_session_gets_exactly_the_tokens_it_would_get_alone(ckpt):
    n = 24
    inputs = {slot: sounds(n, seed=slot) for slot in (0, 1, 3, 4)}
    starts = {0: 0, 1: 1, 3: 3, 4: 6}  # joined at different steps; slot 2 stays idle
    got = run_schedule(engine(ckpt, 5), {s: (starts[s], inputs[s]) for s in inputs}, 6 + n)
    streams = []
    for slot, frames in inputs.items():
        assert_same_stream(got[slot], reference(ckpt, frames))
        streams.append(tuple(tuple(o.tokens) for o in got[slot] if o.tokens is not None))
    # the sessions hear different sounds and say different things: a mix-up would show
    assert len(set(streams)) == len(streams)


def test_join_leave_and_rollover_of_one_slot_leave_the_others_unchanged(ckpt):
    eng = engine(ckpt, 3)
    a, b, c, d = (sounds(36, s) for s in (10, 11, 12, 13))
    got = {0: [], 1: [], 2: []}
    for t in range(36):
        batch = {0: a[t]}  # A: the whole time
        if t == 0:
            eng.reset_slot(0, greedy())
        if t == 4:
            eng.reset_slot(1, greedy())  # B joins ...
        if 4 <= t < 14:
            batch[1] = b[t - 4]  # ... and leaves at 14
        if t == 18:
            eng.reset_slot(1, greedy())  # D takes B's freed slot
        if t >= 18:
            batch[1] = d[t - 18]
        if t in (10, 22):
            eng.reset_slot(2, greedy())  # C joins at 10 and rolls over at 22
        if t >= 10:
            batch[2] = c[t - 10]
        for o in eng.step(batch):
            got[o.slot].append(o)
    assert_same_stream(got[0], reference(ckpt, a))
    assert_same_stream(got[1][:10], reference(ckpt, b[:10]))
    assert_same_stream(got[1][10:], reference(ckpt, d[:18]))  # a clean slot, B forgotten
    assert_same_stream(got[2][:12], reference(ckpt, c[:12]))
    assert_same_stream(got[2][12:], reference(ckpt, c[12:26]))  # fresh after its rollover


def test_each_slot_samples_from_its_own_seed(ckpt):
    from track2_voice.model_server.options import SlotSampling

    n = 20
    x = sounds(n, seed=5)
    seeds = {0: 111, 1: 222, 2: 111}

    def sampling(slot):
        return SlotSampling(seed_text=seeds[slot], seed_audio=seeds[slot] + 1)

    busy = run_schedule(engine(ckpt, 3), {0: (0, x), 1: (2, x), 2: (5, x)}, n + 5, sampling)
    alone = run_schedule(engine(ckpt, 3), {2: (0, x)}, n, sampling)

    def tokens(outs):
        return [tuple(o.tokens) for o in outs if o.tokens is not None]

    assert tokens(busy[0]) == tokens(busy[2]) == tokens(alone[2])  # same seed, same draws
    assert tokens(busy[1]) != tokens(busy[0])  # another seed samples something else
    assert len({t[0] for t in tokens(busy[0])}) > 3  # it really samples (not greedy)


def test_the_rollover_policy_resets_only_its_own_slot(ckpt):
    """Through the scheduler: each session rolls over after its own step budget, and its
    stream then starts afresh, while the other session (rolling at another moment) goes on."""
    from track2_voice.config import RolloverConfig
    from track2_voice.model_server.scheduler import Scheduler

    budget = RolloverConfig(max_steps=16, margin_steps=0)  # a reset after 15 steps
    sched = Scheduler(engine(ckpt, 2), rollover=budget, inbox_frames=100).start()
    got: dict[str, list] = {"a": [], "b": []}
    done = threading.Event()

    def collector(name):
        def deliver(out):
            got[name].append(out)
            if len(got["a"]) == 24 and len(got["b"]) == 20:
                done.set()

        return deliver

    x, y = sounds(24, 40), sounds(20, 41)
    try:
        a = sched.join(greedy(), collector("a"))
        for f in x[:5]:
            sched.push(a, f)
        deadline = time.monotonic() + 30
        while len(got["a"]) < 5:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        b = sched.join(greedy(), collector("b"))  # joins 5 steps later
        for f in x[5:]:
            sched.push(a, f)
        for f in y:
            sched.push(b, f)
        assert done.wait(30), (len(got["a"]), len(got["b"]))
        assert a.stats.rollovers == 1 and b.stats.rollovers == 1
    finally:
        sched.stop()
    assert_same_stream(got["a"][:15], reference(ckpt, x[:15]))
    assert_same_stream(got["a"][15:], reference(ckpt, x[15:]))
    assert_same_stream(got["b"][:15], reference(ckpt, y[:15]))
    assert_same_stream(got["b"][15:], reference(ckpt, y[15:]))


# -- over the wire --------------------------------------------------------------------------


def started_server(ckpt: Path, **kw):
    from track2_voice.model_server.options import ServerOptions
    from track2_voice.model_server.server import ModelServer

    opts = ServerOptions(checkpoint=str(ckpt), port=0, token=TOKEN, **kw)
    return ModelServer(opts).start_in_thread()


@pytest.fixture(scope="module")
def server(ckpt):
    srv = started_server(ckpt, slots=2, stall_timeout_s=1.5, send_buffer_bytes=1024)
    yield srv
    srv.stop()


def url(srv, query: str = "") -> str:
    return srv.url() + (f"&{query}" if query else "")


def wait_idle(srv, timeout=5.0) -> None:
    """Until the previous test's sessions have left (closing is asynchronous)."""
    deadline = time.monotonic() + timeout
    while srv.scheduler.free_slots() < srv.scheduler.slots:
        assert time.monotonic() < deadline, srv.stats()
        time.sleep(0.02)


def test_sessions_over_the_wire_get_the_unbatched_tokens(ckpt):
    """Two clients at once, sending as fast as they can: the text each receives is the
    text moshi.server's path gives for the audio it sent, however the frames interleave."""
    from track2_voice.texttap import piece_text

    srv = started_server(ckpt, slots=2, input_queue_frames=200)
    try:
        tok = srv.engine.tokenizer
        plans = []
        for seed in (21, 22):
            pages, decoded = opus_pages(sounds(30, seed))
            ref = [r for r in reference(ckpt, decoded) if r is not None]
            pieces = [p for p in (piece_text(tok, int(r[0][0])) for r in ref) if p]
            plans.append((pages, pieces))
        clients = [WireClient(url(srv, GREEDY_QUERY)) for _ in plans]

        def enough(n):
            return lambda c: len(c.texts) >= n

        async def both():
            await asyncio.gather(
                *(
                    c.run(pages, None, until=enough(len(pieces)), tail_s=20)
                    for c, (pages, pieces) in zip(clients, plans)
                )
            )

        asyncio.run(both())
    finally:
        srv.stop()
    for c, (_, pieces) in zip(clients, plans):
        assert len(pieces) > 5
        assert c.texts[: len(pieces)] == pieces
    assert plans[0][1] != plans[1][1]


def test_kyutai_python_client_holds_a_session(server):
    from tests.kyutai_client import HeadlessKyutaiClient

    wait_idle(server)
    client = HeadlessKyutaiClient(url(server), sounds(25, seed=7))
    asyncio.run(client.run(tail_s=3.0))
    assert not client.lost, client.errors.getvalue()
    assert client.sent == 25
    # one 1920-sample block back per block sent, less the pipeline's delay
    assert len(client.received) >= 20
    assert all(b.shape == (1920,) for b in client.received)
    assert np.abs(np.concatenate(client.received)).max() > 1e-3
    assert client.text.getvalue().strip()  # printed by Kyutai's own printer


def test_remote_backend_holds_a_session(server, tmp_path):
    import soundfile as sf

    from track2_voice.config import VoiceConfig
    from track2_voice.events import FrameEvent

    wait_idle(server)
    wav = tmp_path / "in.wav"
    sf.write(wav, sounds(30, seed=8).reshape(-1), 24000)
    cfg = VoiceConfig(backend="remote")
    cfg.remote.url = url(server)
    run = remote_session(cfg, wav, behind=1)
    stats, st, n = run.stats, run.backend, run.frames
    frames = [e for e in run.events if isinstance(e, FrameEvent)]
    assert stats.frames == n and stats.errors == 0
    assert st["sessions"] == 1 and st["sent_frames"] == n
    assert st["received_frames"] >= n - 1
    assert sum(1 for f in frames if f.text) >= 5


def test_a_full_server_refuses_the_next_session_and_the_others_carry_on(server):
    from websockets.asyncio.client import connect

    from track2_voice.backends.moshi_protocol import HandshakeError, open_session

    wait_idle(server)
    pages, _ = opus_pages(sounds(40, seed=9))
    holders = [WireClient(url(server)) for _ in range(2)]
    outcome: dict = {}

    async def refused_third():
        await asyncio.sleep(1.0)  # both holders are streaming
        before = [len(h.audio_at) for h in holders]
        t0 = time.monotonic()
        with pytest.raises(HandshakeError, match="no free slot: all 2 slots") as e:
            await open_session(url(server))
        outcome["message"] = str(e.value)
        outcome["refusal_s"] = time.monotonic() - t0
        async with connect(url(server)) as ws:  # the close code too
            first = await ws.recv()
            await ws.wait_closed()
        outcome["first"], outcome["code"] = first, ws.close_code
        await asyncio.sleep(1.0)
        outcome["grew"] = [len(h.audio_at) - b for h, b in zip(holders, before)]

    async def all_three():
        await asyncio.gather(*(h.run(pages, 0.08) for h in holders), refused_third())

    asyncio.run(all_three())
    assert outcome["first"][0] == 5 and outcome["code"] == 1013
    assert outcome["refusal_s"] < 2.0
    # the running sessions kept getting frames through the refusals (about 12 per second)
    assert all(g >= 10 for g in outcome["grew"]), outcome
    assert server.scheduler.refused >= 2
    for h in holders:
        assert len(h.audio_at) >= 35 and not h.errors


def test_a_client_that_stops_reading_does_not_delay_the_others(server):
    """The stalled client's socket fills (small buffers on both ends), its sender blocks,
    and the server closes it after the stall timeout; meanwhile the other session receives
    every frame at the pace it sends."""
    import socket

    from websockets.asyncio.client import connect

    wait_idle(server)
    pages, _ = opus_pages(sounds(75, seed=12))  # 6 s
    reader = WireClient(url(server))
    closed: dict = {}
    before = server.stalled_closed

    async def stalled():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.connect(("127.0.0.1", server.port))
        ws = await connect(url(server), sock=sock, max_queue=1)  # stops reading when full
        t0 = time.monotonic()
        try:
            for p in pages * 2:
                await ws.send(b"\x01" + p)
                await asyncio.sleep(0.08)
                if server.stalled_closed > before:  # the server gave up on us
                    closed["after_s"] = time.monotonic() - t0
                    break
        finally:
            sock.close()

    async def both():
        everything = lambda c: len(c.audio_at) >= c.sent - 2  # noqa: E731
        await asyncio.gather(reader.run(pages, 0.08, until=everything, tail_s=15), stalled())

    asyncio.run(both())
    # the server closed it (not reading, the client itself cannot see the close)
    assert "after_s" in closed and closed["after_s"] < 10.0, server.stats()
    gaps = np.diff(reader.audio_at)
    # every frame sent came back (less the pipeline's delay of a frame or two)
    assert len(reader.audio_at) >= reader.sent - 3 and reader.sent > 30
    # a reader held up by the stalled one would see a gap of the stall timeout (1.5 s)
    assert gaps.max() < 1.0, gaps.max()


def test_wrong_token_origin_and_parameters_are_refused_and_serving_goes_on(server):
    from websockets.asyncio.client import connect

    from track2_voice.backends.moshi_protocol import HandshakeError, open_session

    wait_idle(server)
    refused_before = server.scheduler.refused
    bare = url(server).split("?")[0]
    cases = [
        (bare, None, "missing or wrong access token"),
        (bare + "?token=nope-nope-nope", None, "missing or wrong access token"),
        (url(server), "http://elsewhere.example", "origin http://elsewhere.example is not allowed"),
        (url(server, "text_temperature=warm"), None, "text_temperature: expected a number"),
        (url(server, "audio_topk=-3"), None, "audio_topk"),
    ]

    async def probe():
        for u, origin, message in cases:
            if origin is None:
                with pytest.raises(HandshakeError, match=message):
                    await open_session(u)
            else:
                async with connect(u, origin=origin) as ws:
                    msg = await ws.recv()
                    await ws.wait_closed()
                assert msg[0] == 5 and message in msg[1:].decode() and ws.close_code == 1008
        ws, _ = await open_session(url(server))  # and a good session still opens
        replies = []
        await ws.send("not binary")
        replies.append(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(b"\x01" + b"garbage" * 10)
        replies.append(await asyncio.wait_for(ws.recv(), 5))
        pages, _ = opus_pages(sounds(10, seed=14))
        for p in pages:  # the session goes on after both
            await ws.send(b"\x01" + p)
        while (await asyncio.wait_for(ws.recv(), 10))[0] != 1:
            pass  # until audio comes back
        await ws.close()
        return replies

    first, second = asyncio.run(probe())
    assert first[0] == 5 and b"expected binary messages" in first
    assert second[0] == 5 and b"undecodable Ogg/Opus audio" in second
    health = server.stats()
    # turned away before asking for a slot: not counted as capacity refusals
    assert health["healthy"] and health["refused"] == refused_before


def test_a_silent_client_is_closed_and_frees_its_slot(ckpt):
    from websockets.asyncio.client import connect

    from track2_voice.backends.moshi_protocol import open_session

    srv = started_server(ckpt, slots=1, idle_timeout_s=0.5, warmup=False)
    try:

        async def scenario():
            async with connect(url(srv)) as ws:
                assert await ws.recv() == b"\x00"  # handshake, then we say nothing
                msg = await asyncio.wait_for(ws.recv(), 10)
                await ws.wait_closed()
            ws2, _ = await open_session(url(srv))  # the only slot is free again
            await ws2.close()
            return msg

        msg = asyncio.run(scenario())
    finally:
        srv.stop()
    assert msg[0] == 5 and b"nothing received for 0.5 s" in msg


def test_creatures_talk_to_one_model_server_at_once(ckpt, tmp_path):
    """``creature model-server`` and two ``creature run --backend remote`` against it."""
    import soundfile as sf

    cmd = [
        sys.executable, "-m", "orchestrator.cli", "model-server", "--checkpoint", str(ckpt),
        "--slots", "3", "--port", "0", "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), **ONE_THREAD}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("model server listening: ws://"), (line, proc.stderr.read())
        chat_url = line.split(": ", 1)[1].strip()
        assert "?token=" in chat_url
        results: dict = {}

        def run_creature(i: int) -> None:
            wav, rec = tmp_path / f"in{i}.wav", tmp_path / f"ev{i}.jsonl"
            sf.write(wav, sounds(25, seed=30 + i).reshape(-1), 24000)
            results[i] = (creature(
                "run", "--backend", "remote", "--url", chat_url, "--input", str(wav),
                "--record", str(rec), timeout=120, env=ONE_THREAD,
            ), rec)  # fmt: skip

        threads = [threading.Thread(target=run_creature, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        import urllib.request

        health_url = chat_url.replace("ws://", "http://").split("/api/chat")[0] + "/healthz"
        health = json.loads(urllib.request.urlopen(health_url, timeout=5).read())
    finally:
        proc.terminate()
        proc.wait(10)
    for r, rec in results.values():
        assert r.returncode == 0, r.stderr
        events = [json.loads(x) for x in rec.read_text().splitlines()]
        assert any(e["kind"] == "connected" for e in events)
        assert sum(1 for e in events if e["kind"] == "frame" and e.get("text")) >= 3
    assert len(results) == 2 and health["served"] == 2 and health["healthy"]


def test_full_size_checkpoint_has_the_published_shapes_without_allocating(capsys):
    from track2_voice.devtools.checkpoint_random import safetensors_header, tensors_for

    assert cli("checkpoint", "random", "/nonexistent/x", "--size", "full", "--dry-run") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["lm_parameters"] == 7_687_729_152  # Moshi 7B
    assert info["lm_tensors"] == 439 and info["lm_dtype"] == "bfloat16"
    assert not Path("/nonexistent/x").exists()  # a dry run writes nothing
    tensors = tensors_for("full")  # the same (cached) meta-device build
    shapes = {name: shape for name, shape, _ in tensors}
    assert shapes["text_emb.weight"] == (32001, 4096)
    assert shapes["text_linear.weight"] == (32000, 4096)
    assert shapes["transformer.layers.31.gating.linear_out.weight"] == (4096, 11264)
    assert shapes["depformer_emb.6.weight"] == (2049, 1024)  # codebooks 2..8: 2048 + pad
    assert shapes["depformer_text_emb.weight"] == (32001, 1024)
    header = safetensors_header(list(tensors), "bfloat16")
    meta = json.loads(header[8:])
    last = meta[tensors[-1][0]]["data_offsets"][1]
    assert last == 2 * info["lm_parameters"] == info["lm_file_bytes"] - len(header)


def test_bad_model_server_flags_are_one_line_errors(tmp_path, capsys):
    assert cli("model-server", "--checkpoint", str(tmp_path), "--slots", "0") == 2
    assert capsys.readouterr().err.strip() == "creature: error: --slots must be at least 1, got 0"
    missing = tmp_path / "none"
    assert cli("model-server", "--checkpoint", str(missing), "--port", "0") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(missing) in err and len(err.strip().splitlines()) == 1
