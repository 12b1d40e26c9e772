"""`creature body reachy-mini --sim` end to end: the real Reachy Mini daemon (the SDK's MuJoCo
simulation, one per module), the real body program in its own environment, the real creature's
robot channel and expression stream; joint positions are read back from the daemon's HTTP API.

The Reachy Mini environment is built by `.ci/install` (`creature body reachy-mini --setup`) in
the user's state directory; under CI its absence is a failure."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from tests.conftest import ROOT, USER_XDG_STATE_HOME, require
from tests.slow_support import frame, slow_cfg, statuses, wait_until

# what docs/bodies.md ("Emotions") says the antennas do: droop a (rad from straight up),
# right = -a, left = +a; a = 0.1745 + 2.0 * max(0, -valence) + 0.3 * max(0, -arousal)
HAPPY = {"emotion": "happy", "valence": 0.8, "arousal": 0.5}
SAD = {"emotion": "sad", "valence": -0.7, "arousal": -0.4}
SAD_DROOP = 0.1745 + 2.0 * 0.7 + 0.3 * 0.4  # 1.69 rad: the tips hang past level
STILL_DEG_S = 15.0  # a head turning slower than this (deg/s) has halted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reachy_env():
    from orchestrator.cli.reachy_env import default_venv, is_ready
    from orchestrator.state_dir import default_state_dir

    old = os.environ.get("XDG_STATE_HOME")
    if USER_XDG_STATE_HOME is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = USER_XDG_STATE_HOME
    env = default_venv(default_state_dir())
    if old is not None:
        os.environ["XDG_STATE_HOME"] = old
    require(
        f"the Reachy Mini environment at {env}", is_ready(env), "creature body reachy-mini --setup"
    )
    return env


@pytest.fixture(scope="module")
def rig(reachy_env, tmp_path_factory):
    """The creature's slow loop and `creature body reachy-mini --sim` beside it."""
    tmp = tmp_path_factory.mktemp("reachy")
    hub = Bus()
    # one gesture after another: the same action is not held back as a repeat
    cfg = slow_cfg(tmp, **{"intents.repeat_window_s": 0.01, "safety.rate_limit_calls": 50})
    slow = BrainHost(cfg, hub).start()
    port = free_port()
    stats = tmp / "body-stats.json"
    cmd = [sys.executable, "-m", "orchestrator.cli", "body", "reachy-mini", "--sim"]
    cmd += ["--venv", str(reachy_env), "--daemon-port", str(port), "--stats", str(stats)]
    cmd += ["--robot-url", slow.robot_url]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CREATURE_ROBOT_TOKEN": slow.token}
    log = open(tmp / "body.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: (
                slow.run_sync(lambda: len(slow.dispatcher.robots)) == 1
                and len(slow.expression.subscribers) == 1
            ),
            timeout=120,
            what="the body connected (calls and expression stream)",
        )
        yield slow, hub, port, stats
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        slow.stop()
        log.close()
        print((tmp / "body.log").read_text()[-3000:])


def head(port: int) -> dict:
    """The simulated robot's present head pose (degrees) and antennas (radians)."""
    s = httpx.get(
        f"http://127.0.0.1:{port}/api/state/full",
        params={"with_head_pose": True, "with_antenna_positions": True, "use_pose_matrix": False},
        timeout=2.0,
    ).json()
    p = s["head_pose"]
    return {
        "t": time.monotonic(),
        "pitch": math.degrees(p["pitch"]),
        "yaw": math.degrees(p["yaw"]),
        "roll": math.degrees(p["roll"]),
        "right": s["antennas_position"][0],
        "left": s["antennas_position"][1],
    }


def sample(port: int, seconds: float, hz: float = 40.0, during=None) -> list[dict]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(head(port))
        if during is not None:
            during()
        time.sleep(1.0 / hz)
    return out


def span(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows]
    return max(vals) - min(vals)


def swings(values: list[float], band: float) -> int:
    """How many times the values go from above mean+band to below mean-band or back."""
    mean = sum(values) / len(values)
    side, n = 0, 0
    for v in values:
        now = 1 if v > mean + band else -1 if v < mean - band else 0
        if now and now != side:
            n += side != 0
            side = now
    return n


