"""The ROS 2 body's own Python environment: built once in the state directory, reused,
rebuilt when its pins change.

rclpy comes from PyPI as ROS 2 Kilted wheels (``ros-rclpy`` for CPython 3.11), with the DDS
middleware and the interface packages beside it: a few hundred MB of native libraries the
creature itself never loads. So the bridge (``orchestrator.bodies.ros2.bridge``) runs in this
environment as a separate program and speaks the robot WebSocket protocol to the creature; it
imports nothing of the creature but its own small package. Pins:
``orchestrator/bodies/ros2/requirements.txt``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "orchestrator" / "bodies" / "ros2" / "requirements.txt"
VENV_NAME = "ros2-venv"
STAMP = "creature-ros2.stamp"  # inside the venv: what it was built from
PYTHON = (3, 11)  # the only CPython the ROS 2 wheels are built for


class Ros2EnvError(Exception):
    """The ROS 2 environment cannot be found or built (one clear line for the user)."""


def default_venv(state_dir: Path) -> Path:
    """Inside the project's one state directory (``orchestrator.state_dir``)."""
    return state_dir / VENV_NAME


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def wanted_stamp() -> str:
    h = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    h.update(REQUIREMENTS.read_bytes())
    return h.hexdigest()[:16]


def is_ready(env: Path) -> bool:
    stamp = env / STAMP
    return (
        venv_python(env).exists() and stamp.exists() and stamp.read_text().strip() == wanted_stamp()
    )


def build(
    env: Path, progress: Callable[[str], None], clear: bool = False, quiet: bool = True
) -> Path:
    """Create the environment, or bring an existing one to the pins (``clear``: start
    afresh); returns its python. About 20 s on a 2-CPU machine with a warm pip cache."""
    if sys.version_info[:2] != PYTHON:
        raise Ros2EnvError(
            f"the ROS 2 wheels on PyPI are built for CPython {PYTHON[0]}.{PYTHON[1]}; "
            f"this is {sys.version_info[0]}.{sys.version_info[1]}"
        )
    t0 = time.monotonic()
    progress(f"[1/2] creating {env}")
    try:
        env.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if clear or not venv_python(env).exists():
            venv.EnvBuilder(with_pip=True, clear=clear).create(env)
    except OSError as e:
        raise Ros2EnvError(f"{env}: cannot create the environment ({e})") from e
    progress(f"[2/2] rclpy and its interfaces ({REQUIREMENTS.relative_to(ROOT)})")
    cmd = [str(venv_python(env)), "-m", "pip", "install", "--disable-pip-version-check"]
    cmd += ["-q"] if quiet else []
    r = subprocess.run([*cmd, "-r", str(REQUIREMENTS)])
    if r.returncode != 0:
        raise Ros2EnvError(f"pip install -r {REQUIREMENTS} failed (exit {r.returncode})")
    (env / STAMP).write_text(wanted_stamp() + "\n")
    progress(f"ROS 2 environment ready in {time.monotonic() - t0:.0f} s: {env}")
    return venv_python(env)


def ensure(env: Path, progress: Callable[[str], None], rebuild: bool = False) -> Path:
    """The environment's python, building it first when missing or out of date."""
    if rebuild or not is_ready(env):
        return build(env, progress, clear=rebuild)
    return venv_python(env)
