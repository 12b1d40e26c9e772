"""The helper environments see what they need from the creature's own environment, whatever
kind it is: Ray's is layered on it (a ``.pth``), so from a virtual environment a replica
still imports the creature's packages (it once failed with ``No module named
'pythonjsonlogger'``: ``system_site_packages`` reaches only the base interpreter's). Run as a
user would: no PYTHONPATH, from a directory outside the checkout."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

from orchestrator.cli.ray_env import LAYER_PTH, env_site_dir, layer_on_creature_env, venv_python
from tests.conftest import USER_XDG_STATE_HOME, require

IMPORTS = "import pythonjsonlogger, orchestrator, track2_voice, numpy, soxr; print('ok')"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _in_user_state_dir(default_venv) -> Path:
    """Where .ci/install built the environment (the tests' own state directory is fresh)."""
    from orchestrator.state_dir import default_state_dir

    with pytest.MonkeyPatch.context() as mp:
        if USER_XDG_STATE_HOME:
            mp.setenv("XDG_STATE_HOME", USER_XDG_STATE_HOME)
        else:
            mp.delenv("XDG_STATE_HOME", raising=False)
        return default_venv(default_state_dir())


def test_a_layered_environment_imports_the_creatures_packages(tmp_path):
    """The layering alone, on a bare environment made the way ``--ray-setup`` makes Ray's."""
    env = tmp_path / "layered"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env)
    layer_on_creature_env(env)
    assert (env_site_dir(env) / LAYER_PTH).is_file()
    r = subprocess.run(
        [str(venv_python(env)), "-c", IMPORTS],
        capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_the_built_ray_environment_imports_the_creature_and_keeps_rays_aiohttp(tmp_path):
    """The Ray environment ``.ci/install`` built (``creature model-server --ray-setup``)."""
    from orchestrator.cli.ray_env import default_venv, is_ready

    env = _in_user_state_dir(default_venv)
    require(f"Ray Serve's environment at {env}", is_ready(env), "creature model-server --ray-setup")
    code = IMPORTS.replace("print('ok')", "import ray, aiohttp; print(aiohttp.__version__)")
    r = subprocess.run(
        [str(venv_python(env)), "-c", code],
        capture_output=True, text=True, cwd=tmp_path, env=_clean_env(), timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    major, minor = (int(x) for x in r.stdout.strip().split(".")[:2])
    assert (major, minor) >= (3, 12), "Ray's aiohttp must win over the creature's pin"


def test_the_cascade_environment_runs_its_harness_beside_the_checkout(tmp_path):
    """The cascade's environment is standalone on purpose (its pins conflict with the
    creature's); what it takes from the creature is the checkout on PYTHONPATH, as
    ``creature cascade`` runs it."""
    from orchestrator.cli.cascade_env import ROOT, default_venv, is_ready
    from orchestrator.cli.cascade_env import venv_python as cascade_python

    env = _in_user_state_dir(default_venv)
    require(f"the cascade's environment at {env}", is_ready(env), "creature cascade --setup-only")
    code = "import benchmarks.cascade.harness_io, benchmarks.cascade.run, pipecat; print('ok')"
    r = subprocess.run(
        [str(cascade_python(env)), "-c", code],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**_clean_env(), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
