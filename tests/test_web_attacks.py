"""Attacks on the creature's web servers as a stranger on the LAN would make them, each against
the real server on loopback (uvicorn on real sockets, a real TLS handshake, the model server on
a tiny random checkpoint), each with the legitimate client that must still get in: a phone with
its token, a health check, a robot channel's /health. Bounded in count and time."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from contextlib import ExitStack

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from face import FaceConfig, FaceServer
from face.phone.audio_ws import PhoneAudio
from face.phone.tls import ensure_self_signed
from orchestrator.data_files import load_presets
from tests.slow_support import wait_until
from tests.test_connection_rate import alias_works, from_address, need_aliases, status
from tests.test_server_limits import serve
from track2_voice.common.limits import ServerLimits
from track2_voice.common.web import JsonTooBig, JsonTooDeep, MalformedJson, loads_bounded

PHONE_TOKEN = "a-phone-token-123"  # the one tests.test_server_limits.serve gives the phone


def get(port: int, path: str = "/healthz", source: str = "127.0.0.1", timeout: float = 5) -> int:
    """One request on its own connection; its status, or 0 when the server gave none."""
    try:
        with from_address(port, source) as c:
            c.settimeout(timeout)
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := c.recv(65536):
                data += chunk
    except OSError:
        return 0
    return status(data) or 0


class Slowloris:
    """Opens connections from one address at ``rate_hz`` that send part of a request and then
    nothing, and holds them: the classic slow-headers attack, paced under the per-address rate."""

    def __init__(
        self,
        port: int,
        rate_hz: float,
        payload: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n",
        tls: ssl.SSLContext | None = None,  # finish the TLS handshake first
    ):
        self.port, self.rate_hz, self.payload, self.tls = port, rate_hz, payload, tls
        self.socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1 / self.rate_hz):
            try:
                c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                if self.tls is not None:
                    c = self.tls.wrap_socket(c, server_hostname="127.0.0.1")
                if self.payload:
                    c.sendall(self.payload)
                self.socks.append(c)
            except OSError:
                pass

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self.socks:
            c.close()


def during(attack_s: float, probe, every_s: float = 0.1) -> list:
    """``probe()`` every ``every_s`` for ``attack_s``: what it returned each time."""
    out, end = [], time.monotonic() + attack_s
    while time.monotonic() < end:
        out.append(probe())
        time.sleep(every_s)
    return out


# -- P4: seats for credentials --------------------------------------------------------------


def test_64_viewers_from_one_address_leave_the_phone_its_audio():
    s = serve(per_ip_rate=0)  # one address stands for many: the viewer caps alone
    try:
        with ExitStack() as stack:
            held, refused = 0, 0
            for _ in range(64):
                try:
                    stack.enter_context(connect(f"ws://127.0.0.1:{s.port}/ws/face"))
                    held += 1
                except InvalidStatus as e:
                    assert e.response.status_code == 503
                    refused += 1
            assert held == s.cfg.max_viewers_per_address and refused == 64 - held
            for _ in range(10):  # the phone with its token gets in every time
                with connect(f"ws://127.0.0.1:{s.port}/ws/audio?token={PHONE_TOKEN}") as ws:
                    wait_until(lambda: s.phone.connected, what="the phone's audio")
                    ws.close()
                wait_until(lambda: not s.phone.connected, what="the phone left")
            assert s.stats()["clients"] == held
    finally:
        s.stop()


def test_viewers_from_many_addresses_are_capped_in_all():
    need_aliases()
    sources = [f"127.0.0.{i}" for i in range(10, 16)]
    for a in sources:
        assert alias_works(a)
    s = serve(per_ip_rate=0)
    try:
        with ExitStack() as stack:
            held = 0
            for source in sources:
                for _ in range(s.cfg.max_viewers_per_address):
                    try:
                        sock = from_address(s.port, source)
                        stack.enter_context(connect(f"ws://127.0.0.1:{s.port}/ws/face", sock=sock))
                        held += 1
                    except InvalidStatus as e:
                        assert e.response.status_code == 503
            assert held == s.cfg.max_viewers
            with connect(f"ws://127.0.0.1:{s.port}/ws/audio?token={PHONE_TOKEN}"):
                wait_until(lambda: s.phone.connected, what="the phone's audio")
    finally:
        s.stop()


def test_slowloris_at_10_per_second_does_not_starve_healthz():
    # a 16-connection server and 10 slow connections a second from one address: today's cap
    # is full after 1.6 s; the health checks come from the attacker's own address
    s = serve(max_connections=16, header_timeout_s=10.0)
    try:
        with Slowloris(s.port, 10.0) as attack:
            codes = during(4.0, lambda: get(s.port))
            assert len(attack.socks) >= 30
        ok = sum(c == 200 for c in codes)
        assert ok == len(codes), f"{ok}/{len(codes)} health checks answered: {codes}"
    finally:
        s.stop()


def test_slowloris_does_not_starve_the_robot_channels_health(tmp_path):
    from orchestrator.bus import Bus
    from orchestrator.runtime.brain_host import BrainHost
    from tests.slow_support import slow_cfg

    slow = BrainHost(slow_cfg(tmp_path), Bus()).start()
    try:
        port = slow.port
        with Slowloris(port, 10.0) as attack:
            wait_until(lambda: len(attack.socks) >= 16, 10, "16 slow connections")
            codes = during(2.0, lambda: get(port, "/health"))
        assert codes and all(c == 200 for c in codes), codes
    finally:
        slow.stop()


# -- P5: TLS handshakes that never finish -----------------------------------------------------


def tls_server(tmp_path, **limits) -> FaceServer:
    cert, key = ensure_self_signed(tmp_path, ["127.0.0.1", "localhost"])
    cfg = FaceConfig(
        host="127.0.0.1",
        port=0,
        gaze=False,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        limits=ServerLimits(**limits),
    )
    phone = PhoneAudio(on_audio=None, token=PHONE_TOKEN, enabled=True)
    server = FaceServer(cfg, load_presets(), extra_routes=phone.routes())
    server.phone = phone
    server.cert = cert
    return server.start_in_thread()


def test_tls_handshakes_that_never_finish_are_capped_and_time_out(tmp_path):
    s = tls_server(tmp_path, max_connections=16, header_timeout_s=1.0, per_ip_rate=0)
    ctx = ssl.create_default_context(cafile=str(s.cert))
    socks: list[socket.socket] = []

    def healthz() -> int:  # a connection of its own (an idle keep-alive one may be shed)
        with httpx.Client(verify=ctx, timeout=5) as client:
            return client.get(f"https://127.0.0.1:{s.port}/healthz").status_code

    try:
        for i in range(200):  # connect, then never send a ClientHello
            socks.append(socket.create_connection(("127.0.0.1", s.port)))
            if i % 40 == 39:
                assert healthz() == 200
        t0 = time.monotonic()
        for c in socks:  # each one closed by the server by its deadline
            c.settimeout(max(0.1, t0 + 3.0 - time.monotonic()))
            try:
                assert c.recv(1024) == b""
            except ConnectionResetError:
                pass
        assert healthz() == 200
        with connect(  # the phone's audio over TLS, as the page opens it
            f"wss://127.0.0.1:{s.port}/ws/audio?token={PHONE_TOKEN}", ssl=ctx
        ):
            wait_until(lambda: s.phone.connected, what="the phone's audio over TLS")
    finally:
        for c in socks:
            c.close()
        s.stop()


def test_slowloris_over_tls_does_not_starve_healthz(tmp_path):
    # shed connections must leave at once: a graceful TLS close waits for the peer's
    # close_notify, which a slow client never sends, and held the seat for 30 s
    s = tls_server(tmp_path, max_connections=16, header_timeout_s=10.0)
    ctx = ssl.create_default_context(cafile=str(s.cert))

    def healthz() -> int:
        try:
            with httpx.Client(verify=ctx, timeout=5) as client:
                return client.get(f"https://127.0.0.1:{s.port}/healthz").status_code
        except httpx.HTTPError:
            return 0

    try:
        with Slowloris(s.port, 10.0, tls=ctx) as attack:
            codes = during(4.0, healthz, every_s=0.2)
            assert len(attack.socks) >= 25
        assert codes and all(c == 200 for c in codes), codes
    finally:
        s.stop()


# -- P7: Origins and header size --------------------------------------------------------------


def rebinding(port: int, path: str, name: str = "evil.example", origin: str | None = None):
    """A WebSocket handshake as a page on ``name`` makes it once its DNS points here: its
    ``Host`` and its ``Origin`` both name it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return connect(f"ws://{name}:{port}{path}", sock=sock, origin=origin or f"http://{name}:{port}")


