"""The face server over real sockets: pages, presets, fan-out, and a client that never reads."""

from __future__ import annotations

import json
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from face import FaceConfig, FaceServer
from tests.face_support import start_server
from tests.slow_support import wait_until

FACE_JS = Path(__file__).resolve().parent.parent / "face" / "static" / "js"  # the page's modules


@pytest.fixture()
def server():
    s = start_server()
    yield s
    s.stop()


def _ws(s: FaceServer) -> str:
    return f"ws://127.0.0.1:{s.port}/ws/face"


def _url(s: FaceServer, path: str = "/") -> str:
    return f"http://127.0.0.1:{s.port}{path}"


def test_serves_page_assets_presets_and_health(server: FaceServer) -> None:
    assert "/static/js/face.js" in httpx.get(_url(server)).text
    modules = sorted(p.name for p in FACE_JS.glob("*.js"))
    assert {"face.js", "eyes.js", "gaze.js", "mouth.js", "socket.js"} <= set(modules)
    for asset in (
        *(f"js/{m}" for m in modules),
        "face.css",
        "phone_audio.js",
        "vendor/mediapipe/face_detector.tflite",
    ):
        r = httpx.get(_url(server, f"/static/{asset}"))
        assert r.status_code == 200, asset
        if asset.endswith(".js"):  # browsers run module scripts only with a JavaScript type
            assert r.headers["content-type"].startswith("text/javascript"), asset
    presets = httpx.get(_url(server, "/presets.json")).json()
    assert "surprise" in presets["emotions"]
    assert httpx.get(_url(server, "/healthz")).json()["ok"] is True
    assert httpx.get(_url(server, "/face-config.json")).json()["ws_path"] == "/ws/face"


def test_every_client_gets_the_latest_state(server: FaceServer) -> None:
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(_ws(server))) for _ in range(3)]
        wait_until(lambda: server.stats()["clients"] == 3, what="three clients")
        server.publish({"emotion": "happy", "mouth": 0.4, "speaking": True, "t": 1.5})
        for c in clients:
            assert json.loads(c.recv(timeout=5)) == {
                "emotion": "happy",
                "mouth": 0.4,
                "speaking": True,
                "t": 1.5,
            }
        with connect(_ws(server)) as late:  # a new client gets the last state at once
            assert json.loads(late.recv(timeout=5))["emotion"] == "happy"


def test_a_client_that_never_reads_does_not_delay_the_others() -> None:
    server = FaceServer(FaceConfig(host="127.0.0.1", port=0, stall_timeout_s=1.0)).start_in_thread()
    # a raw socket that completes the handshake, then never reads again
    dead = socket.create_connection(("127.0.0.1", server.port))
    dead.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dead.sendall(
        b"GET /ws/face HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with connect(_ws(server)) as live:
        pad = "x" * 20000  # big messages fill the dead client's socket quickly
        for i in range(200):  # (publish latency is measured in benchmarks/face_fanout.py)
            server.publish(
                {"emotion": "neutral", "mouth": 0.0, "speaking": False, "i": i, "pad": pad}
            )
            assert json.loads(live.recv(timeout=5))["i"] == i  # every one, in order
        deadline = time.monotonic() + 5
        while server.stats()["stalled_closed"] < 1 and time.monotonic() < deadline:
            server.publish({"emotion": "neutral", "mouth": 0.0, "speaking": False, "pad": pad})
            live.recv(timeout=5)
            time.sleep(0.05)
        assert server.stats()["stalled_closed"] == 1  # the dead one was closed, the live one kept
        assert server.stats()["clients"] == 1
    dead.close()
    server.stop()


def test_publish_rejects_what_is_not_json_and_keeps_serving(server: FaceServer) -> None:
    with pytest.raises(TypeError, match="not JSON-serializable"):
        server.publish({"emotion": object()})
    with pytest.raises(TypeError, match="not JSON-serializable"):
        server.publish({"mouth": float("nan")})
    with connect(_ws(server)) as c:
        server.publish({"emotion": "sad", "mouth": 0.0, "speaking": False})
        assert json.loads(c.recv(timeout=5))["emotion"] == "sad"


def test_busy_port_is_a_clear_error(server: FaceServer) -> None:
    with pytest.raises(OSError, match="face.port"):
        FaceServer(FaceConfig(host="127.0.0.1", port=server.port)).start_in_thread()


def test_publish_before_start_and_after_stop_is_harmless() -> None:
    """Harmless: publishing never raises or blocks without a running server, the state published
    before start is what the first client gets, and one published after stop is what a restart
    serves; stop() really stops (the port refuses) and a second stop() is a no-op."""
    s = FaceServer(FaceConfig(host="127.0.0.1", port=0))
    s.publish({"emotion": "happy", "mouth": 0.0, "speaking": False})
    s.start_in_thread()
    port = s.port
    with connect(_ws(s)) as c:
        assert json.loads(c.recv(timeout=5))["emotion"] == "happy"
    s.stop()
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    t0 = time.monotonic()
    s.publish({"emotion": "sad", "mouth": 0.0, "speaking": False})
    assert time.monotonic() - t0 < 1.0  # nobody to send to: it returns at once, no error
    assert s.stats()["published"] == 2 and s.stats()["clients"] == 0
    s.stop()  # a second stop is harmless too
    s.start_in_thread()  # and the server comes back with the latest state, on the same port
    try:
        assert s.port == port
        with connect(_ws(s)) as c:
            assert json.loads(c.recv(timeout=5))["emotion"] == "sad"
    finally:
        s.stop()


def test_serve_runs_inside_an_existing_event_loop() -> None:
    """The creature's I/O loop hosts the face: start() and aclose() on a loop we own."""
    import asyncio
    import threading

    from websockets.asyncio.client import connect as aconnect

    async def main() -> dict:
        s = await FaceServer(FaceConfig(host="127.0.0.1", port=0)).start()
        async with aconnect(_ws(s)) as ws:
            while s.stats()["clients"] < 1:
                await asyncio.sleep(0.01)
            # publish from another thread, as the fast loop does
            threading.Thread(
                target=s.publish, args=({"emotion": "fear", "mouth": 0.0, "speaking": False},)
            ).start()
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            s.publish({"emotion": "joy", "mouth": 0.0, "speaking": False})  # on its own loop
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["emotion"] == "joy"
        await asyncio.wait_for(s.aclose(), 5)
        return msg

    assert asyncio.run(main())["emotion"] == "fear"
