"""``creature``: one console script, one sub-command per module in ``orchestrator.cli.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterator

from orchestrator.cli import logs
from orchestrator.config import ConfigError

# Each module defines ``register(subparsers)``; its parser sets ``func(args) -> int``.
COMMAND_MODULES = [
    "orchestrator.cli.commands.run",
    "orchestrator.cli.commands.demo",
    "orchestrator.cli.commands.serve",
    "orchestrator.cli.commands.checkpoint",
    "orchestrator.cli.commands.scene",
    "orchestrator.cli.commands.config_cmd",
    "orchestrator.cli.commands.intent",
    "orchestrator.cli.commands.bench",
    "orchestrator.cli.commands.report",
    "orchestrator.cli.commands.replay",
    "orchestrator.cli.commands.model_server",
    "orchestrator.cli.commands.cascade",
    "orchestrator.cli.commands.body",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creature",
        description=(
            "An embodied creature: Moshi full-duplex voice (fast loop), intents and robot tool "
            "calls (slow loop), and an expressive face for a phone."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    for leaf in _commands(parser):  # -v and --log-format on every command
        if "--log-format" not in leaf._option_string_actions:
            logs.add_log_options(leaf)
    return parser


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (has ``func``), sub-sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in dict.fromkeys(action.choices.values()):
                yield from _commands(p)
    if parser.get_default("func") is not None:
        yield parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(
        logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        getattr(args, "log_format", None) or "text",
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"creature: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("creature: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from orchestrator.cli.errors import USER_ERRORS

        if isinstance(e, USER_ERRORS):
            print(f"creature: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
