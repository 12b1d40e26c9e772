"""A Python environment of its own for a stack that cannot share the creature's.

Built once under the state directory, stamped with what it was built from (its pins and the
Python it runs on), reused while the stamp matches, rebuilt when it does not. ``layered``
environments also see the creature's own packages (a ``.pth`` file naming the site-packages of
whatever environment the creature runs in, after the helper's own, so the helper's pins win);
the others stand alone and talk to the creature over a socket.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from track2_voice.common.errors import UserError

LAYER_PTH = "creature-base-env.pth"
STAMP = "creature-env.stamp"


class HelperEnvError(UserError):
    """The environment cannot be found or built (one clear line for the user)."""


def venv_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def creature_site_dirs() -> list[str]:
    """The site-packages of the environment this creature runs in (a venv or the system)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def venv_bin(env: Path, name: str) -> Path:
    return env / ("Scripts" if sys.platform == "win32" else "bin") / name


@dataclass(frozen=True)
class HelperEnv:
    dir_name: str  # under the state directory
    what: str  # for messages: "the planner's llama.cpp server"
    setup_command: str  # the command that builds it, for the "not ready" line
    requirements: tuple[str, ...] = ()
    requirements_file: Path | None = None  # pins in a file of the checkout (pip -r)
    layered: bool = False
    build_env: dict[str, str] = field(default_factory=dict)  # e.g. CMAKE_BUILD_PARALLEL_LEVEL
    python_version: tuple[int, int] | None = None  # the only CPython its wheels exist for
    failure_hint: str = ""  # said when pip fails (e.g. the apt packages a build needs)
    error: type[HelperEnvError] = HelperEnvError

    def pip_args(self) -> list[str]:
        return [
            *self.requirements,
            *(["-r", str(self.requirements_file)] if self.requirements_file else []),
        ]

    def path(self, state_dir: Path) -> Path:
        return state_dir / self.dir_name

    def wanted_stamp(self) -> str:
        h = hashlib.sha256(f"{sys.version_info[:2]} {self.layered}".encode())
        if self.layered:
            h.update(sys.prefix.encode())
        h.update("\n".join(self.requirements).encode())
        if self.requirements_file is not None:
            if not self.requirements_file.is_file():
                raise self.error(
                    f"{self.requirements_file}: not found (it runs from a source checkout)"
                )
            h.update(self.requirements_file.read_bytes())
        return h.hexdigest()[:16]

    def is_ready(self, env: Path) -> bool:
        stamp = env / STAMP
        return (
            venv_python(env).exists()
            and stamp.exists()
            and stamp.read_text().strip() == self.wanted_stamp()
        )

    def python(self, env: Path) -> Path:
        """The environment's python, or one line saying how to build it."""
        if not self.is_ready(env):
            raise self.error(
                f"{self.what} needs its environment at {env}: run `{self.setup_command}` "
                "(once; it is reused after)"
            )
        return venv_python(env)

    def build(
        self, env: Path, progress: Callable[[str], None], clear: bool = False, quiet: bool = True
    ) -> Path:
        """Create the environment (or bring an existing one to the pins; ``clear``: afresh);
        returns its python."""
        if self.python_version and sys.version_info[:2] != self.python_version:
            want = ".".join(map(str, self.python_version))
            raise self.error(
                f"{self.what} needs CPython {want} (its wheels exist for no other); this is "
                f"{sys.version_info[0]}.{sys.version_info[1]}"
            )
        stamp = self.wanted_stamp()
        t0 = time.monotonic()
        progress(f"creating {env}")
        try:
            env.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if clear or not venv_python(env).exists():
                venv.EnvBuilder(
                    with_pip=True, system_site_packages=self.layered, clear=clear
                ).create(env)
            if self.layered:
                self._layer(env)
        except (OSError, subprocess.CalledProcessError) as e:
            raise self.error(f"{env}: cannot create the environment ({e})") from e
        what = " ".join(self.pip_args())
        progress(f"installing {what} (minutes the first time)")
        cmd = [str(venv_python(env)), "-m", "pip", "install", "--disable-pip-version-check"]
        r = subprocess.run(
            cmd + (["-q"] if quiet else []) + self.pip_args(),
            env={**os.environ, **self.build_env},
        )
        if r.returncode != 0:
            hint = f"; {self.failure_hint}" if self.failure_hint else ""
            raise self.error(f"pip install {what} failed (exit {r.returncode}){hint}")
        (env / STAMP).write_text(stamp + "\n")
        progress(f"{self.what}: environment ready in {time.monotonic() - t0:.0f} s: {env}")
        return venv_python(env)

    def ensure(self, env: Path, progress: Callable[[str], None], rebuild: bool = False) -> Path:
        """The environment's python, building it first when missing or out of date."""
        if rebuild or not self.is_ready(env):
            return self.build(env, progress, clear=rebuild)
        return venv_python(env)

    @staticmethod
    def _layer(env: Path) -> None:
        out = subprocess.run(
            [
                str(venv_python(env)),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        site = Path(out.stdout.strip())
        (site / LAYER_PTH).write_text("\n".join(creature_site_dirs()) + "\n")
