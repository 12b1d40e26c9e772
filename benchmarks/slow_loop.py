"""Slow-loop benchmark.

(a) latency: the last text piece of a committed phrase is published to the hub (as the fast
    loop does) -> the do_physical_task call is received by a robot client over a real
    WebSocket on loopback. p50/p99/max over --phrases phrases (target p99 <= 10 ms).
(b) isolation: a real FastLoop (replay backend, the shipped scene repeated) runs --frames
    frames paced at --period-ms while the slow loop has a webhook that hangs 5 s, a robot
    that never reads, and 50 face-state consumers on the hub (one never reading). Counts the
    fast loop's deadline misses (target 0) and its per-frame overhead.

    python benchmarks/slow_loop.py [--phrases 300] [--frames 2000] [--period-ms 80]

Prints the figures and writes benchmarks/results/slow_loop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from orchestrator.brain.events import ToolCallSent  # noqa: E402
from orchestrator.brain.face_state import face_state  # noqa: E402
from orchestrator.brain.speaking import SPEAKING_MOUTH  # noqa: E402
from orchestrator.bus import Bus  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.runtime.brain_host import BrainHost  # noqa: E402
from orchestrator.runtime.robot_runner import InProcessRobot  # noqa: E402
from tests.deaf_robot import connect_deaf_robot  # noqa: E402
from track2_voice.audio.devices import AudioSource  # noqa: E402
from track2_voice.audio.scene import load_scene  # noqa: E402
from track2_voice.backends.replay import ReplayBackend  # noqa: E402
from track2_voice.events import FrameEvent  # noqa: E402
from track2_voice.frames import Frame, silence  # noqa: E402
from track2_voice.loop import FastLoop  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "slow_loop.json"
FACE_CONSUMERS = 50
WEBHOOK_HANG_S = 5.0
PHRASE_GAP_S = 0.01  # between phrases in (a), so each is measured on a quiet loop


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 3) if xs else 0.0


def slow_cfg(tmp: Path, **extra):
    tmp.mkdir(parents=True, exist_ok=True)
    over = {
        "slow_loop.robot.port": 0,
        "slow_loop.outbox.path": str(tmp / "outbox.sqlite3"),
        "slow_loop.safety.rate_limit_calls": 1_000_000,
    }
    over.update(extra)
    return load_config(overrides=over).slow_loop


def frame(i: int, text: str | None) -> FrameEvent:
    return FrameEvent(
        index=i, t=time.monotonic(), mouth=0.5, rms_db=-30.0, text=text, pcm=silence()
    )


def bench_latency(phrases: int, tmp: Path) -> dict:
    hub = Bus()
    slow = BrainHost(slow_cfg(tmp), hub).start()
    received: dict[str, float] = {}
    got = threading.Event()

    def on_call(msg: dict, t: float) -> None:
        received[msg["arguments"]["object"]] = t
        got.set()

    robot = InProcessRobot(slow.robot_url, slow.token, 0.0, on_call=on_call).start()
    lat: list[float] = []
    try:
        i = 0
        for n in range(phrases + 10):  # the first 10 warm up
            obj = f"cup number {n}"
            words = f"Sure, I'll pick up the {obj}.".split()
            for w in words[:-1]:
                hub.publish(frame(i, " " + w))
                i += 1
            got.clear()
            t0 = time.perf_counter()
            hub.publish(frame(i, " " + words[-1]))  # the piece that completes the phrase
            i += 1
            if not got.wait(2.0):
                raise RuntimeError(f"phrase {n}: no tool call within 2 s")
            if n >= 10:
                lat.append((received[obj] - t0) * 1000.0)
            time.sleep(PHRASE_GAP_S)
    finally:
        robot.stop()
        slow.stop()
    return {
        "phrases": len(lat),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": round(max(lat), 3),
        "target_p99_ms": 10.0,
    }


class PacedSilence(AudioSource):
    """Silence frames every ``period_s``, stamped when due (like a sound card's clock)."""

    def __init__(self, frames: int, period_s: float) -> None:
        self.frames, self.period_s, self.i, self.t0 = frames, period_s, 0, None

    def read(self) -> Frame | None:
        if self.i >= self.frames:
            return None
        if self.t0 is None:
            self.t0 = time.monotonic()
        due = self.t0 + (self.i + 1) * self.period_s
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        f = Frame(self.i, silence(), time.monotonic())
        self.i += 1
        return f


class HangingWebhook:
    def __init__(self, hang_s: float) -> None:
        self.posts = 0

        async def hook(request: Request) -> JSONResponse:
            self.posts += 1
            await asyncio.sleep(hang_s)
            return JSONResponse({"ok": True})

        app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        )
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/hook"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(2)


