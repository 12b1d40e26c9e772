"""The Reachy Mini body program (run in its own environment by ``creature body reachy-mini``):
connect to the robot's daemon, then serve the creature's robot channel and expression stream.

    python -m orchestrator.bodies.reachy_mini --url ws://127.0.0.1:8766/robot --daemon-host H

The robot token comes from ``$CREATURE_ROBOT_TOKEN`` (never the command line: other users can
read it there). ``--stats FILE`` writes the CPU per control tick and the expression rate on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

from orchestrator.bodies.link import Link

log = logging.getLogger("body.reachy_mini")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orchestrator.bodies.reachy_mini")
    p.add_argument(
        "--url", required=True, help="the creature's robot channel, ws://HOST:PORT/robot"
    )
    p.add_argument("--daemon-host", default="127.0.0.1", help="the Reachy Mini daemon's host")
    p.add_argument("--daemon-port", type=int, default=8000)
    p.add_argument("--name", default="reachy-mini", help="the robot name the creature sees")
    p.add_argument("--db", default=":memory:", help="SQLite file of the call ids taken on")
    p.add_argument("--stats", metavar="FILE", help="write CPU per tick and expression rate here")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s body: %(message)s",
        datefmt="%H:%M:%S",
    )
    token = os.environ.get("CREATURE_ROBOT_TOKEN")
    if not token:
        print("reachy-mini body: $CREATURE_ROBOT_TOKEN is not set", file=sys.stderr)
        return 2
    from orchestrator.bodies.reachy_mini.body import ReachyBody

    robot = connect(args.daemon_host, args.daemon_port)
    if robot is None:
        return 1
    robot.enable_motors()
    body = ReachyBody(robot).start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    link = None
    try:
        link = Link(args.url, token, body, args.name, args.db)
        asyncio.run(serve(link, args.url, args.name))
    finally:
        body.stop()
        disconnect(robot)
        stats = {**body.stats.summary(), **run_stats(link, cpu0, wall0)}
        log.info("stats: %s", json.dumps(stats))
        if args.stats:
            with open(args.stats, "w", encoding="utf-8") as f:
                json.dump(stats, f)
    return 0


def connect(host: str, port: int):
    """The SDK's client of the daemon at ``host:port``; None (said on stderr) if none answers."""
    from reachy_mini import ReachyMini

    local = host in ("127.0.0.1", "localhost", "::1")
    t0 = time.monotonic()
    try:
        robot = ReachyMini(
            host=host,
            port=port,
            connection_mode="localhost_only" if local else "network",
            media_backend="no_media",
            log_level="WARNING",
        )
    except Exception as e:
        print(f"reachy-mini body: no daemon at {host}:{port} ({e})", file=sys.stderr)
        return None
    log.info("connected to the daemon at %s:%d in %.1f s", host, port, time.monotonic() - t0)
    return robot


async def serve(link: Link, url: str, name: str) -> None:
    """Serve the creature until Ctrl-C or SIGTERM (or the link ends)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, link.stop)
    log.info("serving the creature at %s as %r", url, name)
    await link.run()


def disconnect(robot) -> None:
    try:  # the SDK's client threads would keep the process alive otherwise
        robot.media_manager.close()
        robot.client.disconnect()
    except Exception as e:
        log.warning("closing the daemon connection: %s", e)


def run_stats(link: Link | None, cpu0: float, wall0: float) -> dict:
    """The process's CPU share over the run and the expressions the link passed on."""
    wall = time.monotonic() - wall0
    return {
        "process_cpu_percent": round(100 * (time.process_time() - cpu0) / max(wall, 1e-9), 2),
        "wall_s": round(wall, 2),
        "expressions": link.stats.expressions if link else 0,
        "expression_hz": round(link.stats.expression_hz(), 2) if link else 0.0,
    }


if __name__ == "__main__":
    sys.exit(main())
