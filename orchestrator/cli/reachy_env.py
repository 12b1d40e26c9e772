"""The Reachy Mini body's own Python environment: built once in the state directory, reused,
rebuilt when its pins change.

reachy-mini 1.13 pins aiohttp >= 3.14 and huggingface-hub >= 1.20 (and numpy >= 2.2.5,
onnxruntime 1.27); moshi_mlx 0.3.0 pins aiohttp < 3.12 and huggingface-hub < 1.0. The two
cannot share an environment, and the body needs none of the creature's packages: it talks to
the creature only over the robot channel's WebSocket. So this environment stands alone (no
layering on the creature's), with its pins in ``orchestrator/bodies/reachy_mini/
requirements.txt``. ``creature body reachy-mini`` runs the SDK's daemon and the body program
(``orchestrator.bodies.reachy_mini``, standard library + websockets + the SDK) with its python.

PyGObject (a reachy-mini dependency) builds from source: apt ``libcairo2-dev
libgirepository1.0-dev gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0`` first.
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
REQUIREMENTS = ROOT / "orchestrator" / "bodies" / "reachy_mini" / "requirements.txt"
VENV_NAME = "reachy-venv"
STAMP = "creature-reachy.stamp"  # inside the venv: the pins it was built from
APT_HINT = (
    "apt-get install libcairo2-dev libgirepository1.0-dev gir1.2-gst-plugins-base-1.0 "
    "gir1.2-gst-plugins-bad-1.0"
)


class ReachyEnvError(Exception):
    """The Reachy Mini environment cannot be found or built (one clear line for the user)."""


def default_venv(state_dir: Path) -> Path:
    """Inside the project's one state directory (``orchestrator.state_dir``)."""
    return state_dir / VENV_NAME


def venv_bin(env: Path, name: str) -> Path:
    return env / ("Scripts" if sys.platform == "win32" else "bin") / name


def venv_python(env: Path) -> Path:
    return venv_bin(env, "python.exe" if sys.platform == "win32" else "python")


def wanted_stamp() -> str:
    if not REQUIREMENTS.is_file():
        raise ReachyEnvError(f"{REQUIREMENTS}: not found (the body runs from a source checkout)")
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
    """Create the environment, or bring an existing one to the pins (``clear``: afresh);
    returns its python. About 1-2 min on a 2-CPU machine (PyGObject compiles)."""
    stamp = wanted_stamp()
    t0 = time.monotonic()
    progress(f"creating {env}")
    try:
        env.parent.mkdir(parents=True, exist_ok=True)
        if clear or not venv_python(env).exists():
            venv.EnvBuilder(with_pip=True, clear=clear).create(env)
    except OSError as e:
        raise ReachyEnvError(f"{env}: cannot create the environment ({e})") from e
    progress(f"installing {REQUIREMENTS.relative_to(ROOT)} (reachy-mini with MuJoCo)")
    cmd = [str(venv_python(env)), "-m", "pip", "install", "--disable-pip-version-check"]
    r = subprocess.run(cmd + (["-q"] if quiet else []) + ["-r", str(REQUIREMENTS)])
    if r.returncode != 0:
        raise ReachyEnvError(
            f"pip install -r {REQUIREMENTS.name} failed (exit {r.returncode}); PyGObject needs "
            f"{APT_HINT}"
        )
    (env / STAMP).write_text(stamp + "\n")
    progress(f"Reachy Mini environment ready in {time.monotonic() - t0:.0f} s: {env}")
    return venv_python(env)


def ensure(env: Path, progress: Callable[[str], None], rebuild: bool = False) -> Path:
    """The environment's python, building it first when missing or out of date."""
    if rebuild or not is_ready(env):
        return build(env, progress, clear=rebuild)
    return venv_python(env)