def long_scene(frames: int):
    """The shipped scene's lines repeated until they cover the run."""
    scene = load_scene("greeting")
    one = sum(len(line.frames) for line in scene.lines) + 60
    scene.lines = scene.lines * max(1, frames // one + 1)
    return scene


def neutral_face(ev) -> dict:
    """The face consumers' state: the face contract, with no brain behind it."""
    return face_state(ev, speaking=ev.mouth >= SPEAKING_MOUTH, connected=True).to_dict()


def _start_slow_side(tmp: Path, hub: Bus, brain_faces: list[dict]):
    """The slow loop with a webhook that hangs and a robot that never answers, the brain's
    own face states collected: all it could stall the fast loop with."""
    hook = HangingWebhook(WEBHOOK_HANG_S)
    cfg = slow_cfg(
        tmp,
        **{
            "slow_loop.webhook.url": hook.url,
            "slow_loop.webhook.timeout_s": WEBHOOK_HANG_S + 1,
            "slow_loop.webhook.retries": 0,
        },
    )
    slow = BrainHost(cfg, hub).start()
    deaf = connect_deaf_robot(slow.robot_url, slow.token)
    slow.face = brain_faces.append  # the brain composes its own face state every batch
    return hook, slow, deaf


def _start_face_consumers(
    hub: Bus, stop: threading.Event
) -> tuple[list[threading.Thread], list[int]]:
    """FACE_CONSUMERS subscribers each computing the face state per frame; the last one
    never reads (its queue fills and drops)."""
    face_states = [0] * FACE_CONSUMERS
    subs = [hub.subscribe(f"face{k}", 8, [FrameEvent]) for k in range(FACE_CONSUMERS)]

    def consume(k: int) -> None:
        sub = subs[k]
        sub.use_thread_wakeup()
        while not stop.is_set():
            ev = sub.wait(0.1)
            if ev is not None:
                json.dumps(neutral_face(ev))
                face_states[k] += 1

    threads = [
        threading.Thread(target=consume, args=(k,), daemon=True) for k in range(FACE_CONSUMERS - 1)
    ]  # face{49} never reads
    for t in threads:
        t.start()
    return threads, face_states


def _isolation_figures(stats, period_ms: float, events: list, drops: dict, hook) -> dict:
    return {
        "frames": stats.frames,
        "period_ms": period_ms,
        "deadline_misses": stats.missed,
        # the loop marks a miss before it publishes; this also counts a slow publish
        "late_incl_publish": sum(
            m + o > period_ms for m, o in zip(stats.model_ms, stats.overhead_ms)
        ),
        "target_misses": 0,
        "overhead_ms_p50": pct(stats.overhead_ms, 50),
        "overhead_ms_p99": pct(stats.overhead_ms, 99),
        "overhead_ms_max": round(max(stats.overhead_ms), 3),
        "tool_calls": sum(isinstance(e, ToolCallSent) for e in events),
        "webhook_posts_hanging": hook.posts if hook else 0,
    }


def bench_isolation(frames: int, period_ms: float, tmp: Path, with_slow: bool = True) -> dict:
    """The fast loop with 50 face consumers; with_slow adds the slow loop, its hanging
    webhook and its deaf robot (the baseline run leaves those three out)."""
    hub = Bus()
    hook = slow = deaf = None
    brain_faces: list[dict] = []
    if with_slow:
        hook, slow, deaf = _start_slow_side(tmp, hub, brain_faces)
    stop = threading.Event()
    threads, face_states = _start_face_consumers(hub, stop)
    loop = FastLoop(
        ReplayBackend(long_scene(frames)), PacedSilence(frames, period_ms / 1000.0), events=hub
    )
    loop.budget_ms = period_ms
    rec = hub.subscribe("bench", 1_000_000)
    try:
        stats = loop.run()
    finally:
        stop.set()
        for t in threads:
            t.join(1)
        loop.close()
        if slow is not None:
            slow.stop()
            deaf.close()
            hook.stop()
    events = rec.drain()
    drops = hub.drops()
    return {
        **_isolation_figures(stats, period_ms, events, drops, hook),
        "face_consumers": FACE_CONSUMERS,
        "face_states_computed": sum(face_states),
        "brain_face_states": len(brain_faces),
        "never_reading_consumer_dropped": drops.get(f"face{FACE_CONSUMERS - 1}", 0),
        "slow_loop_dropped": drops.get("slow_loop", 0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phrases", type=int, default=300)
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--period-ms", type=float, default=80.0)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--no-baseline", action="store_true", help="skip the run without slow loop")
    args = short_mode.parse(p, out="out", phrases=20, frames=100)
    with tempfile.TemporaryDirectory() as d:
        a = bench_latency(args.phrases, Path(d) / "a")
        print(
            f"(a) last piece -> robot: p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms, "
            f"max {a['max_ms']} ms over {a['phrases']} phrases"
        )
        b = bench_isolation(args.frames, args.period_ms, Path(d) / "b")
        print(
            f"(b) {b['frames']} frames @ {b['period_ms']} ms with a hanging webhook, a deaf "
            f"robot and {b['face_consumers']} face consumers: {b['deadline_misses']} deadline "
            f"misses ({b['late_incl_publish']} counting the publish), overhead p99 "
            f"{b['overhead_ms_p99']} ms, max {b['overhead_ms_max']} ms, {b['tool_calls']} calls"
        )
        base = None
        if not args.no_baseline:
            base = bench_isolation(args.frames, args.period_ms, Path(d) / "c", with_slow=False)
            print(
                f"    baseline without the slow loop (same 50 consumers): "
                f"{base['deadline_misses']} misses ({base['late_incl_publish']} counting the "
                f"publish), overhead p99 {base['overhead_ms_p99']} ms, "
                f"max {base['overhead_ms_max']} ms"
            )
            b["misses_caused_by_slow_loop"] = max(
                0, b["late_incl_publish"] - base["late_incl_publish"]
            )
    result = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "latency_last_piece_to_robot": a,
        "fast_loop_isolation": b,
        "fast_loop_baseline_without_slow_loop": base,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
