"""The telephone bridge under attack: does a correctly signed carrier call still get through,
and does the bridge's memory come back?

    python benchmarks/telephony_attacks.py [--short] [--code DIR] [--json PATH]

The bridge runs in a child process (its RSS is what is measured), served as ``creature serve
--audio telephony`` serves it, on loopback with a Twilio auth token set. Beside each attack a
legitimate carrier places calls back to back, as Twilio does: a signed webhook POST, then the
stream the TwiML names (signed upgrade, ``start`` with the TwiML's ``token`` parameter), a
second of audio, ``stop``; a call counts as a success when it ends with close 1000. The same
carrier's success rate with no attack is the same-run baseline. Attacks (no credential):

* ``big_body``: POSTs to the webhook declaring and sending 400 MB (``--short``: 40 MB) each.
* ``stranger_streams``: 8 streams with no credential, reopened every 4.8 s, sending nothing.
* ``malformed_json``: streams that send a 5,000-digit integer or a 30,000-deep array before
  ``start``; and each legitimate call sends one of them mid-call (the call must go on).

For each: attempts, the carrier's calls and success rate (goal >= 99 %), the bridge's RSS
before, at peak (sampled every 20 ms) and ``--after`` seconds later (goal: back within 50 MB),
the machine's load. ``--code DIR`` serves the bridge from another checkout (e.g. the code
before the fix, for a before/after table).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402

AUTH = "twilio-account-auth-token-for-benchmarks"
TOKEN = "creature-benchmark-token"
PUBLIC = "https://creature.example.org"
TWIML_PATH = "/telephony/twiml"
STREAM_PATH = "/telephony/stream"
HUGE_INT = '{"event": "media", "media": {"chunk": ' + "7" * 5000 + "}}"
DEEP = "[" * 30000 + "]" * 30000
GOAL_SUCCESS = 0.99
ATTACKER = "127.0.0.2"  # the attacker's own loopback address: per-address limits tell it apart
CARRIER_PAUSE_S = 0.2
ATTACK_PAUSE_S = 0.1  # 10 attempts a second at most: under the per-address rate (20/s)
GOAL_RSS_BACK_MB = 50.0


# -- the bridge, in the child process ---------------------------------------------------------


def serve() -> None:
    """Serve a bridge on a free loopback port; print the port; run until stdin closes."""
    sys.path.insert(0, os.getcwd())
    from face.phone.telephony import TelephonyBridge
    from face.phone.telephony_config import TelephonyConfig
    from track2_voice.common.web import bind_socket

    os.environ["TWILIO_AUTH_TOKEN"] = AUTH
    cfg = TelephonyConfig(port=0, public_url=PUBLIC)
    bridge = TelephonyBridge(cfg, TOKEN, lambda pcm: None)
    sock = bind_socket("127.0.0.1", 0, "telephony.port")
    try:
        from face.phone.telephony import bridge_server

        server = bridge_server(bridge, sock)
    except ImportError:  # the code before the fix: the wiring telephony_link.py had then
        from starlette.applications import Starlette

        from track2_voice.common.limits import RefusalLog
        from track2_voice.common.web import AppServer, OriginGate

        refusals = RefusalLog()
        app = OriginGate(Starlette(routes=bridge.routes()), [], False, refusals.refused)
        server = AppServer(
            app, sock, "telephony", refusals=refusals, ws_max_size=cfg.max_message_bytes
        )

    async def run() -> None:
        await server.start()
        print(server.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(run())


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


# -- the legitimate carrier -------------------------------------------------------------------


def signature(url: str, params: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(AUTH).compute_signature(url, params)


async def carrier_call(port: int, n: int, bad_mid_call: str | None = None) -> bool:
    """One call as Twilio places it; True when it ended with close 1000 after ``stop`` (with
    ``bad_mid_call``: and both it and the probe after it were answered, so the call went on)."""
    import httpx
    import websockets

    call_sid = f"CA{n:032d}"
    form = {"CallSid": call_sid, "From": "+15550001111", "To": "+15550002222"}
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.post(
                f"http://127.0.0.1:{port}{TWIML_PATH}",
                data=form,
                headers={"X-Twilio-Signature": signature(PUBLIC + TWIML_PATH, form)},
            )
    except httpx.HTTPError:
        return False
    m = re.search(r'<Parameter name="token" value="([^"]+)"', r.text)
    if r.status_code != 200 or m is None:
        return False
    wss = PUBLIC.replace("https", "wss") + STREAM_PATH
    sid = f"MZ{n:032d}"
    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}{STREAM_PATH}",
            additional_headers={"X-Twilio-Signature": signature(wss, {})},
            open_timeout=5,
            close_timeout=5,
        ) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
            start = {
                "streamSid": sid,
                "callSid": call_sid,
                "accountSid": "AC" + "2" * 32,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"token": m.group(1)},
            }
            await ws.send(json.dumps({"event": "start", "start": start, "streamSid": sid}))
            payload = base64.b64encode(b"\xff" * 160).decode()
            for k in range(50):  # a second of (silent) audio, sent at once
                if bad_mid_call is not None and k == 25:
                    await ws.send(bad_mid_call)
                    await ws.send("{not json")  # a probe: answered only if the call goes on
                media = {"track": "inbound", "chunk": str(k + 1), "payload": payload}
                await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": media}))
            await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {}}))
            errors = 0
            async for text in ws:  # error replies, if any, until the bridge hangs up
                errors += json.loads(text).get("event") == "error"
            return ws.close_code == 1000 and errors == (0 if bad_mid_call is None else 2)
    except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
        return False


async def carrier(port: int, seconds: float, bad_mid_call: str | None = None) -> list[bool]:
    results: list[bool] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            ok = await asyncio.wait_for(carrier_call(port, len(results), bad_mid_call), 10.0)
        except asyncio.TimeoutError:
            ok = False
        results.append(ok)
        await asyncio.sleep(CARRIER_PAUSE_S)
    return results


# -- the attacks ------------------------------------------------------------------------------


def big_post(port: int, size: int) -> None:
    """Declare and send ``size`` bytes of form until the bridge answers or hangs up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(ATTACKER, 0))
    head = (
        f"POST {TWIML_PATH} HTTP/1.1\r\nhost: x\r\n"
        "content-type: application/x-www-form-urlencoded\r\n"
        f"content-length: {size}\r\n\r\n"
    )
    piece = b"a" * (1 << 20)
    try:
        sock.sendall(head.encode())
        sent = 0
        while sent < size:
            sock.sendall(piece[: min(len(piece), size - sent)])
            sent += len(piece)
        sock.recv(1024)
    except OSError:
        pass  # refused early: the bridge hung up
    finally:
        sock.close()


