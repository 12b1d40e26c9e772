"""``creature body BODY``: the robot side of the creature, one sub-command per kind of body.

Each body runs in an environment of its own under the state directory (``--setup`` builds it)
and talks to the creature only over the robot channel (docs/bodies.md).
"""

from __future__ import annotations

import argparse

from orchestrator.cli.commands import body_reachy_mini, body_ros2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "body",
        help="run a body for the creature (a Reachy Mini, real or simulated; a ROS 2 robot)",
        description=(
            "Runs the robot side of the creature: it connects to the creature's robot channel, "
            "declares what it can do and performs the calls. Each body runs in an environment "
            "of its own under the state directory (built once by --setup)."
        ),
    )
    kinds = p.add_subparsers(dest="body", metavar="BODY", required=True)
    body_reachy_mini.register_kind(kinds)
    body_ros2.register_kind(kinds)
