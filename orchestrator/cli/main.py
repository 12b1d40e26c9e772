"""``creature``: one console script, one sub-command per module in ``orchestrator.cli.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import orchestrator.cli.logs as logs
from orchestrator.cli.errors import user_message

# Each module defines ``register(subparsers)``; its parser sets ``func(args) -> int``.
COMMAND_MODULES = [
    "orchestrator.cli.commands.run",
    "orchestrator.cli.commands.demo",
    "orchestrator.cli.commands.serve",
    "orchestrator.cli.commands.checkpoint",
    "orchestrator.cli.commands.scene",
    "orchestrator.cli.commands.config_cmd",
    "orchestrator.cli.commands.intent",
    "orchestrator.cli.commands.calls",
    "orchestrator.cli.commands.bench",
    "orchestrator.cli.commands.report",
    "orchestrator.cli.commands.replay",
    "orchestrator.cli.commands.model_server",
    "orchestrator.cli.commands.cascade",
    "orchestrator.cli.commands.body",
    "orchestrator.cli.commands.planner",
]


class CreatureParser(argparse.ArgumentParser):
    """A bad flag is two lines: the command's usage in one line and what was wrong, exit 2.

    argparse prints the whole wrapped usage (12 lines for ``serve``) before the error, which
    pushes the one line that matters out of sight; ``--help`` still shows everything."""

    def short_usage(self) -> str:
        words = [self.prog, "[options]"]
        for a in self._actions:
            if a.option_strings or a.help == argparse.SUPPRESS:
                continue
            name = a.metavar or a.dest
            words.append(f"[{name} ...]" if a.nargs in ("*", "...") else str(name))
        return f"usage: {' '.join(words)}  (see {self.prog} --help)"

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.short_usage()}\n{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = CreatureParser(
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
        leaf.set_defaults(_parser=leaf)  # a flag it does not know is reported by it
    return parser


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (has ``func``), sub-sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in dict.fromkeys(action.choices.values()):
                yield from _commands(p)
    if parser.get_default("func") is not None:
        yield parser


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a program Ctrl-C stopped
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader went away (``creature intent | head``)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would blame the top-level parser; the sub-command's usage helps
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logs.configure(
        logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        getattr(args, "log_format", None) or "text",
    )
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit as "Exception ignored"
        return code
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so the exit flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("creature: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        line = user_message(e)
        if line is None:
            raise
        print(f"creature: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
