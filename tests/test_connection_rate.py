"""One address opening connections faster than the per-address rate, as an attack on the face
server (real uvicorn on the project's AppServer and bind_socket, real sockets), with clients on
different loopback addresses; and the per-address token bucket on its own, on a clock the test
moves."""

from __future__ import annotations

import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError
from websockets.sync.client import connect

from tests.conftest import require
from tests.test_server_limits import serve
from track2_voice.common.limits import ConnectionRate, ServerLimits, address_key

ATTACKER, BYSTANDER, PAGE = "127.0.0.1", "127.0.0.2", "127.0.0.3"
PHONE_TOKEN = "a-phone-token-123"  # the one tests.test_server_limits.serve gives the phone
# the face page's fastest reconnect (RECONNECT_MIN_MS in face/static/js/socket.js and
# face/static/phone_audio.js): a page never opens its sockets again sooner than this
PAGE_RECONNECT_S = 0.25


def alias_works(address: str) -> bool:
    """Linux routes all of 127.0.0.0/8 to the loopback device; other systems need an alias."""
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def need_aliases() -> None:
    for a in (BYSTANDER, PAGE):
        require(f"loopback address {a}", alias_works(a), "add it to lo (ip addr add)")


def from_address(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def request(port: int, source: str, path: str = "/healthz") -> bytes:
    """One connection, one request, everything the server sent until it closed. Empty when a
    refusal's reply was cut by the reset our request caused on the closed socket."""
    data = b""
    with from_address(port, source) as c:
        try:
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            while chunk := c.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    return data


def status(reply: bytes) -> int | None:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def ws_from(port: int, source: str, path: str):
    return connect(f"ws://127.0.0.1:{port}{path}", sock=from_address(port, source))


def test_a_burst_from_one_address_is_refused_while_another_address_gets_in(caplog):
    need_aliases()
    rate, burst, n = 10.0, 20, 150
    s = serve(per_ip_rate=rate, per_ip_burst=burst)
    try:
        with caplog.at_level(logging.WARNING, logger="track2_voice.common.limits"):
            t0 = time.monotonic()
            replies = [request(s.port, ATTACKER) for _ in range(n)]
            elapsed = time.monotonic() - t0
            # while the attacker is held back, another address loads the page and its face
            assert status(request(s.port, BYSTANDER, "/")) == 200
            with ws_from(s.port, BYSTANDER, "/ws/face") as ws:
                s.publish({"emotion": "happy", "t": 1.0})
                assert "happy" in ws.recv(timeout=5)
            health = json.loads(request(s.port, BYSTANDER).split(b"\r\n\r\n", 1)[1])
        codes = [status(r) for r in replies]
        admitted = codes.count(200)
        assert set(codes) <= {200, 429, None}, set(codes)
        assert codes[:burst] == [200] * burst  # the burst is honoured
        # then no more than the refill: one per 1/rate s of the attack (+1 for rounding)
        assert admitted <= burst + rate * elapsed + 1, (admitted, elapsed)
        too_fast = [r for r in replies if status(r) == 429]
        assert too_fast, "no refusal was readable"  # most are; some are cut by the reset
        assert b"retry-after: 1\r\n" in too_fast[0]
        assert b"too many connections from your address" in too_fast[0]
        # every refusal is counted, /healthz shows the count, and the log has a line per 10 s
        kind = "face-server: over 10 connections/s from one address"
        assert health["refused"] == {kind: n - admitted}
        lines = [r.getMessage() for r in caplog.records if r.name == "track2_voice.common.limits"]
        assert 1 <= len(lines) <= 1 + elapsed / 10, lines
        assert lines[0] == f"refused: {kind} [{ATTACKER}]"
    finally:
        s.stop()


def test_a_page_that_loads_and_reconnects_is_never_refused_with_the_defaults():
    need_aliases()
    s = serve()  # the defaults: 20 connections/s, 40 at once
    try:
        # the page loads: its HTML, scripts and styles in parallel (Chromium opens 6 at a
        # time; 12 here), then its two sockets
        paths = ["/"] * 12
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda p: status(request(s.port, PAGE, p)), paths))
        assert codes == [200] * 12
        # then the network drops again and again: each time the page opens both sockets anew,
        # as soon as its backoff allows (the pause is the page's, not a wait for the server)
        for _ in range(8):
            with (
                ws_from(s.port, PAGE, "/ws/face"),
                ws_from(s.port, PAGE, f"/ws/audio?token={PHONE_TOKEN}"),
            ):
                pass
            time.sleep(PAGE_RECONNECT_S)
        assert s.stats()["refused"] == {}
    finally:
        s.stop()


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_bucket_refills_at_the_rate_and_starts_full():
    clock = Clock()
    r = ConnectionRate(rate=4.0, burst=3, clock=clock)
    assert [r.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert r.allow("10.0.0.2")  # another address has its own bucket
    clock.t += 0.25  # one token back
    assert [r.allow("10.0.0.1") for _ in range(2)] == [True, False]
    clock.t += 10
    assert [r.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]


def test_the_table_forgets_idle_addresses_and_never_outgrows_its_cap():
    clock = Clock()
    r = ConnectionRate(rate=20.0, burst=40, max_addresses=1000, clock=clock)
    for i in range(100_000):  # an attacker with 100,000 addresses, all at once
        r.allow(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    assert len(r) == 1000
    clock.t += 40 / 20  # every bucket is full again: forgetting them loses nothing
    assert r.allow("192.168.1.5") and len(r) == 1


def test_one_ipv6_host_is_its_64_and_a_mapped_ipv4_is_the_ipv4():
    assert address_key("2001:db8:1:2::5") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::5") != address_key("2001:db8:1:3::5")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("/run/creature.sock") == "/run/creature.sock"


def test_rate_0_means_no_per_address_limit():
    r = ConnectionRate(rate=0.0, burst=1)
    assert all(r.allow("10.0.0.1") for _ in range(1000)) and len(r) == 0


@pytest.mark.parametrize(
    "bad", [{"per_ip_rate": float("nan")}, {"per_ip_rate": -1}, {"per_ip_burst": 0}]
)
def test_bad_rate_settings_are_refused(bad):
    with pytest.raises(ValidationError):
        ServerLimits(**bad)
