"""``creature config``: print the merged, validated configuration."""

from __future__ import annotations

import argparse

from orchestrator.cli.commands.common import add_config_options, config_from_args
from orchestrator.config import dump_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="print the effective configuration (defaults < --config < --set)",
    )
    add_config_options(p)
    p.add_argument("--docs", action="store_true", help="print every key as a Markdown table")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.docs:
        from orchestrator.cli.config_docs import render

        print(render(), end="")
        return 0
    print(dump_config(config_from_args(args)), end="")
    return 0
