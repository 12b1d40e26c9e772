"""``creature model-server --ray``: the same server as Ray Serve replicas (docs/ray_serve.md).

Not a command of its own: ``model_server`` adds these flags to its parser and hands over
when ``--ray`` is given, so every model flag means the same in both modes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from orchestrator.cli.flag_table import Flag, add_flags, flag_error, values
from track2_voice.model_server.cluster_options import ClusterOptions
from track2_voice.model_server.options import ServerOptions

RAY_MISSING = (
    "--ray needs Ray Serve: run `creature model-server --ray-setup` once (it builds Ray's own "
    "environment, {env}), or pip install 'creature[ray]' where moshi_mlx is not installed"
)


CLUSTER_FLAGS = (
    Flag("--ray", "serve through Ray Serve replicas, sessions placed by free slots", switch=True),
    Flag(
        "--ray-setup",
        "build Ray Serve's own environment in the state directory, then exit",
        switch=True,
    ),
    Flag(
        "--ray-venv", "where Ray's environment lives (default: <state dir>/ray-venv)", metavar="DIR"
    ),
    Flag("--replicas", "model servers (GPUs) ({default})", "replicas", int),
    Flag(
        "--ray-address",
        "join a running Ray cluster ('auto' after `ray start --head`); default: start a "
        "local Ray instance",
        "address",
        metavar="ADDR",
    ),
    Flag(
        "--gpus-per-replica",
        "GPUs per replica, fractions allowed (default: 1 when the cluster has GPUs, else 0)",
        "gpus_per_replica",
        float,
        metavar="N",
    ),
    Flag(
        "--cpus-per-replica",
        "CPUs Ray reserves per replica ({default:g})",
        "cpus_per_replica",
        float,
        metavar="N",
    ),
    Flag(
        "--refusal-lanes",
        "sessions beyond --slots a replica takes only to refuse them at once "
        "(kind 5, 1013) ({default})",
        "refusal_lanes",
        int,
        metavar="N",
    ),
    Flag(
        "--max-queued",
        "sessions Ray holds while every lane is busy; beyond: HTTP 500 ({default})",
        "max_queued",
        int,
        metavar="N",
    ),
    Flag(
        "--graceful-shutdown-timeout",
        "a replica being removed keeps its sessions this long ({default:g})",
        "graceful_shutdown_timeout_s",
        float,
        metavar="S",
    ),
    Flag(
        "--health-check-period",
        "how often Serve asks each replica's batch loop ({default:g})",
        "health_check_period_s",
        float,
        metavar="S",
    ),
    Flag(
        "--health-check-timeout",
        "an answer slower than this fails the check ({default:g})",
        "health_check_timeout_s",
        float,
        metavar="S",
    ),
    Flag(
        "--haproxy",
        "Serve's HAProxy ingress instead of its Python proxy (local instance; HTTP only)",
        "haproxy",
        switch=True,
    ),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_flags(p.add_argument_group("Ray Serve (--ray)"), CLUSTER_FLAGS, ClusterOptions())


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    try:
        return ClusterOptions(**values(args, CLUSTER_FLAGS))
    except ValidationError as e:  # NaN, say: one line naming the flag
        raise ValueError(flag_error(e, CLUSTER_FLAGS)) from None


def ray_venv(args: argparse.Namespace) -> Path:
    from orchestrator.cli.ray_env import default_venv
    from orchestrator.state_dir import state_dir

    if args.ray_venv:
        return Path(args.ray_venv).expanduser()
    return default_venv(state_dir(args.state_dir, "--state-dir"))


def setup(args: argparse.Namespace) -> int:
    """``--ray-setup``: build Ray Serve's environment, unless it is there with these pins."""
    from orchestrator.cli.ray_env import build, is_ready

    env = ray_venv(args)
    if is_ready(env):
        print(f"ray setup: Ray environment up to date: {env}")
        return 0
    build(env, lambda line: print(f"ray setup: {line}", flush=True))  # RayEnvError: a UserError
    return 0


def run_in_ray_env(args: argparse.Namespace) -> int:
    """This interpreter has no Ray: run the same command line with the Ray environment's
    python (it replaces this process, so signals reach the server directly)."""
    from orchestrator.cli.ray_env import ROOT, is_ready, venv_python

    env = ray_venv(args)
    started_as_command = "--ray" in sys.orig_argv  # not a call of main() from a program
    if not is_ready(env) or not started_as_command:
        print(f"creature: error: {RAY_MISSING.format(env=env)}", file=sys.stderr)
        return 2
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    os.environ["PYTHONPATH"] = path  # the replicas import this checkout
    python = str(venv_python(env))
    os.execv(python, [python, *sys.orig_argv[1:]])


def run(args: argparse.Namespace, opts: ServerOptions) -> int:
    try:
        cluster = cluster_options(args)
        cluster.check()
    except ValueError as e:
        print(f"creature: error: {e}", file=sys.stderr)
        return 2
    if opts.static_dir:
        print("creature: error: --static is not served with --ray", file=sys.stderr)
        return 2
    try:
        from track2_voice.model_server.cluster import serve_cluster
    except ImportError:
        return run_in_ray_env(args)

    def announce(url: str) -> None:
        print(f"model server listening (Ray Serve): {url}", flush=True)

    try:
        serve_cluster(opts, cluster, announce)  # until SIGTERM or Ctrl-C
    except ValueError as e:
        print(f"creature: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # Serve: "Deploying application ... failed: <replica traceback>"
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        cause = lines[-1] if len(lines) > 1 else ""
        print(f"creature: error: {lines[0] if lines else e} {cause}".rstrip(), file=sys.stderr)
        return 1
    return 0
