"""Attacks on the face server (HTTPS, the phone's audio endpoint with its token), as a stranger
on the LAN would make them, each with a legitimate phone beside it: what the phone got, and what
the server's memory did.

The server runs in a process of its own (``--serve``: the face server as ``creature serve``
builds it, with the default limits, a self-signed certificate and a phone token), so its RSS is
its own. A legitimate client on another loopback address (127.0.0.2) opens the phone's audio
socket with the token and asks for ``/healthz``, each on a connection of its own, twice a second,
during each attack. Per attack: the attempts, the legitimate client's success rate (goal >= 99 %),
the server's RSS before, at peak and ``--settle`` seconds after (goal: back within 50 MB), and the
refusals the server counted. The first phase, ``baseline``, is the legitimate client alone: its
rate is what the others compare to.

    python benchmarks/attacks.py            # 30 s per attack, RSS 60 s after each
    python benchmarks/attacks.py --short    # seconds, for CI (figures not judged)

Writes benchmarks/results/attacks.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import short_mode  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "attacks.json"
TOKEN = "attack-bench-phone-token"
LEGIT = "127.0.0.2"  # the phone: another address than the attackers'
ATTACKER = "127.0.0.1"  # the one-address attacks
FLOOD_FROM = [f"127.0.1.{i}" for i in range(1, 255)]  # the many-address TLS flood
LEGIT_EVERY_S = 0.5
RSS_EVERY_S = 0.1
GOAL_RATE = 0.99
GOAL_RSS_MB = 50.0


# -- the server (its own process) -------------------------------------------------------------


def serve(state: Path) -> None:
    """The face server with the phone's audio, over HTTPS, on defaults; prints its port."""
    import asyncio

    from face import FaceConfig, FaceServer
    from face.phone.audio_ws import PhoneAudio
    from face.phone.tls import ensure_self_signed
    from orchestrator.data_files import load_presets

    cert, key = ensure_self_signed(state, ["127.0.0.1", "localhost"])
    cfg = FaceConfig(host="0.0.0.0", port=0, ssl_certfile=str(cert), ssl_keyfile=str(key))
    phone = PhoneAudio(on_audio=None, token=TOKEN, enabled=True)
    server = FaceServer(cfg, load_presets(), extra_routes=phone.routes())

    async def main() -> None:
        await server.start()
        print(json.dumps({"port": server.port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
        await server.aclose()

    asyncio.run(main())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- clients ----------------------------------------------------------------------------------


def connect_from(port: int, source: str, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout, source_address=(source, 0))


def https_get(port: int, ctx: ssl.SSLContext, path: str, source: str) -> int:
    """One HTTPS request on a connection of its own: the status, 0 when none came."""
    try:
        with ctx.wrap_socket(connect_from(port, source), server_hostname="127.0.0.1") as c:
            c.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    except (OSError, ValueError):
        return 0


def phone_ok(port: int, ctx: ssl.SSLContext, failures: list[str]) -> bool:
    """The phone's audio socket with the right token opens (101); why not, in ``failures``."""
    from websockets.sync.client import connect

    t0 = time.monotonic()
    try:
        sock = connect_from(port, LEGIT)
        with connect(
            f"wss://127.0.0.1:{port}/ws/audio?token={TOKEN}",
            sock=sock,
            ssl=ctx,
            server_hostname="127.0.0.1",
            open_timeout=5,
        ):
            return True
    except Exception as e:
        failures.append(f"after {time.monotonic() - t0:.2f} s: {e!r}"[:160])
        return False


class Legit(threading.Thread):
    """The phone and a health check, each on a connection of its own, every LEGIT_EVERY_S."""

    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.port, self.ctx = port, ctx
        self.stop = threading.Event()
        self.phone = [0, 0]  # ok, tries
        self.health = [0, 0]
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.wait(LEGIT_EVERY_S):
            self.phone[0] += phone_ok(self.port, self.ctx, self.failures)
            self.phone[1] += 1
            code = https_get(self.port, self.ctx, "/healthz", LEGIT)
            self.health[0] += code == 200
            self.health[1] += 1
            if code != 200:
                self.failures.append(f"/healthz: {code or 'no reply'}")


class Peak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(RSS_EVERY_S):
            self.peak = max(self.peak, rss_mb(self.pid))


# -- the attacks: each runs for about attack_s and returns its attempts -----------------------


def viewers(port: int, ctx: ssl.SSLContext, attack_s: float, n: int = 64) -> dict:
    """64 face viewers from one address, held open (P4)."""
    from websockets.sync.client import connect

    held, attempts, kept = ExitStack(), 0, 0
    for _ in range(n):
        attempts += 1
        try:
            held.enter_context(
                connect(
                    f"wss://127.0.0.1:{port}/ws/face",
                    sock=connect_from(port, ATTACKER),
                    ssl=ctx,
                    server_hostname="127.0.0.1",
                    open_timeout=5,
                )
            )
            kept += 1
        except Exception:
            pass
        time.sleep(1 / 15)  # under the per-address rate: the viewer caps are what holds
    time.sleep(max(0.0, attack_s - n / 15))
    held.close()
    return {"attempts": attempts, "held": kept}


def slowloris(port: int, ctx: ssl.SSLContext, attack_s: float, rate_hz: float = 10.0) -> dict:
    """Connections from one address at 10 a second: TLS done, then half a request, held (P4)."""
    socks, attempts, end = [], 0, time.monotonic() + attack_s
    while time.monotonic() < end:
        attempts += 1
        try:
            c = ctx.wrap_socket(connect_from(port, ATTACKER), server_hostname="127.0.0.1")
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(c)
        except OSError:
            pass
        time.sleep(1 / rate_hz)
    for c in socks:
        c.close()
    return {"attempts": attempts}


def tls_flood(
    port: int, attack_s: float, n: int, sources: list[str], rate_hz: float | None = None
) -> dict:
    """TCP connections that never send a ClientHello (P5), from ``sources`` in turn, as fast as
    they go or at ``rate_hz``, held until the attack ends (or the server closes them)."""
    socks, attempts, t0 = [], 0, time.monotonic()
    for i in range(n):
        if time.monotonic() - t0 > attack_s:
            break
        attempts += 1
        try:
            socks.append(connect_from(port, sources[i % len(sources)], timeout=2))
        except OSError:
            pass
        if len(socks) >= 4000:  # keep within this process's file limit; the server's are shut
            for c in socks[:2000]:
                c.close()
            del socks[:2000]
        if rate_hz:
            time.sleep(max(0.0, t0 + (i + 1) / rate_hz - time.monotonic()))
    time.sleep(max(0.0, t0 + attack_s - time.monotonic()))
    for c in socks:
        c.close()
    return {"attempts": attempts}


def big_headers(port: int, ctx: ssl.SSLContext, attack_s: float, rate_hz: float = 10.0) -> dict:
    """100 KB of headers in one write (P7): each must get 431, none 200."""
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    attempts, got_200, end = 0, 0, time.monotonic() + attack_s
    while time.monotonic() < end:
        attempts += 1
        try:
            with ctx.wrap_socket(connect_from(port, ATTACKER), server_hostname="127.0.0.1") as c:
                c.sendall(head)
                got_200 += c.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        time.sleep(1 / rate_hz)
    return {"attempts": attempts, "answered_200": got_200}


def dns_rebinding(port: int, ctx: ssl.SSLContext, attack_s: float, rate_hz: float = 5.0) -> dict:
    """``Host: evil.example`` and ``Origin: https://evil.example`` on both sockets (P7)."""
    from websockets.sync.client import connect

    attempts, opened, end = 0, 0, time.monotonic() + attack_s
    while time.monotonic() < end:
        for path in ("/ws/face", f"/ws/audio?token={TOKEN}"):
            attempts += 1
            try:
                with connect(
                    f"wss://evil.example:{port}{path}",
                    sock=connect_from(port, ATTACKER),
                    ssl=ctx,
                    server_hostname="127.0.0.1",
                    origin=f"https://evil.example:{port}",
                    open_timeout=5,
                ):
                    opened += 1
            except Exception:
                pass
        time.sleep(1 / rate_hz)
    return {"attempts": attempts, "opened": opened}


# -- the run ----------------------------------------------------------------------------------


def healthz(port: int, ctx: ssl.SSLContext) -> dict:
    for _ in range(50):
        try:
            with ctx.wrap_socket(connect_from(port, "127.0.0.3"), server_hostname="127.0.0.1") as c:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := c.recv(65536):
                    data += chunk
            return json.loads(data.split(b"\r\n\r\n", 1)[1])
        except (OSError, ValueError, IndexError):
            time.sleep(0.2)
    return {}


def phase(
    name: str,
    attack: Callable[[], dict],
    pid: int,
    port: int,
    ctx: ssl.SSLContext,
    settle_s: float,
) -> dict:
    before = rss_mb(pid)
    refused_before = healthz(port, ctx).get("refused", {})
    peak, legit = Peak(pid), Legit(port, ctx)
    peak.start()
    legit.start()
    t0 = time.monotonic()
    result = attack()
    took = time.monotonic() - t0
    legit.stop.set()
    legit.join(10)
    peak.stop.set()
    peak.join(2)
    time.sleep(settle_s)
    after = rss_mb(pid)
    refused = healthz(port, ctx).get("refused", {})
    tries = legit.phone[1] + legit.health[1]
    rate = (legit.phone[0] + legit.health[0]) / tries if tries else 0.0
    row = {
        **result,
        "seconds": round(took, 1),
        "legit_phone_ok": f"{legit.phone[0]}/{legit.phone[1]}",
        "legit_healthz_ok": f"{legit.health[0]}/{legit.health[1]}",
        "legit_success_rate": round(rate, 4),
        "rss_mb": {
            "before": round(before, 1),
            "peak": round(max(peak.peak, before), 1),
            "after": round(after, 1),
            "after_s": settle_s,
        },
        "server_refusals": {
            k: n - refused_before.get(k, 0)
            for k, n in refused.items()
            if n != refused_before.get(k, 0)
        },
        "legit_failures": legit.failures[:10],
        "goals_met": rate >= GOAL_RATE and after - before <= GOAL_RSS_MB,
    }
    print(
        f"{name:>14}: {result.get('attempts', 0):>5} attempts in {took:5.1f} s; phone "
        f"{row['legit_phone_ok']}, healthz {row['legit_healthz_ok']} ({rate:.1%}); RSS "
        f"{before:.0f} -> peak {row['rss_mb']['peak']:.0f} -> {after:.0f} MB {settle_s:g} s "
        "after",
        flush=True,
    )
    return row


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attack-s", type=float, help="seconds per attack (30; short: 3)")
    ap.add_argument("--settle", type=float, help="seconds before RSS 'after' (60; short: 2)")
    ap.add_argument(
        "--flood", type=int, help="never-finished TLS handshakes per flood (8076; short: 400)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    return short_mode.parse(ap, out="out")


def _loopback_usable() -> bool:
    """The legitimate client's and the flood's source addresses can be bound here."""
    for a in (LEGIT, FLOOD_FROM[0]):
        try:
            socket.socket().bind((a, 0))
        except OSError:
            print(f"attacks: loopback address {a} is not usable (add it to lo)", file=sys.stderr)
            return False
    return True


def _attacks(
    port: int, ctx: ssl.SSLContext, attack_s: float, flood_n: int
) -> dict[str, Callable[[], dict]]:
    """Each attack by name, the idle baseline first."""
    return {
        "baseline": lambda: (time.sleep(attack_s), {"attempts": 0})[1],
        "viewers_64": lambda: viewers(port, ctx, attack_s),
        "slowloris_10hz": lambda: slowloris(port, ctx, attack_s),
        "tls_half_open_one_address": lambda: tls_flood(port, attack_s, flood_n, [ATTACKER]),
        "tls_half_open_254_addresses": lambda: tls_flood(
            port, attack_s, flood_n, FLOOD_FROM, rate_hz=flood_n / attack_s
        ),
        "headers_100kb": lambda: big_headers(port, ctx, attack_s),
        "dns_rebinding": lambda: dns_rebinding(port, ctx, attack_s),
    }


def _attack_server(attack_s: float, settle_s: float, flood_n: int) -> dict:
    """The server in a process of its own (its RSS measured alone), each attack on it."""
    with tempfile.TemporaryDirectory() as state:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", state],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port = json.loads(proc.stdout.readline())["port"]
            ctx = ssl.create_default_context(cafile=str(Path(state) / "phone-cert.pem"))
            runs = _attacks(port, ctx, attack_s, flood_n)
            return {
                name: phase(name, run, proc.pid, port, ctx, settle_s) for name, run in runs.items()
            }
        finally:
            proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    args = _parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if not _loopback_usable():
        return 2
    attack_s = args.attack_s or (3.0 if args.short else 30.0)
    settle_s = args.settle if args.settle is not None else (2.0 if args.short else 60.0)
    flood_n = args.flood or (400 if args.short else 8076)
    load_before = os.getloadavg()[0]
    phases = _attack_server(attack_s, settle_s, flood_n)
    out = {
        "command": " ".join(["python", "benchmarks/attacks.py", *sys.argv[1:]]),
        "short": args.short,
        "attack_s": attack_s,
        "settle_s": settle_s,
        "goals": {"legit_success_rate": GOAL_RATE, "rss_back_within_mb": GOAL_RSS_MB},
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
        "phases": phases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"(load average {out['load_average']['before']} before, {out['load_average']['after']}"
        f" after, on {os.cpu_count()} CPUs) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