async def attack_big_body(port: int, seconds: float, size: int) -> int:
    attempts = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        await asyncio.to_thread(big_post, port, size)
        attempts += 1
        await asyncio.sleep(max(0.0, ATTACK_PAUSE_S - (time.monotonic() - t0)))
    return attempts


async def attack_stranger_streams(port: int, seconds: float) -> int:
    import websockets

    attempts = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        held = []
        for _ in range(8):
            attempts += 1
            try:
                held.append(
                    await websockets.connect(
                        f"ws://127.0.0.1:{port}{STREAM_PATH}", local_addr=(ATTACKER, 0)
                    )
                )
            except (OSError, websockets.WebSocketException):
                pass
        await asyncio.sleep(min(4.8, max(0.0, end - time.monotonic())))
        for ws in held:
            await ws.close()
    return attempts


async def attack_malformed(port: int, seconds: float) -> int:
    import websockets

    attempts = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        attempts += 1
        try:
            async with websockets.connect(
                f"ws://127.0.0.1:{port}{STREAM_PATH}", close_timeout=2, local_addr=(ATTACKER, 0)
            ) as ws:
                await ws.send(HUGE_INT if attempts % 2 else DEEP)
                async for _ in ws:
                    pass
        except (OSError, websockets.WebSocketException):
            pass
        await asyncio.sleep(ATTACK_PAUSE_S)
    return attempts