def say(hub: Bus, text: str, start: int) -> int:
    """The creature's words, one a frame with a closed mouth (no speech sway from loudness)."""
    for word in text.split():
        hub.publish(frame(start, " " + word, mouth=0.0))
        start += 1
    return start


def silence(hub: Bus, start: int, n: int) -> int:
    for i in range(n):
        hub.publish(frame(start + i, mouth=0.0))
    return start + n


def look(slow: BrainHost, seconds: float, port: int, gaze=None, **state) -> list[dict]:
    """Publish one look on the expression stream at the fast loop's 12.5 Hz while sampling
    (and the phone's gaze, renewed as the page does)."""
    base = {"mouth": 0.0, "speaking": False, "listening": False, "t": 0.0, **state}
    n = [0]

    def tick() -> None:
        n[0] += 1
        if gaze is not None:
            slow.run_sync(slow.expression.set_gaze, gaze)
        s = dict(base)
        if callable(state.get("mouth")):
            s["mouth"] = state["mouth"](n[0])
        slow.run_sync(slow.expression.publish, s)

    return sample(port, seconds, hz=12.5, during=tick)


def settle(slow: BrainHost, port: int) -> None:
    look(slow, 1.5, port, emotion="neutral", valence=0.0, arousal=0.0)


def test_a_nod_call_makes_the_head_pitch_oscillate_and_ends_succeeded(rig):
    slow, hub, port, _ = rig
    settle(slow, port)
    i = say(hub, "Sure, I'll nod.", 1000)
    wait_until(lambda: "running" in statuses(slow).values(), timeout=5, what="the nod running")
    rows = sample(port, 2.2, during=lambda: silence(hub, i, 1))
    wait_until(lambda: "succeeded" in statuses(slow).values(), timeout=5, what="succeeded")
    pitch = [r["pitch"] for r in rows]
    assert max(pitch) - min(pitch) > 8.0, pitch  # +-12 commanded; the simulated head lags
    assert swings(pitch, band=2.5) >= 3, pitch  # down, up, down (and more): it oscillates
    assert span(rows, "yaw") < 6.0  # a nod, not a shake


def test_stop_halts_the_head_within_200_ms(rig):
    slow, hub, port, _ = rig
    settle(slow, port)
    i = say(hub, "Okay, I'll shake my head.", 2000)
    wait_until(
        lambda: list(statuses(slow).values()).count("running") == 1, timeout=5, what="running"
    )
    time.sleep(0.6)  # mid-shake
    assert span(sample(port, 0.3), "yaw") > 3.0  # moving
    words = "Okay, I'll stop.".split()
    i = say(hub, " ".join(words[:-1]), i)
    t_stop = time.monotonic()
    hub.publish(frame(i, " " + words[-1], mouth=0.0))  # "stop." ends the sentence: it fires
    rows = sample(port, 1.2, hz=50)
    after = [r for r in rows if r["t"] >= t_stop + 0.2]
    # halted: from 200 ms after the word on, no more than a crawl (the simulator's position
    # controller settles by a degree or two; a shake peaks at ~160 deg/s), and within 3 deg
    speeds = [
        max(abs(b[k] - a[k]) for k in ("yaw", "pitch")) / (b["t"] - a["t"])
        for a, b in zip(after, after[4:])
    ]
    trace = [(round(r["t"] - t_stop, 2), round(r["yaw"], 1)) for r in rows]
    assert max(speeds) < STILL_DEG_S, trace
    assert span(after, "yaw") < 3.0 and span(after, "pitch") < 3.0, trace
    wait_until(lambda: "cancelled" in statuses(slow).values(), timeout=3, what="cancelled")


def test_happy_and_sad_put_the_antennas_where_the_docs_say(rig):
    slow, _, port, _ = rig
    look(slow, 1.5, port, **HAPPY)
    happy = look(slow, 1.5, port, **HAPPY)
    droops = [(-r["right"] + r["left"]) / 2 for r in happy]
    assert all(d < 0.5 for d in droops), droops  # upright (rest 0.17 rad, +-0.14 wiggle)
    assert span(happy, "right") > 0.1 and span(happy, "left") > 0.1  # and wiggling
    look(slow, 2.0, port, **SAD)
    sad = look(slow, 1.0, port, **SAD)
    for r in sad:
        assert abs(-r["right"] - SAD_DROOP) < 0.12 and abs(r["left"] - SAD_DROOP) < 0.12, r
    assert sum(r["pitch"] for r in sad) / len(sad) > 3.0  # and the head hangs (down is +)


