"""The ROS 2 body's own Python environment: built once in the state directory, reused,
rebuilt when its pins change (``orchestrator.cli.helper_env``).

rclpy comes from PyPI as ROS 2 Kilted wheels (``ros-rclpy`` for CPython 3.11), with the DDS
middleware and the interface packages beside it: a few hundred MB of native libraries the
creature itself never loads. So the bridge (``orchestrator.bodies.ros2.bridge``) runs in this
environment as a separate program and speaks the robot WebSocket protocol to the creature; it
imports nothing of the creature but its own small package. Pins:
``orchestrator/bodies/ros2/requirements.txt``.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.cli.helper_env import HelperEnv, HelperEnvError, venv_python

ROOT = Path(__file__).resolve().parents[2]


class Ros2EnvError(HelperEnvError):
    """The ROS 2 environment cannot be found or built (one clear line for the user)."""


ENV = HelperEnv(
    dir_name="ros2-venv",
    what="the ROS 2 body",
    setup_command="creature body ros2 --setup",
    requirements_file=ROOT / "orchestrator" / "bodies" / "ros2" / "requirements.txt",
    python_version=(3, 11),
    error=Ros2EnvError,
)
default_venv, is_ready, ensure = ENV.path, ENV.is_ready, ENV.ensure
__all__ = ["ENV", "Ros2EnvError", "default_venv", "ensure", "is_ready", "venv_python"]