# -- the run ----------------------------------------------------------------------------------


class Bridge:
    def __init__(self, code: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(code)}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            cwd=code,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.proc.stdout.readline())

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def sample_peak(bridge: Bridge, stop: asyncio.Event) -> float:
    peak = bridge.rss()
    while not stop.is_set():
        peak = max(peak, bridge.rss())
        await asyncio.sleep(0.02)
    return peak


def rate(results: list[bool]) -> float:
    return round(sum(results) / len(results), 4) if results else 0.0


async def measure(bridge: Bridge, name: str, attack, seconds: float, after_s: float, bad=None):
    before = bridge.rss()
    stop = asyncio.Event()
    peak_task = asyncio.create_task(sample_peak(bridge, stop))
    load0 = os.getloadavg()[0]
    attempts, calls = await asyncio.gather(attack, carrier(bridge.port, seconds, bad))
    stop.set()
    peak = await peak_task
    await asyncio.sleep(after_s)
    after = bridge.rss()
    row = {
        "attempts": attempts,
        "carrier_calls": len(calls),
        "carrier_success_rate": rate(calls),
        "rss_mb_before": round(before, 1),
        "rss_mb_peak": round(peak, 1),
        "rss_mb_after": round(after, 1),
        "rss_after_minus_before_mb": round(after - before, 1),
        "after_s": after_s,
        "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "meets_goals": rate(calls) >= GOAL_SUCCESS and after - before <= GOAL_RSS_BACK_MB,
    }
    print(f"{name}: {json.dumps(row)}", flush=True)
    return row


async def run(args) -> dict:
    seconds = 6.0 if args.short else args.seconds
    after_s = 3.0 if args.short else args.after
    size = (40 if args.short else 400) << 20
    bridge = Bridge(Path(args.code).resolve())
    try:
        await carrier(bridge.port, 1.0)  # warm up (imports, first call)
        base = await carrier(bridge.port, seconds)
        baseline = {
            "carrier_calls": len(base),
            "carrier_success_rate": rate(base),
            "rss_mb": round(bridge.rss(), 1),
        }
        print(f"baseline (no attack): {json.dumps(baseline)}", flush=True)
        p = bridge.port
        attacks = {
            "big_body": await measure(
                bridge, "big_body", attack_big_body(p, seconds, size), seconds, after_s
            ),
            "stranger_streams": await measure(
                bridge, "stranger_streams", attack_stranger_streams(p, seconds), seconds, after_s
            ),
            "malformed_json": await measure(
                bridge, "malformed_json", attack_malformed(p, seconds), seconds, after_s, DEEP
            ),
        }
    finally:
        bridge.close()
    return {
        "code": str(Path(args.code).resolve()),
        "short": args.short,
        "seconds_per_attack": seconds,
        "big_body_bytes": size,
        "baseline": baseline,
        "attacks": attacks,
        "goals": {
            "carrier_success_rate": GOAL_SUCCESS,
            "rss_back_within_mb": GOAL_RSS_BACK_MB,
        },
        "cpus": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="per attack")
    ap.add_argument("--after", type=float, default=60.0, help="RSS is read this long after")
    ap.add_argument("--code", default=str(ROOT), help="the checkout whose bridge is served")
    ap.add_argument(
        "--json",
        default=str(ROOT / "benchmarks" / "results" / "telephony_attacks.json"),
        help="where the figures go",
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = short_mode.parse(ap, out="json")
    if args.serve:
        serve()
        return 0
    out = asyncio.run(run(args))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
