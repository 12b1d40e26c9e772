"""Soak: the whole creature in real time for a long while, with every peer attached.

One process runs the creature as ``creature serve`` would (replay backend, real-time clock,
the brain, the robot channel, the face server with the phone endpoint, plain HTTP). Around it:

* a face client on ``/ws/face`` (counts the states it gets);
* a phone client on ``/ws/audio`` sending 80 ms of mic every 80 ms (counts the frames back);
* the creature "says" a task sentence every ``--call-every`` seconds (published on the bus as
  the fast loop publishes its words), so the brain sends ``do_physical_task`` calls;
* the example robot (examples/robot_client.py, a separate process with its SQLite task log),
  killed with SIGKILL and restarted every ``--robot-restart`` seconds.

Figures: RSS growth after warm-up (target < 5 %; also per frame, and the RSS each minute), the
fast loop's deadline misses (target 0),
and exactly-once: every call the robot took on was started at most once across all robot
processes, and every call settled. Documented figure: ``--duration 3600``.

    python benchmarks/soak.py [--duration 180] [--call-every 8] [--robot-restart 30]

Prints the figures and writes benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from face.phone.audio_protocol import encode_mic  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.runtime.face_runtime import face_running  # noqa: E402
from orchestrator.runtime.voice_session import VoiceSession  # noqa: E402
from track2_voice.events import FrameEvent  # noqa: E402
from track2_voice.frames import FRAME_SAMPLES  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "soak.json"
SENTENCE = "Sure, I'll pick up the red cup."
RSS_EVERY_S = 5.0
KILL_AFTER_S = 0.6  # after the sentence: the robot has the call and is running it (1 s)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Robot:
    """The example robot as its own process, restarted with SIGKILL on demand."""

    def __init__(self, url: str, token: str, tmp: Path) -> None:
        self.url, self.token, self.tmp = url, token, tmp
        self.db = tmp / "robot-tasks.sqlite3"
        self.proc: subprocess.Popen | None = None
        self.logs: list[Path] = []
        self.kills = 0

    def start(self) -> None:
        log = self.tmp / f"robot-{len(self.logs)}.log"
        self.logs.append(log)
        cmd = [sys.executable, str(ROOT / "examples" / "robot_client.py"), "--url", self.url]
        cmd += ["--token", self.token, "--db", str(self.db), "--delay", "1.0", "--name", "arm"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stderr=log.open("w"), env=env)

    def kill_and_restart(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def started_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for log in self.logs:
            for m in re.finditer(r"call (call_[0-9a-f]+): ", log.read_text()):
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return counts


async def face_client(url: str, stop: threading.Event, counts: dict) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, ping_interval=None) as ws:
        while not stop.is_set():
            try:
                await asyncio.wait_for(ws.recv(), 1.0)
                counts["face_states"] += 1
            except asyncio.TimeoutError:
                pass


async def phone_client(url: str, stop: threading.Event, counts: dict) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, ping_interval=None) as ws:

        async def reader() -> None:
            try:
                while True:
                    msg = await ws.recv()
                    if isinstance(msg, bytes):
                        counts["phone_frames_back"] += 1
            except Exception as e:  # counted: the soak must report a dropped phone
                if not stop.is_set():
                    counts["phone_closed"] = f"{type(e).__name__}: {e}"

        task = asyncio.create_task(reader())
        seq, t0 = 0, time.monotonic()
        mic = np.zeros(FRAME_SAMPLES, np.float32)
        while not stop.is_set():
            await ws.send(encode_mic(seq, mic))
            seq += 1
            counts["phone_frames_sent"] += 1
            await asyncio.sleep(max(0.0, t0 + seq * 0.08 - time.monotonic()))
        task.cancel()


def say(session: VoiceSession, index: int) -> int:
    for word in SENTENCE.split():
        session.bus.publish(
            FrameEvent(
                index=index, t=time.monotonic(), mouth=0.5, rms_db=-30.0, text=" " + word, pcm=None
            )
        )
        index += 1
    return index


def driver(session, rt, robot: Robot, args, stop: threading.Event, out: dict) -> None:
    counts: dict = {"face_states": 0, "phone_frames_sent": 0, "phone_frames_back": 0}
    out["counts"] = counts
    host = f"127.0.0.1:{rt.server.port}"
    token = rt.url.split("token=")[1]
    loop = asyncio.new_event_loop()
    tasks = [
        loop.create_task(face_client(f"ws://{host}/ws/face", stop, counts)),
        loop.create_task(phone_client(f"ws://{host}/ws/audio?token={token}", stop, counts)),
    ]
    t0 = time.monotonic()
    next_call, next_kill, next_rss = t0 + 3.0, t0 + args.robot_restart, t0
    index, rss, kill_at = 10_000_000, [], None

    async def tick() -> None:
        nonlocal next_call, next_kill, next_rss, index, kill_at
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_rss:
                rss.append((round(now - t0, 1), round(rss_mb(), 1)))
                next_rss += RSS_EVERY_S
            if now >= next_call and now - t0 < args.duration - 15:
                index = say(session, index)
                next_call += args.call_every
                if now >= next_kill:  # kill the robot while it is at this task
                    kill_at = now + KILL_AFTER_S
                    next_kill += args.robot_restart
            if kill_at is not None and now >= kill_at:
                kill_at = None
                await asyncio.to_thread(robot.kill_and_restart)
            await asyncio.sleep(0.05)

    loop.run_until_complete(tick())
    for t in tasks:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    out["rss"] = rss  # (seconds since start, MB) every RSS_EVERY_S


def _parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=180.0, help="seconds (documented: 3600)")
    p.add_argument("--call-every", type=float, default=8.0, help="seconds between tasks")
    p.add_argument("--robot-restart", type=float, default=30.0, help="kill -9 the robot this often")
    p.add_argument("--warmup", type=float, default=None, help="seconds (default: 20%%, <= 60)")
    p.add_argument("--json", type=Path, default=RESULTS, help=f"where to write (default {RESULTS})")
    return short_mode.parse(p, out="json", duration=12.0, call_every=3.0, robot_restart=6.0)


def _soak_config(tmp: Path):
    """A real-time session with the face and phone on a free local port, no TLS, and a
    robot port of its own; the rate limit and repeat window let a task go out every few
    seconds."""
    return load_config(
        overrides={
            "state_dir": str(tmp / "state"),
            "voice.loop.realtime": True,
            "face.host": "127.0.0.1",
            "face.port": 0,
            "face.gaze": False,
            "phone.tls": False,
            "phone.qr": False,
            "slow_loop.robot.port": 0,
            "slow_loop.safety.rate_limit_calls": 100,
            "slow_loop.intents.repeat_window_s": 1.0,
        }
    )


def _soak(session, robot: Robot, args, out: dict):
    """The session runs its frames while the driver thread talks, watches and kills the
    robot; returns the loop's stats and whether every call settled."""
    stop = threading.Event()
    with face_running(session, session.source, https=False) as rt:
        session.start_backend()
        th = threading.Thread(
            target=driver, args=(session, rt, robot, args, stop, out), daemon=True
        )
        th.start()
        stats = session.run(max_frames=int(args.duration / 0.08))
        settled = session.slow.wait_settled(20.0)
        stop.set()
        th.join(10)
    return stats, settled


