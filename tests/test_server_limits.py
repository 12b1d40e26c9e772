"""Attacks on the face server from the LAN, as tests: 1 MB messages, 300 half-open sockets,
a foreign Origin, a flood of refused phone connections. Real uvicorn on real sockets."""

from __future__ import annotations

import logging
import socket
import time
from contextlib import ExitStack

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from face import FaceConfig, FaceServer
from face.phone.audio_ws import PhoneAudio
from orchestrator.data_files import load_presets
from tests.slow_support import wait_until
from track2_voice.common.limits import ServerLimits


def serve(**limits) -> FaceServer:
    cfg = FaceConfig(host="127.0.0.1", port=0, gaze=False, limits=ServerLimits(**limits))
    phone = PhoneAudio(on_audio=None, token="a-phone-token-123", enabled=True)
    server = FaceServer(cfg, load_presets(), extra_routes=phone.routes())
    server.phone = phone
    return server.start_in_thread()


@pytest.fixture()
def server():
    s = serve(max_connections=64, header_timeout_s=1.0)
    yield s
    s.stop()


def url(s: FaceServer, path: str) -> str:
    return f"http://127.0.0.1:{s.port}{path}"


def ws_url(s: FaceServer, path: str = "/ws/face") -> str:
    return f"ws://127.0.0.1:{s.port}{path}"


def closed_code(ws) -> int:
    with pytest.raises(ConnectionClosed) as e:
        while True:
            ws.recv(timeout=5)
    return e.value.rcvd.code


def test_a_1mb_face_message_closes_that_client_only(server):
    with connect(ws_url(server)) as bystander:
        wait_until(lambda: server.stats()["clients"] == 1, what="bystander")
        with ExitStack() as stack:
            attackers = [
                stack.enter_context(connect(ws_url(server), max_size=None)) for _ in range(10)
            ]
            for ws in attackers:
                ws.send(b"\0" * 1_000_000)  # uvicorn's ws_max_size refuses it unread: 1009
            assert {closed_code(ws) for ws in attackers} == {1009}
        with connect(ws_url(server)) as small:  # over the face's own 4 KB, under the cap
            small.send("x" * 5000)
            assert closed_code(small) == 1009
        assert server.stats()["too_big_closed"] == 1
        server.publish({"emotion": "happy", "t": 1.0})
        assert "happy" in bystander.recv(timeout=5)  # the real page still gets its face
    assert httpx.get(url(server, "/healthz")).json()["ok"] is True


def test_300_half_open_sockets_cannot_take_the_server_down(caplog):
    # one loopback address stands for 300 attackers: the per-address rate (its own test, in
    # test_connection_rate.py) is off, so this is the connection cap and the shedding alone
    s = serve(max_connections=32, header_timeout_s=0.5, per_ip_rate=0)
    socks = []
    try:
        with caplog.at_level(logging.WARNING, logger="track2_voice.common.limits"):
            for i in range(300):
                c = socket.create_connection(("127.0.0.1", s.port))
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finish
                socks.append(c)
                if i % 50 == 49:  # answered while they are held: slow ones are shed first
                    assert _healthz_ok(s)
            waiting = s._app_server.waiting
            assert len(waiting) <= s.cfg.limits.max_connections
            wait_until(lambda: waiting.shed >= 300 - 32, 10, "the oldest were shed")
            wait_until(lambda: _timed_out(s) >= 1, 10, "the last ones timed out")
        for c in socks:  # every one was closed by the server: shed or timed out
            c.settimeout(5)
            assert _closed_by_server(c)
        lines = [r for r in caplog.records if r.name == "track2_voice.common.limits"]
        assert len(lines) <= 6, [r.getMessage() for r in lines]  # counted, not flooded
        with connect(ws_url(s)) as ws:  # the face stream works
            s.publish({"emotion": "calm", "t": 2.0})
            assert "calm" in ws.recv(timeout=5)
    finally:
        for c in socks:
            c.close()
        s.stop()


def _closed_by_server(c: socket.socket) -> bool:
    """The server closed it (a reset when our unread request was still in its buffer)."""
    try:
        return c.recv(1024) == b""
    except ConnectionResetError:
        return True


def _timed_out(s: FaceServer) -> int:
    return sum(n for k, n in s.refusals.counts.items() if "headers not complete" in k)


def _healthz_ok(s: FaceServer) -> bool:
    try:
        return httpx.get(url(s, "/healthz"), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_foreign_origin_cannot_watch_the_face_or_be_its_ears(server):
    for path in ("/ws/face", "/ws/audio?token=a-phone-token-123"):
        with pytest.raises(InvalidStatus) as e:
            connect(ws_url(server, path), origin="http://evil.example")
        assert e.value.response.status_code == 403
    own = f"http://127.0.0.1:{server.port}"
    with connect(ws_url(server), origin=own):  # the page's own origin
        pass
    with connect(ws_url(server)):  # not a browser: no Origin
        pass
    assert server.stats()["refused"]["/ws/face: foreign Origin"] == 1


def test_refused_phone_connections_are_counted_not_each_logged(server, caplog):
    with caplog.at_level(logging.WARNING, logger="track2_voice.common.limits"):
        for _ in range(40):
            with connect(ws_url(server, "/ws/audio?token=wrong")) as ws:
                assert closed_code(ws) == 4401
    assert server.phone.refused == 40
    lines = [r.getMessage() for r in caplog.records if "phone audio" in r.getMessage()]
    assert len(lines) == 1, lines


def test_slow_headers_time_out():
    s = serve(header_timeout_s=0.3)
    try:
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET / HTTP/1.1\r\n")
        c.settimeout(5)
        t0 = time.monotonic()
        assert c.recv(1024) == b""  # closed by the server
        assert time.monotonic() - t0 < 4
        c.close()
    finally:
        s.stop()
