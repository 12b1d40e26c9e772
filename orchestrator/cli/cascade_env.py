"""The cascade's own Python environment: built once, reused, rebuilt when its pins change.

Pipecat >= 1.13 needs aiohttp >= 3.14 and transformers 5 needs huggingface-hub >= 1.5;
moshi_mlx 0.3.0 pins aiohttp < 3.12 and huggingface-hub < 1.0. The two cannot share an
environment (unpinned, pip quietly falls back to pipecat 1.12), so the cascade gets a virtual
environment of its own in the state directory, with its pins in
``benchmarks/cascade/requirements.txt`` and ``constraints.txt``. The creature never imports
it: ``creature cascade`` runs that environment's python as a subprocess.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from pathlib import Path

from track2_voice.common.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
CASCADE_DIR = ROOT / "benchmarks" / "cascade"
REQUIREMENTS = CASCADE_DIR / "requirements.txt"
CONSTRAINTS = CASCADE_DIR / "constraints.txt"
VENV_NAME = "cascade-venv"
STAMP = "creature-cascade.stamp"  # inside the venv: what it was built from
# torch's CPU build (a few hundred MB) rather than the default CUDA one (several GB); where the
# local index has no "+cpu" build, the plain release
TORCH = ("torch==2.13.0+cpu", "torch==2.13.0")


class CascadeEnvError(UserError):
    """The cascade environment cannot be found or built (one clear line for the user)."""


def default_venv(state_dir: Path) -> Path:
    """Inside the project's one state directory (``orchestrator.state_dir``)."""
    return state_dir / VENV_NAME


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def wanted_stamp() -> str:
    if not CASCADE_DIR.is_dir():
        raise CascadeEnvError(
            f"{CASCADE_DIR}: not found; the cascade runs from a source checkout of the project"
        )
    h = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    for f in (REQUIREMENTS, CONSTRAINTS):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def is_ready(env: Path) -> bool:
    stamp = env / STAMP
    return (
        venv_python(env).exists() and stamp.exists() and stamp.read_text().strip() == wanted_stamp()
    )


def _pip(env: Path, *args: str, quiet: bool) -> None:
    cmd = [str(venv_python(env)), "-m", "pip", "install", "--disable-pip-version-check"]
    cmd += ["-q"] if quiet else []
    r = subprocess.run(cmd + list(args))
    if r.returncode != 0:
        raise CascadeEnvError(f"pip install {' '.join(args)} failed (exit {r.returncode})")


def build(
    env: Path, progress: Callable[[str], None], clear: bool = False, quiet: bool = True
) -> Path:
    """Create the environment, or bring an existing one to the pins (``clear``: start
    afresh); returns its python. About 1.5 min on a 2-CPU machine with a warm pip cache."""
    stamp = wanted_stamp()
    t0 = time.monotonic()

    def step(n: int, what: str) -> None:
        progress(f"[{n}/3] {what} ({time.monotonic() - t0:.0f} s)")

    step(1, f"creating {env}")
    try:
        env.parent.mkdir(parents=True, exist_ok=True)
        if clear or not venv_python(env).exists():  # an existing one is brought to the pins
            venv.EnvBuilder(with_pip=True, clear=clear).create(env)
    except OSError as e:
        raise CascadeEnvError(f"{env}: cannot create the environment ({e})") from e
    step(2, "torch, CPU build")
    try:
        _pip(env, TORCH[0], quiet=quiet)
    except CascadeEnvError:
        _pip(env, TORCH[1], quiet=quiet)
    step(3, f"the cascade's pins ({REQUIREMENTS.relative_to(ROOT)})")
    _pip(env, "-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS), quiet=quiet)
    (env / STAMP).write_text(stamp + "\n")
    progress(f"cascade environment ready in {time.monotonic() - t0:.0f} s: {env}")
    return venv_python(env)


def ensure(env: Path, progress: Callable[[str], None], rebuild: bool = False) -> Path:
    """The environment's python, building it first when missing or out of date."""
    if rebuild or not is_ready(env):
        return build(env, progress, clear=rebuild)
    return venv_python(env)
