"""What Ray Serve adds to the batched model server, and how it behaves when a replica dies.

1. Added latency. N real clients (WebSocket, Opus, 80 ms pace, as benchmarks/sessions.py
   ``--wire``) on one model server reached directly (``creature
   model-server``), and on one Serve replica of the same slots through Serve's proxy
   (``creature model-server --ray --replicas 1``), both running at once (each N gets servers
   of N slots: idle slots cost step time), rounds interleaved
   (direct, Serve, direct, Serve, ...) so that the machine's load falls on both alike. Per N:
   reply lag p50 (median of the sessions' medians) and p99 (the worst session's), and the
   difference Serve - direct. Then the same against Serve's HAProxy ingress (``--haproxy``,
   a Ray instance of its own), with its own direct baseline in the same run.
2. Placement and recovery: 2 replicas x 4 slots: 8 sessions, how many each replica got
   (metadata kind 4 names the replica); then 4 sessions (2 per replica) and one replica
   killed (SIGKILL): when its sessions saw the drop, when they were connected again (the
   remote backend's backoff) and when audio flowed again, and where.

On this CPU (a tiny random checkpoint written on the fly; Ray's environment from
``creature model-server --ray-setup``)::

    python benchmarks/cluster.py [--sessions 8,32] [--seconds 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from benchmarks.sessions import pct, server_process, sound, wire_run  # noqa: E402

START_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_python() -> Path:
    from orchestrator.cli.ray_env import default_venv, is_ready, venv_python
    from orchestrator.state_dir import default_state_dir

    env = default_venv(default_state_dir())
    if not is_ready(env):
        sys.exit(f"benchmarks/cluster.py: no Ray environment at {env}: run "
                 "`creature model-server --ray-setup` first")  # fmt: skip
    return venv_python(env)


@contextmanager
def ray_cluster(ckpt: str, replicas: int, slots: int, haproxy: bool = False):
    """``creature model-server --ray`` with a Ray instance of its own; yields the URL."""
    tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # Unix socket paths stay short
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": str(tmp),
        "NO_TORCH_COMPILE": "1",
    }
    if haproxy:  # its files and ports away from any other Serve on this machine
        env.update(
            RAY_SERVE_HAPROXY_CONFIG_FILE_LOC=str(tmp / "haproxy.cfg"),
            RAY_SERVE_HAPROXY_SOCKET_PATH=str(tmp / "admin.sock"),
            RAY_SERVE_HAPROXY_SERVER_STATE_BASE=str(tmp),
            RAY_SERVE_HAPROXY_SERVER_STATE_FILE=str(tmp / "server-state"),
            RAY_SERVE_HAPROXY_STATS_PORT=str(free_port()),
            RAY_SERVE_HAPROXY_METRICS_PORT=str(free_port()),
        )
    cmd = [
        str(ray_python()), "-m", "orchestrator.cli", "model-server", "--ray", "--open",
        "--checkpoint", ckpt, "--slots", str(slots), "--replicas", str(replicas),
        "--cpus-per-replica", "0.5", "--port", str(free_port()), "--health-check-period", "1",
        "--graceful-shutdown-timeout", "5", "--state-dir", str(tmp / "state"),
    ] + (["--haproxy"] if haproxy else [])  # fmt: skip
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("model server listening (Ray Serve): "):
            log.seek(0)
            raise RuntimeError(f"the cluster did not start: {line!r}\n{log.read()[-3000:]}")
        yield line.split(": ", 1)[1].strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def summary(per: list[dict]) -> dict:
    return {
        "served": sum(1 for p in per if p["received"] >= p["sent"] - 2),
        "lag_ms_p50": pct([p["lag_ms_p50"] for p in per], 50),
        "lag_ms_p99": max(p["lag_ms_p99"] for p in per),
    }


def latency_row(ckpt: str, n: int, seconds: float, rounds: int, haproxy: bool) -> dict:
    """N sessions on a direct server and on one Serve replica, both of N slots (idle slots
    cost step time, so each N gets servers of its own size)."""
    direct, direct_url, _ = server_process(ckpt, n, "cpu", "float32", 1)
    got: dict[str, list[dict]] = {"direct": [], "serve": []}
    try:
        with ray_cluster(ckpt, 1, n, haproxy) as serve_url:
            for _ in range(rounds):
                for name, url in (("direct", direct_url), ("serve", serve_url)):
                    got[name].append(summary(asyncio.run(wire_run(url, n, seconds))))
    finally:
        direct.terminate()
        direct.wait(10)
    row: dict = {"sessions": n, "slots": n, "load_1min": round(os.getloadavg()[0], 2)}
    for name, runs in got.items():
        row[f"{name}_served"] = min(r["served"] for r in runs)
        row[f"{name}_lag_ms_p50"] = pct([r["lag_ms_p50"] for r in runs], 50)
        row[f"{name}_lag_ms_p99"] = max(r["lag_ms_p99"] for r in runs)
    row["added_ms_p50"] = round(row["serve_lag_ms_p50"] - row["direct_lag_ms_p50"], 2)
    row["added_ms_p99"] = round(row["serve_lag_ms_p99"] - row["direct_lag_ms_p99"], 2)
    print_rows([row], flush=True)
    return row


def latency_rows(ckpt: str, counts: list[int], seconds: float, rounds: int, haproxy: bool):
    return [latency_row(ckpt, n, seconds, rounds, haproxy) for n in counts]


class Holder:
    """A session that reconnects as the remote backend does (its backoff settings)."""

    def __init__(self, url: str, seed: int) -> None:
        import sphn

        from track2_voice.config import RemoteConfig

        self.url, self.cfg = url, RemoteConfig()
        w = sphn.OpusStreamWriter(24000)
        self.pages = [p for p in (w.append_pcm(f) for f in sound(300 + seed, 200)) if len(p)]
        self.log: list[tuple[str, float, dict]] = []  # (what, monotonic time, metadata)
        self.stop = asyncio.Event()

    async def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        from track2_voice.backends.moshi_protocol import RemoteError, open_session

        failures = 0
        while not self.stop.is_set():
            try:
                ws, info = await open_session(self.url)
            except RemoteError as e:
                self.log.append(("refused", time.monotonic(), {"reason": str(e)[:80]}))
                await asyncio.sleep(
                    min(self.cfg.backoff_cap_s, self.cfg.backoff_base_s * 2**failures)
                )
                failures += 1
                continue
            failures = 0
            meta = info.get("metadata", {})
            self.log.append(("connected", time.monotonic(), meta))
            rx = asyncio.create_task(self._receive(ws, meta))
            try:
                for p in self.pages * 10:
                    if self.stop.is_set() or rx.done():
                        break
                    await ws.send(b"\x01" + p)
                    await asyncio.sleep(0.08)
            except ConnectionClosed:
                pass
            await asyncio.wait({rx}, timeout=2.0)
            if not self.stop.is_set():
                self.log.append(("lost", time.monotonic(), meta))
                await asyncio.sleep(self.cfg.backoff_base_s)
            rx.cancel()
            await ws.close()

    async def _receive(self, ws, meta: dict) -> None:
        from websockets.exceptions import ConnectionClosed

        first = True
        try:
            async for m in ws:
                if m[0] == 1 and first:
                    self.log.append(("audio", time.monotonic(), meta))
                    first = False
        except ConnectionClosed:
            pass


async def hold(url: str, n: int, until) -> list[Holder]:
    holders = [Holder(url, i) for i in range(n)]
    tasks = []
    for h in holders:  # one after another, so each is placed knowing the others
        tasks.append(asyncio.create_task(h.run()))
        while not any(w == "audio" for w, _, _ in h.log):
            await asyncio.sleep(0.02)
    await until(holders)
    for h in holders:
        h.stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return holders


def recovery(ckpt: str) -> dict:
    out: dict = {}
    with ray_cluster(ckpt, 2, 4) as url:

        async def placed(holders):
            await asyncio.sleep(1.0)

        holders = asyncio.run(hold(url, 8, placed))
        spread: dict[str, int] = {}
        for h in holders:
            meta = next(m for w, _, m in h.log if w == "connected")
            spread[meta["replica"]] = spread.get(meta["replica"], 0) + 1
        out["placement_8_sessions_2x4"] = sorted(spread.values())

        async def kill_one(holders):
            await asyncio.sleep(1.0)
            victim = next(m for w, _, m in holders[0].log if w == "connected")
            out["killed_at"] = time.monotonic()
            os.kill(victim["pid"], signal.SIGKILL)
            out["victim"] = victim["replica"]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                back = [h for h in holders if sum(w == "audio" for w, _, _ in h.log) >= 2]
                if len(back) >= 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)

        time.sleep(2.0)  # the 8 sessions above have left
        holders = asyncio.run(hold(url, 4, kill_one))
    k = out.pop("killed_at")
    hit = [h for h in holders if any(w == "lost" for w, _, _ in h.log)]
    rows = []
    for h in hit:
        lost = next(t for w, t, _ in h.log if w == "lost")
        again = [(t, m) for w, t, m in h.log if w == "connected" and t > lost]
        audio = [t for w, t, _ in h.log if w == "audio" and t > lost]
        rows.append(
            {
                "drop_seen_ms": round((lost - k) * 1e3, 1),
                "reconnected_ms": round((again[0][0] - k) * 1e3, 1) if again else None,
                "audio_again_ms": round((audio[0] - k) * 1e3, 1) if audio else None,
                "resumed_on_victim": bool(again) and again[0][1].get("replica") == out["victim"],
            }
        )
    out["killed_replica_sessions"] = rows
    out["other_sessions_dropped"] = len(hit) - 2 if len(hit) > 2 else 0
    return out


def print_rows(rows: list[dict], flush: bool = False) -> None:
    for r in rows:
        print("  " + "  ".join(f"{k}={v}" for k, v in r.items()), flush=flush)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default="8,32", help="session counts (comma-separated)")
    ap.add_argument("--seconds", type=float, default=6.0, help="per round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per N and server")
    ap.add_argument("--no-haproxy", action="store_true", help="skip Serve's HAProxy ingress")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cluster.json"))
    args = short_mode.parse(ap, out="out", sessions="2", seconds=2.0, rounds=1, no_haproxy=True)
    counts = [int(x) for x in args.sessions.split(",")]
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    result: dict = {
        "benchmark": "cluster",
        "checkpoint": "tiny (random)",
        "device": "cpu",
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "load_average_before": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory() as d:
        from orchestrator.cli import main as cli

        ckpt = str(Path(d) / "tiny")
        if cli(["checkpoint", "random", ckpt, "--size", "tiny", "--seed", "3"]) != 0:
            return 1
        print("reply lag, direct vs through Serve's default proxy (ms):", flush=True)
        result["proxy"] = latency_rows(ckpt, counts, args.seconds, args.rounds, False)
        if not args.no_haproxy:
            print("reply lag, direct vs through Serve's HAProxy ingress (ms):", flush=True)
            try:
                result["haproxy"] = latency_rows(ckpt, counts, args.seconds, args.rounds, True)
            except RuntimeError as e:
                result["haproxy"] = {"error": str(e)[-500:]}
                print(f"  HAProxy mode did not start: {str(e)[:300]}")
        print("placement and recovery (2 replicas x 4 slots):", flush=True)
        result["recovery"] = recovery(ckpt)
        print("  " + json.dumps(result["recovery"]))
    result["load_average_after"] = list(os.getloadavg())
    print(
        f"load average before {result['load_average_before']}, after {result['load_average_after']}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
