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


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "body_reachy_mini.json"))
    return short_mode.parse(ap, out="out", seconds=3.0)


def start_body(slow: BrainHost, env: Path, stats_file: Path) -> subprocess.Popen:
    """``creature body reachy-mini --sim`` on a free daemon port, pointed at the slow loop's
    robot channel, writing its own figures to ``stats_file``."""
    cmd = [sys.executable, "-m", "orchestrator.cli", "body", "reachy-mini", "--sim"]
    cmd += ["--venv", str(env), "--daemon-port", str(free_port()), "--stats", str(stats_file)]
    cmd += ["--robot-url", slow.robot_url]
    penv = {**os.environ, "PYTHONPATH": str(ROOT), "CREATURE_ROBOT_TOKEN": slow.token}
    return subprocess.Popen(cmd, env=penv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def connected(slow: BrainHost, cli: subprocess.Popen) -> bool:
    """Wait (up to 120 s) for the body to subscribe to the expression stream; False if it
    did not, or the command ended."""
    deadline = time.monotonic() + 120
    while not (slow.expression and slow.expression.subscribers):
        if time.monotonic() > deadline or cli.poll() is not None:
            return False
        time.sleep(0.1)
    return True


def body_and_daemon(cli: subprocess.Popen) -> tuple[psutil.Process, psutil.Process]:
    kids = psutil.Process(cli.pid).children(recursive=True)
    daemon = next(p for p in kids if "reachy-mini-daemon" in " ".join(p.cmdline()))
    body = next(p for p in kids if "orchestrator.bodies" in " ".join(p.cmdline()))
    return body, daemon


def paced_talk(slow: BrainHost, hub: Bus, body, daemon, seconds: float) -> dict:
    """The fast loop's frames at 12.5 Hz for ``seconds`` (a third the creature talking, a
    third silent, a third the user talking): each process's CPU share and the stream's rate."""
    c_d, c_b, t0 = cpu_s(daemon), cpu_s(body), time.monotonic()
    sent0 = slow.expression.stats()["sent"]
    n = int(seconds / FRAME_S)
    for i in range(n):
        part = 3 * i // n
        mouth = (0.3 + 0.5 * ((i % 5) < 3)) if part == 0 else 0.0
        hub.publish(frame(i, mouth, user=part == 2))
        time.sleep(max(0.0, t0 + (i + 1) * FRAME_S - time.monotonic()))
    wall = time.monotonic() - t0
    return {
        "wall": wall,
        "daemon_pct": 100 * (cpu_s(daemon) - c_d) / wall,
        "body_pct": 100 * (cpu_s(body) - c_b) / wall,
        "paced_hz": (slow.expression.stats()["sent"] - sent0) / wall,
    }


def capped_rate(slow: BrainHost) -> float:
    """The cap: face states published at 100 Hz for 3 s; the messages sent per second."""
    sent1, t1 = slow.expression.stats()["sent"], time.monotonic()
    state = {"emotion": "happy", "valence": 0.8, "arousal": 0.5, "mouth": 0.0}
    while time.monotonic() - t1 < 3.0:
        slow.run_sync(slow.expression.publish, {**state, "t": time.monotonic()})
        time.sleep(0.01)
    return (slow.expression.stats()["sent"] - sent1) / (time.monotonic() - t1)


def figures(m: dict, body_stats: dict) -> dict:
    body_pct, daemon_pct = m["body_pct"], m["daemon_pct"]
    return {
        "seconds": round(m["wall"], 1),
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
        "expression_hz_at_12_5_hz_frames": round(m["paced_hz"], 2),
        "expression_hz_at_100_hz_states": round(m["capped_hz"], 2),
        "machine": {"cpus": os.cpu_count(), "load_before": m["load0"], "load_after": m["load1"]},
    }


def print_figures(result: dict) -> None:
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
    load0, load1 = result["machine"]["load_before"], result["machine"]["load_after"]
    print(f"load average {load0[0]:.2f} -> {load1[0]:.2f} on {os.cpu_count()} CPUs")


def measure(slow: BrainHost, hub: Bus, cli: subprocess.Popen, seconds: float) -> dict | None:
    """Once the body is connected and past its start: the paced run then the cap, with the
    load before and after; None if the body never connected."""
    if not connected(slow, cli):
        return None
    body, daemon = body_and_daemon(cli)
    time.sleep(2.0)  # past the start
    load0 = os.getloadavg()
    m = paced_talk(slow, hub, body, daemon, seconds)
    m["capped_hz"] = capped_rate(slow)
    return {**m, "load0": load0, "load1": os.getloadavg()}


def main() -> int:
    args = parse_args()
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
    stats_file = tmp / "stats.json"
    cli = start_body(slow, env, stats_file)
    try:
        m = measure(slow, hub, cli, args.seconds)
        if m is None:
            print("the body did not connect")
            return 1
    finally:
        cli.send_signal(signal.SIGTERM)
        cli.wait(30)
        slow.stop()
    body_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    result = figures(m, body_stats)
    print_figures(result)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
