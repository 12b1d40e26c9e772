"""``creature body reachy-mini``: the robot side of the creature for a Reachy Mini, real or
simulated, in an environment of its own (docs/bodies.md)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.cli.commands.common import add_config_options, config_from_args

DAEMON_READY_S = 90.0  # MuJoCo's first start compiles the model
DAEMON_POLL_S = 0.25
STOP_WAIT_S = 10.0
TASKS_DB = "reachy-mini-tasks.sqlite3"
SIM_ENV = {"MUJOCO_GL": "disable", "HF_HUB_OFFLINE": "1"}  # no window, never a download


def register_kind(bsub: argparse._SubParsersAction) -> None:
    r = bsub.add_parser(
        "reachy-mini",
        help="a Reachy Mini: --sim / --mockup-sim start the SDK's simulated daemon here",
        description=(
            "A Reachy Mini as the creature's head: gesture (nod, shake_head, dance, bow, shrug, "
            "wave), look_at (the user or a direction) and stop; emotions on the antennas and "
            "head, head motion with the creature's speech, nods while the user talks, the head "
            "following the user's face. With --sim (MuJoCo) or --mockup-sim (no physics) it "
            "starts the daemon itself; with --host it drives the daemon of a robot on the LAN."
        ),
    )
    where = r.add_mutually_exclusive_group()
    where.add_argument("--sim", action="store_true", help="start a MuJoCo-simulated robot here")
    where.add_argument("--mockup-sim", action="store_true", help="start a simulated robot without physics")  # fmt: skip
    where.add_argument("--host", metavar="H", help="the robot's daemon (e.g. reachy-mini.local)")
    r.add_argument("--daemon-port", type=int, default=8000, metavar="PORT", help="the daemon's port (default 8000)")  # fmt: skip
    r.add_argument("--robot-url", metavar="WS_URL",
                   help="the creature's robot channel (default ws://<slow_loop.robot.host>:<port>/robot)")  # fmt: skip
    r.add_argument("--name", default="reachy-mini", help="the robot name the creature sees")
    r.add_argument("--stats", metavar="FILE", help="on exit, write the CPU per control tick and the expression rate (JSON)")  # fmt: skip
    env = r.add_argument_group("the body's environment")
    env.add_argument("--setup", action="store_true", help="build it (once; reused after), then exit")  # fmt: skip
    env.add_argument("--venv", metavar="DIR", help="where it lives (default <state_dir>/reachy-venv)")  # fmt: skip
    env.add_argument("--rebuild", action="store_true", help="build it afresh")
    add_config_options(r)
    r.set_defaults(func=main)


def _fail(msg: str) -> int:
    print(f"creature body reachy-mini: {msg}", file=sys.stderr)
    return 2


def robot_token(state: Path) -> str:
    """$CREATURE_ROBOT_TOKEN, else the token the creature keeps in the state directory."""
    from face.state_files import load_or_make_secret
    from orchestrator.state_dir import ROBOT_TOKEN

    return os.environ.get("CREATURE_ROBOT_TOKEN") or load_or_make_secret(state, ROBOT_TOKEN)


def wait_for_daemon(host: str, port: int, daemon: subprocess.Popen | None) -> str | None:
    """None once the daemon answers; else why not."""
    import httpx

    url = f"http://{host}:{port}/api/state/full"
    deadline = time.monotonic() + DAEMON_READY_S
    while time.monotonic() < deadline:
        if daemon is not None and daemon.poll() is not None:
            return f"the daemon exited ({daemon.returncode}) before it answered"
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(DAEMON_POLL_S)
    return f"no Reachy Mini daemon answered at {host}:{port} within {DAEMON_READY_S:.0f} s"


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(args: argparse.Namespace) -> int:
    from orchestrator.cli.reachy_env import ROOT, ReachyEnvError, default_venv, ensure
    from orchestrator.state_dir import state_dir

    if (why := _check_args(args)) is not None:
        return _fail(why)
    cfg = config_from_args(args)
    state = state_dir(cfg.state_dir)
    env_dir = Path(args.venv).expanduser() if args.venv else default_venv(state)
    try:
        python = ensure(env_dir, lambda line: print(line, flush=True), rebuild=args.rebuild)
    except ReachyEnvError as e:
        return _fail(str(e))
    if args.setup:
        return 0
    robot = cfg.slow_loop.robot
    url = args.robot_url or f"ws://{robot.host}:{robot.port}/robot"
    host = args.host or "127.0.0.1"
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), "CREATURE_ROBOT_TOKEN": robot_token(state)}

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    daemon = body = None
    try:
        if args.sim or args.mockup_sim:
            daemon = start_sim_daemon(args, env_dir)
        why = wait_for_daemon(host, args.daemon_port, daemon)
        if why is not None:
            return _fail(why)
        cmd = [str(python), "-m", "orchestrator.bodies.reachy_mini", "--url", url]
        cmd += ["--daemon-host", host, "--daemon-port", str(args.daemon_port), "--name", args.name]
        cmd += ["--db", str(state / TASKS_DB)]  # the call ids it took on survive its restarts
        cmd += ["--stats", args.stats] if args.stats else []
        cmd += ["-v"] if args.verbose else []
        body = subprocess.Popen(cmd, env=child_env)
        return body.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(body)
        _stop(daemon)


def _check_args(args: argparse.Namespace) -> str | None:
    """None when the flags make sense; else what is wrong, naming the flag."""
    if not 0 < args.daemon_port < 65536:
        return f"--daemon-port {args.daemon_port}: expected a port number 1-65535"
    if args.robot_url and not args.robot_url.startswith(("ws://", "wss://")):
        return f"--robot-url {args.robot_url}: expected ws[s]://HOST:PORT/robot"
    if args.stats and not Path(args.stats).resolve().parent.is_dir():
        return f"--stats {args.stats}: directory {Path(args.stats).parent} does not exist"
    return None


def start_sim_daemon(args: argparse.Namespace, env_dir: Path) -> subprocess.Popen:
    """The SDK's simulated daemon (MuJoCo, or a mockup without physics), headless, here."""
    from orchestrator.cli.reachy_env import venv_bin

    cmd = [str(venv_bin(env_dir, "reachy-mini-daemon"))]
    cmd += ["--sim" if args.sim else "--mockup-sim", "--headless", "--no-media"]
    cmd += ["--no-preload-datasets", "--no-wake-up-on-start", "--no-goto-sleep-on-stop"]
    cmd += ["--fastapi-host", "127.0.0.1", "--fastapi-port", str(args.daemon_port)]
    cmd += ["--log-level", "WARNING"]
    print(f"body: starting the simulated Reachy Mini ({cmd[1]})", flush=True)
    return subprocess.Popen(cmd, env={**os.environ, **SIM_ENV})