def _rss_figures(rss: list, warmup: float, frames: int) -> dict:
    """Memory after the warm-up: its growth in all and per frame (a leak climbs steadily)."""
    after = [mb for t, mb in rss if t >= warmup]
    growth = round(100 * (after[-1] - after[0]) / after[0], 2) if len(after) >= 2 else None
    frames_after = max(1, frames - int(warmup / 0.08))
    per_frame = (
        round((after[-1] - after[0]) * 1024 * 1024 / frames_after, 1) if len(after) >= 2 else None
    )
    return {
        "rss_mb_start": rss[0][1] if rss else None,
        "rss_mb_after_warmup": after[0] if after else None,
        "rss_mb_end": after[-1] if after else None,
        "rss_growth_pct_after_warmup": growth,
        "rss_growth_bytes_per_frame": per_frame,
        # a steady climb is a leak; steps that level off are the allocator
        "rss_mb_every_minute": [mb for t, mb in rss[:: int(60 / RSS_EVERY_S)]],
    }


def _call_figures(tmp: Path, robot: Robot, settled) -> dict:
    """What the outbox holds against what the robot started: no task runs twice."""
    rows = (
        sqlite3.connect(tmp / "state" / "outbox.sqlite3")
        .execute("SELECT id, status, reason FROM calls")
        .fetchall()
    )
    started = robot.started_counts()
    twice = {k: v for k, v in started.items() if v > 1}
    interrupted = [r[0] for r in rows if r[2] and "not repeated" in r[2]]
    return {
        "calls": len(rows),
        "calls_by_status": {s: sum(1 for r in rows if r[1] == s) for s in {r[1] for r in rows}},
        "calls_settled": settled,
        "calls_started_by_robot": len(started),
        "calls_started_twice": len(twice),
        "calls_interrupted_by_robot_kill": len(interrupted),
        "robot_kills": robot.kills,
    }


def main() -> None:
    args = _parse_args()
    warmup = args.warmup if args.warmup is not None else min(60.0, args.duration * 0.2)
    tmp = Path(tempfile.mkdtemp(prefix="creature-soak-"))
    session = VoiceSession(_soak_config(tmp), tmp / "record.jsonl").start()
    session.start_slow()
    slow = session.slow
    robot = Robot(slow.robot_url, slow.token, tmp)
    robot.start()
    out: dict = {}
    load_start = os.getloadavg()[0]
    try:
        stats, settled = _soak(session, robot, args, out)
    finally:
        robot.stop()
        session.close()
    result = {
        "duration_s": args.duration,
        "warmup_s": warmup,
        **stats.summary(),
        **_rss_figures(out.get("rss", []), warmup, stats.frames),
        **_call_figures(tmp, robot, settled),
        **out.get("counts", {}),
        "load_avg_1m_start": round(load_start, 2),
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
