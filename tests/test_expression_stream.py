"""The expression stream for bodies: real WebSockets on the robot channel's port, fed by the
real slow loop (brain + face state) from frames on the bus."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from orchestrator.runtime.expression_stream import GAZE_STALE_S, MAX_HZ, PATH, Gaze
from tests.slow_support import frame, slow_cfg, wait_until


@pytest.fixture
def slow(tmp_path):
    hub = Bus()
    s = BrainHost(slow_cfg(tmp_path), hub).start()
    s.hub = hub
    yield s
    s.stop()


def url(slow: BrainHost, token: str | None = None, **query) -> str:
    q = {"token": token if token is not None else slow.token, **query}
    return f"ws://127.0.0.1:{slow.port}{PATH}?" + "&".join(f"{k}={v}" for k, v in q.items())


def test_a_body_gets_the_creatures_state_latest_wins_at_most_25_hz(slow):
    """Frames published at 200 Hz reach a subscriber at no more than 25 Hz, each message the
    newest state (the highest mouth so far), with the face contract's keys and the body's."""

    async def run() -> tuple[list[dict], float]:
        got: list[dict] = []
        async with connect(url(slow)) as ws:
            wait_until(lambda: slow.expression.subscribers, what="subscriber")
            t0 = time.monotonic()

            async def publish() -> None:
                for i in range(200):  # 1 s of frames at 200 Hz, the mouth rising
                    slow.hub.publish(frame(i, mouth=i / 200))
                    await asyncio.sleep(0.005)

            publisher = asyncio.create_task(publish())
            # read until the last frame's state arrives (however long a loaded machine takes
            # to publish), then bound the count by the time that took: pacing, not a clock
            while time.monotonic() - t0 < 15.0:
                try:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                except asyncio.TimeoutError:
                    continue
                if got[-1]["mouth"] >= 0.99:
                    break
            span_s = time.monotonic() - t0
            await publisher
        return got, span_s

    got, span_s = asyncio.run(run())
    assert got and all(m["type"] == "expression" for m in got)
    for key in ("emotion", "valence", "arousal", "speaking", "mouth", "listening", "t", "state"):
        assert key in got[0], got[0]
    # paced: in span_s at 25 Hz at most span_s * 25 (+1 for the first, sent at once)
    assert 5 <= len(got) <= int(span_s * MAX_HZ) + 1, (len(got), span_s)
    mouths = [m["mouth"] for m in got]
    assert mouths == sorted(mouths)  # never an older state after a newer one
    assert mouths[-1] >= 0.99  # the last frame's state arrives: latest wins, nothing lost at end
    assert slow.expression.stats()["overwritten"] > 0  # the states in between were replaced


def test_a_lower_rate_and_the_gaze_are_honoured_and_a_stale_gaze_is_dropped(slow):
    async def run() -> list[float]:
        stamps = []
        async with connect(url(slow, hz=5)) as ws:
            wait_until(lambda: slow.expression.subscribers, what="subscriber")
            for i in range(60):
                slow.run_sync(slow.expression.set_gaze, Gaze(0.25, -0.5))  # as the page renews it
                slow.hub.publish(frame(i))
                await asyncio.sleep(0.01)
                while True:
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 0.001))
                    except asyncio.TimeoutError:
                        break
                    assert msg["gaze"] == {"x": 0.25, "y": -0.5}
                    stamps.append(time.monotonic())
            await asyncio.sleep(GAZE_STALE_S + 0.2)  # the phone went quiet
            try:  # what was sent before is still in the socket: read it first
                while True:
                    await asyncio.wait_for(ws.recv(), 0.1)
            except asyncio.TimeoutError:
                pass
            slow.hub.publish(frame(100))
            msg = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
            assert "gaze" not in msg, msg
        return stamps

    stamps = asyncio.run(run())
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    # 5 Hz: 200 ms apart on the server; this loaded client reads them with some jitter
    assert gaps and min(gaps) >= 0.12 and sum(gaps) / len(gaps) >= 0.19, gaps


def test_a_wrong_token_or_rate_is_refused_in_one_message(slow):
    async def refused(u: str) -> tuple[dict, int]:
        async with connect(u) as ws:
            msg = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed) as e:
                await ws.recv()
            return msg, e.value.rcvd.code

    msg, code = asyncio.run(refused(url(slow, token="wrong")))
    assert code == 4401 and msg == {"type": "error", "error": "missing or wrong token"}
    msg, code = asyncio.run(refused(url(slow, hz=100)))
    assert code == 4400 and "hz" in msg["error"]
    assert not slow.expression.subscribers


def test_a_subscriber_that_sends_too_much_is_closed_and_nothing_else_is_touched(slow):
    async def run() -> int:
        async with connect(url(slow)) as ws:
            await ws.send("x" * 5000)
            with pytest.raises(ConnectionClosed) as e:
                while True:
                    await ws.recv()
            return e.value.rcvd.code

    assert asyncio.run(run()) == 1009
    wait_until(lambda: not slow.expression.subscribers, what="subscriber gone")
    # the robot channel on the same port still serves
    import httpx

    assert httpx.get(f"http://127.0.0.1:{slow.port}/health").json()["ok"] is True


def test_nobody_subscribed_costs_no_message(slow):
    for i in range(20):
        slow.hub.publish(frame(i))
    time.sleep(0.3)
    assert slow.expression.stats()["published"] == 0
