"""``creature body ros2``: the creature's calls as ROS 2 action goals, in an environment of its
own (``--setup`` builds it; see docs/bodies.md)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.cli.commands.common import add_config_options, config_from_args
from orchestrator.data_files import ROS2_MAP_FILE

ROOT = Path(__file__).resolve().parents[3]
TOKEN_ENV = "CREATURE_ROBOT_TOKEN"


def register_kind(kinds: argparse._SubParsersAction) -> None:
    r = kinds.add_parser(
        "ros2",
        help="each call becomes a ROS 2 action goal (rclpy, in its own environment)",
        description=(
            "Connects to the creature's robot channel as a body and turns each call into a goal "
            "on the ROS 2 action server the map names for its action: feedback is reported as "
            "progress, the result as succeeded or failed, the creature's cancel cancels the goal. "
            "Declares as capabilities the mapped actions whose server is present."
        ),
    )
    r.add_argument("--map", default=str(ROS2_MAP_FILE),
                   help="YAML map of actions to action servers (default configs/bodies/ros2.yaml)")  # fmt: skip
    r.add_argument("--robot-url", metavar="URL",
                   help="the robot channel (default ws://HOST:PORT/robot from slow_loop.robot)")  # fmt: skip
    r.add_argument(
        "--token", help=f"robot token (default ${TOKEN_ENV}, else the state directory's)"
    )
    r.add_argument("--db", help="SQLite file of the call ids taken on (default <state_dir>/ros2-body.sqlite3)")  # fmt: skip
    r.add_argument("--venv", help="the ROS 2 environment (default <state_dir>/ros2-venv)")
    r.add_argument("--setup", action="store_true", help="build the environment, then exit")
    r.add_argument("--rebuild", action="store_true", help="build the environment afresh")
    add_config_options(r)
    r.set_defaults(func=main)


def _fail(msg: str) -> int:
    print(f"creature body ros2: {msg}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from orchestrator.bodies.ros2.action_map import MapError, load_map
    from orchestrator.cli.ros2_env import Ros2EnvError, default_venv, ensure
    from orchestrator.state_dir import ROBOT_TOKEN, state_dir

    cfg = config_from_args(args)
    state = state_dir(cfg.state_dir)
    if not args.setup:
        try:
            load_map(args.map)  # checked here: a bad map is one line before ROS 2 starts
        except MapError as e:
            return _fail(f"--map {e}")
    env_dir = Path(args.venv).expanduser() if args.venv else default_venv(state)
    try:
        python = ensure(env_dir, lambda line: print(line, flush=True), rebuild=args.rebuild)
    except Ros2EnvError as e:
        return _fail(str(e))
    if args.setup:
        return 0
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token and (state / ROBOT_TOKEN).is_file():
        token = (state / ROBOT_TOKEN).read_text(encoding="utf-8").strip()
    if not token:
        return _fail(f"no token: give --token, set {TOKEN_ENV}, or start the creature first")
    rc = cfg.slow_loop.robot
    url = args.robot_url or f"ws://{rc.host}:{rc.port}/robot"
    db = args.db or str(state / "ros2-body.sqlite3")
    cmd = [str(python), "-m", "orchestrator.bodies.ros2.bridge", "--map", args.map]
    cmd += ["--url", url, "--db", db]
    # the token goes by the environment, never the command line (ps shows that)
    env = {**os.environ, "PYTHONPATH": str(ROOT), TOKEN_ENV: token}
    try:
        return subprocess.run(cmd, env=env).returncode
    except KeyboardInterrupt:
        return 0
