"""The Reachy Mini body's cost and the expression stream's rate, on the simulated robot.

Runs the creature's slow loop (robot channel + expression stream) and the real command
``creature body reachy-mini --sim`` beside it, feeds the slow loop the fast loop's frames at
12.5 Hz (the creature talking, then silent, then the user talking) for ``--seconds``, then
publishes face states at 100 Hz for a few seconds to show the stream's 25 Hz cap. Measures:

* the body's CPU per 50 Hz control tick (thread CPU time: composing the pose + ``set_target``)
  and the body process's CPU share;
* the simulated daemon's CPU share over the same time (the baseline it sits beside: MuJoCo
  physics + the daemon's own control loop) and the ratio body / daemon;
* the expression messages the body received per second, at the fast loop's pace and at 100 Hz.

Needs the body's environment (``creature body reachy-mini --setup``). Writes
benchmarks/results/body_reachy_mini.json.

    python benchmarks/body_reachy_mini.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks import short_mode  # noqa: E402
from orchestrator.bus import Bus  # noqa: E402
from orchestrator.cli.reachy_env import default_venv, is_ready  # noqa: E402
from orchestrator.config import load_config  # noqa: E402
from orchestrator.runtime.brain_host import BrainHost  # noqa: E402
from orchestrator.state_dir import default_state_dir  # noqa: E402
from track2_voice.events import FrameEvent  # noqa: E402

FRAME_S = 0.08


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame(i: int, mouth: float, user: bool) -> FrameEvent:
    import numpy as np

    return FrameEvent(
        index=i,
        t=time.monotonic(),
        mouth=mouth,
        rms_db=-30.0,
        text=None,
        model_ms=0.0,
        overhead_ms=0.0,
        missed=False,
        user_speaking=user,
        pcm=np.zeros(1920, np.float32),
    )


def cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "body_reachy_mini.json"))
    args = short_mode.parse(ap, out="out", seconds=3.0)
    env = default_venv(default_state_dir())
    if not is_ready(env):
        print(f"no Reachy Mini environment at {env}: creature body reachy-mini --setup")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="body-bench-"))
    cfg = load_config(
        overrides={"slow_loop.robot.port": 0, "slow_loop.outbox.path": str(tmp / "o.sqlite3")}
    ).slow_loop
    hub = Bus()
    slow = BrainHost(cfg, hub, state=tmp).start()
    port, stats_file = free_port(), tmp / "stats.json"
    cmd = [sys.executable, "-m", "orchestrator.cli", "body", "reachy-mini", "--sim"]
    cmd += ["--venv", str(env), "--daemon-port", str(port), "--stats", str(stats_file)]
    cmd += ["--robot-url", slow.robot_url]
    penv = {**os.environ, "PYTHONPATH": str(ROOT), "CREATURE_ROBOT_TOKEN": slow.token}
    cli = subprocess.Popen(cmd, env=penv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (slow.expression and slow.expression.subscribers):
            if time.monotonic() > deadline or cli.poll() is not None:
                print("the body did not connect")
                return 1
            time.sleep(0.1)
        kids = psutil.Process(cli.pid).children(recursive=True)
        daemon = next(p for p in kids if "reachy-mini-daemon" in " ".join(p.cmdline()))
        body = next(p for p in kids if "orchestrator.bodies" in " ".join(p.cmdline()))
        time.sleep(2.0)  # past the start
        load0 = os.getloadavg()
        c_d, c_b, t0 = cpu_s(daemon), cpu_s(body), time.monotonic()
        sent0 = slow.expression.stats()["sent"]
        n = int(args.seconds / FRAME_S)
        for i in range(n):  # a third talking, a third silent, a third the user talking
            part = 3 * i // n
            mouth = (0.3 + 0.5 * ((i % 5) < 3)) if part == 0 else 0.0
            hub.publish(frame(i, mouth, user=part == 2))
            time.sleep(max(0.0, t0 + (i + 1) * FRAME_S - time.monotonic()))
        wall = time.monotonic() - t0
        daemon_pct = 100 * (cpu_s(daemon) - c_d) / wall
        body_pct = 100 * (cpu_s(body) - c_b) / wall
        paced_hz = (slow.expression.stats()["sent"] - sent0) / wall
        # the cap: face states at 100 Hz for 3 s
        sent1, t1 = slow.expression.stats()["sent"], time.monotonic()
        state = {"emotion": "happy", "valence": 0.8, "arousal": 0.5, "mouth": 0.0}
        while time.monotonic() - t1 < 3.0:
            slow.run_sync(slow.expression.publish, {**state, "t": time.monotonic()})
            time.sleep(0.01)
        capped_hz = (slow.expression.stats()["sent"] - sent1) / (time.monotonic() - t1)
        load1 = os.getloadavg()
    finally:
        cli.send_signal(signal.SIGTERM)
        cli.wait(30)
        slow.stop()
    body_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    result = {
        "seconds": round(wall, 1),
        "body": {
            "cpu_ms_per_tick": body_stats.get("cpu_ms_per_frame"),
            "cpu_ms_worst_tick": body_stats.get("cpu_ms_worst"),
            "ticks": body_stats.get("frames"),
            "late_ticks": body_stats.get("late_ticks"),
            "process_cpu_percent": round(body_pct, 2),
            "expressions_received": body_stats.get("expressions"),
        },
        "daemon_sim_cpu_percent": round(daemon_pct, 2),
        "body_over_daemon": round(body_pct / daemon_pct, 3) if daemon_pct else None,
        "expression_hz_at_12_5_hz_frames": round(paced_hz, 2),
        "expression_hz_at_100_hz_states": round(capped_hz, 2),
        "machine": {"cpus": os.cpu_count(), "load_before": load0, "load_after": load1},
    }
    b = result["body"]
    print(
        f"body: {b['cpu_ms_per_tick']} ms CPU per 50 Hz tick (worst {b['cpu_ms_worst_tick']} ms,"
        f" {b['late_ticks']} late of {b['ticks']}), process {b['process_cpu_percent']} % of a core"
    )
    print(
        f"simulated daemon (MuJoCo): {result['daemon_sim_cpu_percent']} % of a core; "
        f"body / daemon = {result['body_over_daemon']}"
    )
    print(
        f"expression stream: {result['expression_hz_at_12_5_hz_frames']} msg/s with 12.5 Hz "
        f"frames, {result['expression_hz_at_100_hz_states']} msg/s with 100 Hz states (cap 25)"
    )
    print(f"load average {load0[0]:.2f} -> {load1[0]:.2f} on {os.cpu_count()} CPUs")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