def test_dns_rebinding_cannot_watch_the_face_or_be_its_ears():
    s = serve()
    try:
        for path in ("/ws/face", f"/ws/audio?token={PHONE_TOKEN}"):
            with pytest.raises(InvalidStatus) as e:
                rebinding(s.port, path)
            assert e.value.response.status_code == 403
        # the face's own origins: the address reached, and this machine's names
        with rebinding(s.port, "/ws/face", "127.0.0.1"):
            pass
        with rebinding(s.port, "/ws/face", "localhost"):
            pass
        with pytest.raises(InvalidStatus):  # same host, another port: another origin
            rebinding(s.port, "/ws/face", "127.0.0.1", f"http://127.0.0.1:{s.port + 1}")
    finally:
        s.stop()


def test_a_configured_origin_is_allowed_whatever_the_host_header():
    cfg = FaceConfig(host="127.0.0.1", port=0, gaze=False, allowed_origins=["https://creature.lan"])
    s = FaceServer(cfg, load_presets()).start_in_thread()
    try:
        with rebinding(s.port, "/ws/face", "creature.lan", "https://creature.lan"):
            pass
    finally:
        s.stop()


@pytest.mark.parametrize("pieces", [1, 50])
def test_headers_over_the_cap_are_refused_however_they_arrive(pieces):
    s = serve(max_header_bytes=16384, per_ip_rate=0)
    try:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        step = -(-len(head) // pieces)
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            data = b""
            try:
                for i in range(0, len(head), step):
                    c.sendall(head[i : i + step])
                while chunk := c.recv(65536):
                    data += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass
        # 431, or nothing when the server's close reset the socket before we read its reply
        assert status(data) in (431, None), data[:80]
        assert s.refusals.counts["face-server: headers over 16384 bytes"] == 1
        # a request just under the cap, in one read, is served
        ok = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 15_000 + b"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(ok)
            assert status(c.recv(65536)) == 200
    finally:
        s.stop()


# -- the shared JSON parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, error",
    [
        ('{"n": ' + "9" * 5000 + "}", MalformedJson),  # int's digit limit: a ValueError
        ("[" * 30_000 + "]" * 30_000, JsonTooDeep),  # a RecursionError in the parser
        ("[" * 20 + "]" * 20, JsonTooDeep),
        ('"' + "a" * 70_000 + '"', JsonTooBig),
        (b'{"a": "\xff"}', MalformedJson),  # not UTF-8
        ("{'a': 1}", MalformedJson),
    ],
)
def test_json_the_parser_cannot_take_is_one_malformed_message_error(raw, error):
    with pytest.raises(error) as e:
        loads_bounded(raw, max_depth=16)
    assert isinstance(e.value, ValueError)  # what every handler already catches


