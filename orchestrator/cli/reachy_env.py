"""The Reachy Mini body's own Python environment: built once in the state directory, reused,
rebuilt when its pins change (``orchestrator.cli.helper_env``).

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

from pathlib import Path

from orchestrator.cli.helper_env import HelperEnv, HelperEnvError, venv_bin, venv_python

ROOT = Path(__file__).resolve().parents[2]
APT_HINT = (
    "apt-get install libcairo2-dev libgirepository1.0-dev gir1.2-gst-plugins-base-1.0 "
    "gir1.2-gst-plugins-bad-1.0"
)


class ReachyEnvError(HelperEnvError):
    """The Reachy Mini environment cannot be found or built (one clear line for the user)."""


ENV = HelperEnv(
    dir_name="reachy-venv",
    what="the Reachy Mini body",
    setup_command="creature body reachy-mini --setup",
    requirements_file=ROOT / "orchestrator" / "bodies" / "reachy_mini" / "requirements.txt",
    failure_hint=f"PyGObject needs {APT_HINT}",
    error=ReachyEnvError,
)
default_venv, is_ready, ensure = ENV.path, ENV.is_ready, ENV.ensure
__all__ = [
    "ENV", "ROOT", "ReachyEnvError", "default_venv", "ensure", "is_ready", "venv_bin", "venv_python",
]  # fmt: skip
