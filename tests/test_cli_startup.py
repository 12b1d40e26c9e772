"""The CLI loads no heavy library it does not use: every ``creature`` command (and every
test that runs one) pays for what ``orchestrator.cli`` imports before it parses a flag.
torch and scipy.signal cost 2.5 s of a 3.5 s start here; they load when a command needs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, creature

HEAVY = ("torch", "scipy.signal", "moshi", "moshi_mlx", "mlx", "matplotlib", "playwright")


def test_the_cli_parses_its_flags_without_the_heavy_libraries():
    code = (
        "import sys\n"
        "from orchestrator.cli.main import build_parser\n"
        "build_parser()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"imported at start: {r.stdout.strip()}"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_serve_stops_cleanly_on_sigterm_as_on_ctrl_c(signum, code, tmp_path):
    """How service managers and containers stop a program (SIGTERM) ends ``serve`` as Ctrl-C
    does: the loop stops after its frame (``loop_stopped`` in the record), the summary is
    printed, and the exit code says which signal it was (128 + signal, as shells report)."""
    record = tmp_path / "serve.jsonl"
    cmd = [sys.executable, "-m", "orchestrator.cli", "serve", "--no-tls", "--face-port", "0"]
    cmd += ["--set", "slow_loop.robot.port=0", "--set", "phone.qr=false", "--record", str(record)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path)}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (record.exists() and '"kind": "frame"' in record.read_text()):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "serve never ran a frame"
            time.sleep(0.1)
        p.send_signal(signum)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == code, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["frames"] > 0
    kinds = [json.loads(line)["kind"] for line in record.read_text().splitlines()]
    assert "loop_stopped" in kinds, kinds[-5:]
    assert "Traceback" not in err, err[-2000:]


def test_demo_with_a_robot_that_cannot_run_fails_in_one_line(tmp_path):
    """``demo --once --robot`` whose robot channel could not listen (its port is taken):
    no robot ran, so the demo did not do what was asked; it says so and exits 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = creature(
            "demo", "--once", "--robot", "--no-face",
            "--set", f"slow_loop.robot.port={port}",
            env={"XDG_STATE_HOME": str(tmp_path)},
            timeout=120,
        )  # fmt: skip
    assert r.returncode == 1, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("creature: error: --robot: "), r.stderr


def test_serve_without_tls_does_not_promise_the_phone_mic(tmp_path):
    r = creature(
        "serve", "--no-tls", "--face-port", "0", "--max-frames", "2",
        "--set", "slow_loop.robot.port=0", "--set", "phone.qr=false",
        env={"XDG_STATE_HOME": str(tmp_path)},
        timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "tap the face" not in r.stdout
    assert "a phone shows the face but cannot lend its mic" in r.stdout
    assert "http://localhost:" in r.stdout


def test_replay_stops_on_sigterm_with_its_summary_and_143(speech_wav, tmp_path):
    record = tmp_path / "run.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path)}
    # at real time: the replay follows the record's clock (an offline run's lasts a blink)
    r = creature("run", "--realtime", "--input", str(speech_wav), "--record", str(record), env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    replayed = tmp_path / "replayed.jsonl"
    cmd = [sys.executable, "-m", "orchestrator.cli", "replay", str(record), "--no-face"]
    cmd += ["--speed", "0.2", "--record-to", str(replayed)]  # slow: stopped midway
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (replayed.exists() and replayed.read_text().strip()):  # it is playing
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the replay never started"
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 143, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])