def test_oversize_json_is_refused_before_it_is_parsed():
    t0 = time.perf_counter()
    with pytest.raises(JsonTooBig):
        loads_bounded("[" + "1," * 5_000_000 + "1]", max_depth=4, max_bytes=65536)
    assert time.perf_counter() - t0 < 0.5  # a parse of 10 MB would take longer
    assert loads_bounded('{"a": [1, 2, {"b": null}]}', max_depth=4) == {"a": [1, 2, {"b": None}]}


# -- the model server (creature model-server: its guarded front) ------------------------------


@pytest.fixture(scope="module")
def model_server(random_tiny):
    from orchestrator.cli.commands.model_server import guarded_http
    from tests.conftest import torch_on_one_thread
    from tests.model_server_support import TOKEN
    from track2_voice.model_server.options import ServerOptions
    from track2_voice.model_server.server import ModelServer

    opts = ServerOptions(checkpoint=str(random_tiny), port=0, token=TOKEN, slots=1)
    with torch_on_one_thread():
        srv = ModelServer(opts, uvicorn_options=guarded_http(opts)).start_in_thread()
        yield srv
        srv.stop()


@pytest.mark.torch
def test_30_slow_connections_do_not_starve_the_model_server(model_server):
    port = model_server.port
    with Slowloris(port, 10.0) as attack:  # 17 seats (1 slot + 16): full after 1.7 s
        wait_until(lambda: len(attack.socks) >= 30, 10, "30 slow connections")
        codes = during(1.0, lambda: get(port, "/healthz"))
    assert codes and all(c == 200 for c in codes), codes


@pytest.mark.torch
def test_dns_rebinding_cannot_open_a_model_server_session(model_server):
    from tests.model_server_support import TOKEN

    path = f"/api/chat?token={TOKEN}"
    with rebinding(model_server.port, path) as ws:  # refused as a protocol message
        msg = ws.recv(timeout=10)
        assert msg[0] == 5 and b"origin http://evil.example" in msg
    with rebinding(model_server.port, path, "127.0.0.1") as ws:  # its own page may
        assert ws.recv(timeout=30) == b"\x00"  # the handshake: a session


def test_a_page_opening_many_connections_at_once_loses_none():
    # more at once than one address may hold waiting: none has been slow yet, so none is shed
    s = serve(per_ip_rate=0)
    try:
        n = 3 * s.cfg.limits.max_waiting_per_address
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(n)]
        for c in socks:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for c in socks:
            with c:
                assert status(c.recv(65536)) == 200
        assert s._app_server.waiting.shed == 0
    finally:
        s.stop()


class _Conn:
    """What Waiting needs of a connection: a way to close it."""

    def __init__(self, name: str) -> None:
        self.name, self.closed = name, False

    def shed(self) -> None:
        self.closed = True


def test_waiting_sheds_the_oldest_slow_connection_and_spares_new_ones():
    from track2_voice.common.limits import Waiting

    now = [0.0]
    w = Waiting(per_address=2, grace_s=1.0, clock=lambda: now[0])
    a1, a2, b1 = _Conn("a1"), _Conn("a2"), _Conn("b1")
    w.add(a1, "A")
    w.add(b1, "B")
    w.add(a2, "A")
    assert not w.shed_oldest("A")  # none has waited 1 s: a page opening its connections
    now[0] = 1.5
    assert w.shed_oldest("A") and a1.closed and not a2.closed  # A's oldest, not B's
    assert w.count("A") == 1 and len(w) == 2
    assert w.shed_oldest() and b1.closed  # the oldest of all
    fresh = [_Conn(f"c{i}") for i in range(3)]
    for c in fresh:
        w.add(c, "C")
    assert w.shed_oldest() and a2.closed  # a2 has waited: it goes before any fresh one
    assert w.shed_oldest() and fresh[0].closed  # C holds 3 > 2 fresh: its oldest goes
    assert not w.shed_oldest()  # C is back to its share, all fresh: nothing to shed