def test_the_head_moves_while_the_creature_speaks_and_rests_when_silent(rig):
    """Waits on the head, not on a clock: a loaded machine runs the simulated head slower, so
    each side gets windows until it shows (the sway, then the rest) or its time is up."""
    slow, _, port, _ = rig
    settle(slow, port)

    def sway(seconds: float, skip: int = 0, **state) -> float:
        rows = look(slow, seconds, port, emotion="neutral", **state)[skip:]
        return max(span(rows, k) for k in ("pitch", "yaw", "roll"))

    talking = {"speaking": True, "mouth": lambda n: 0.3 + 0.5 * (n % 3 == 0)}
    moved, deadline = 0.0, time.monotonic() + 10.0
    while moved <= 1.5 and time.monotonic() < deadline:
        moved = max(moved, sway(2.5, skip=5, **talking))
    assert moved > 1.5, moved  # the SDK's speech sway: a few degrees, slow
    look(slow, 1.0, port, emotion="neutral", speaking=False)  # the sway releases
    rest, deadline = sway(1.5, speaking=False), time.monotonic() + 10.0
    while rest >= 0.5 and time.monotonic() < deadline:
        rest = sway(1.5, speaking=False)
    assert rest < 0.5 and moved > 4 * rest, (moved, rest)


def look_until(slow: BrainHost, port: int, pred, timeout: float = 5.0, **state) -> list[dict]:
    """Publish one look until ``pred(head)`` holds; the samples so far (AssertionError if not)."""
    rows: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows += look(slow, 0.25, port, **state)
        if pred(rows[-1]):
            return rows
    raise AssertionError(f"the head never got there: {[round(r['yaw'], 1) for r in rows]}")


def test_the_head_follows_the_users_face_and_nods_while_they_talk(rig):
    slow, _, port, _ = rig
    from orchestrator.runtime.expression_stream import Gaze

    settle(slow, port)
    left = Gaze(0.8, 0.0)  # the user at the robot's left (their right on the phone's screen)
    look_until(slow, port, lambda r: r["yaw"] > 12.0, emotion="neutral", gaze=left)
    look_until(slow, port, lambda r: r["yaw"] < -12.0, emotion="neutral", gaze=Gaze(-0.8, 0.0))
    # the phone stops telling (gone, or no face): the gaze goes stale and the head comes back
    look_until(slow, port, lambda r: abs(r["yaw"]) < 3.0, emotion="neutral")
    listening = look(slow, 3.0, port, emotion="neutral", listening=True)
    assert span(listening, "pitch") > 2.5  # small nods while the user speaks


def test_the_body_programs_import_nothing_of_the_creature():
    """A body runs in its own environment: the standard library, its robot's SDK and what the
    body declares, never the creature's packages (nor, for Reachy Mini, anything else)."""
    import ast

    creature = {"orchestrator", "track2_voice", "face", "affect"}
    reachy_allowed = {"websockets", "reachy_mini", "numpy", "__future__"}
    bad = []
    for path in (ROOT / "orchestrator" / "bodies").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if name.startswith("orchestrator.bodies") or top in sys.stdlib_module_names:
                    continue
                in_ros2 = "ros2" in path.relative_to(ROOT).parts
                if top in creature or (not in_ros2 and top not in reachy_allowed):
                    bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad, bad


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--daemon-port", "0"], "--daemon-port 0: expected a port number"),
        (["--robot-url", "http://x/robot"], "--robot-url http://x/robot: expected ws[s]://"),
        (["--stats", "/nonexistent/dir/s.json"], "--stats /nonexistent/dir/s.json: directory"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2_before_anything_is_built(tmp_path, args, expected):
    from tests.conftest import creature

    r = creature("body", "reachy-mini", *args, "--venv", str(tmp_path / "never"), timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], r.stderr
    assert not (tmp_path / "never").exists()


def test_setup_reuses_a_built_environment(reachy_env):
    from tests.conftest import creature

    t0 = time.monotonic()
    r = creature("body", "reachy-mini", "--setup", "--venv", str(reachy_env), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "installing" not in r.stdout and time.monotonic() - t0 < 30
