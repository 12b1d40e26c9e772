"""``creature config``: print the merged, validated configuration."""

from __future__ import annotations

import argparse

from orchestrator.commands.common import add_config_options, config_from_args
from orchestrator.config import dump_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="print the effective configuration (defaults < --config < --set)",
    )
    add_config_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    print(dump_config(config_from_args(args)), end="")
    return 0
