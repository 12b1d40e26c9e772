"""Ray Serve's own Python environment: built once in the state directory, reused, rebuilt
when the ``ray`` extra's pins (pyproject.toml) change.

ray[serve] 2.60 needs aiohttp >= 3.12; moshi_mlx 0.3.0 pins aiohttp < 3.12: one environment
cannot hold both. This one sees the project's environment (torch, moshi, the creature
itself) and adds only Ray and what it needs on top (~490 MB), so a replica runs the very model
code the creature's own environment has.

"The project's environment" is whatever ``sys.prefix`` is: the system Python, or a virtual
environment. ``venv``'s ``system_site_packages`` alone reaches only the *base* interpreter's
packages (a venv made from inside a venv is built on the base), so the creature's own
site-packages are added by a ``.pth`` file, after the Ray environment's own (Ray's aiohttp
wins over the creature's). ``creature
model-server --ray`` re-runs itself with this environment's python when its own has no Ray.
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
VENV_NAME = "ray-venv"
STAMP = "creature-ray.stamp"  # inside the venv: the pins it was built from


class RayEnvError(UserError):
    """The Ray environment cannot be found or built (one clear line for the user)."""


def default_venv(state_dir: Path) -> Path:
    """Inside the project's one state directory (``orchestrator.state_dir``)."""
    return state_dir / VENV_NAME


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ray_requirements() -> list[str]:
    """The ``ray`` extra, from this checkout's pyproject.toml (else the installed package)."""
    pyproject = ROOT / "pyproject.toml"
    if pyproject.exists() and sys.version_info >= (3, 11):
        import tomllib

        extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
        return list(extras["ray"])
    from importlib.metadata import requires

    reqs = [r.split(";")[0].strip() for r in requires("creature") or [] if 'extra == "ray"' in r]
    if not reqs:
        raise RayEnvError("cannot find the project's `ray` extra (pyproject.toml)")
    return reqs


LAYER_PTH = "creature-base-env.pth"  # inside the venv's site-packages: the creature's env


def creature_site_dirs() -> list[str]:
    """The site-packages of the environment this creature runs in (a venv or the system)."""
    import sysconfig

    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def env_site_dir(env: Path) -> Path:
    """The Ray environment's own site-packages (asked of its python: layouts differ by OS)."""
    out = subprocess.run(
        [str(venv_python(env)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def layer_on_creature_env(env: Path) -> None:
    """Make the Ray environment see the creature's packages, whatever kind of env holds them.

    Each directory goes in through ``site.addsitedir`` (a ``.pth`` line that starts with
    ``import`` runs), not as a bare path: a bare path is added, but the ``.pth`` files inside
    it are not read, and an editable install (``pip install -e .``) is one of those (its
    finder is installed by ``__editable__.creature-*.pth``): ``orchestrator`` would then be
    importable only from inside the checkout."""
    lines = [f"import site; site.addsitedir({d!r})" for d in creature_site_dirs()]
    (env_site_dir(env) / LAYER_PTH).write_text("\n".join(lines) + "\n")


def wanted_stamp() -> str:
    # the layering is in the stamp: an environment built before it is rebuilt
    h = hashlib.sha256(f"{sys.version_info[:2]} {sys.prefix} {LAYER_PTH} addsitedir".encode())
    h.update("\n".join(ray_requirements()).encode())
    return h.hexdigest()[:16]


def is_ready(env: Path) -> bool:
    stamp = env / STAMP
    return (
        venv_python(env).exists() and stamp.exists() and stamp.read_text().strip() == wanted_stamp()
    )


def build(env: Path, progress: Callable[[str], None], quiet: bool = True) -> Path:
    """Create the environment (or bring an existing one to the pins); returns its python.
    About 30-60 s on a 2-CPU machine with a warm pip cache."""
    t0 = time.monotonic()
    progress(f"creating {env} (on top of {sys.prefix})")
    try:
        env.parent.mkdir(parents=True, exist_ok=True)
        if not venv_python(env).exists():
            venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env)
        layer_on_creature_env(env)
    except (OSError, subprocess.CalledProcessError) as e:
        raise RayEnvError(f"{env}: cannot create the environment ({e})") from e
    reqs = ray_requirements()
    progress(f"installing {' '.join(reqs)}")
    cmd = [str(venv_python(env)), "-m", "pip", "install", "--disable-pip-version-check"]
    r = subprocess.run(cmd + (["-q"] if quiet else []) + reqs)
    if r.returncode != 0:
        raise RayEnvError(f"pip install {' '.join(reqs)} failed (exit {r.returncode})")
    (env / STAMP).write_text(wanted_stamp() + "\n")
    progress(f"Ray environment ready in {time.monotonic() - t0:.0f} s: {env}")
    return venv_python(env)
