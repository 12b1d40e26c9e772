"""How the creature logs: for people (the default, unchanged) or one JSON object per line.

Why JSON as an option: a log shipper (journald, Loki, Vector) reads fields instead of parsing
text; ``python-json-logger`` writes the fields every record has (``timestamp``, ``level``,
``logger``, ``message``) plus anything passed in ``extra`` and the traceback as ``exc_info``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

from track2_voice.redact import redact_text

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TEXT_DATEFMT = "%H:%M:%S"


def add_log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--log-format",
        choices=FORMATS,
        help="text (default, for people) or json (one object per line, for machines; log.format)",
    )


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            timestamp=True,
            rename_fields={"levelname": "level", "name": "logger"},
        )
    return logging.Formatter(TEXT_FORMAT, datefmt=TEXT_DATEFMT)


class RedactCredentials(logging.Filter):
    """No log line shows a credential in a URL's query (``?token=***``): with ``-v`` the
    WebSocket library logs every request line it sends, the model server's token included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class LiveLineHandler(logging.StreamHandler):
    """A stderr handler that first clears a line being redrawn on the terminal (the terminal
    view's mouth meter, written with ``\r`` and no newline): without it a log record starts
    at the meter's end, e.g. ``[####    ] hello th12:00:01 INFO ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        clear = _live_line
        if clear is not None:
            clear()
        super().emit(record)


_live_line: Callable[[], None] | None = None


def set_live_line(clear: Callable[[], None] | None) -> None:
    """Register (or, with None, forget) the function that clears the live terminal line."""
    global _live_line
    _live_line = clear


def configure(level: int | str, fmt: str = "text") -> None:
    """One handler on stderr for the root logger (replacing any earlier one of ours)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_creature", False):
            root.removeHandler(h)
    handler = LiveLineHandler(sys.stderr)
    handler._creature = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RedactCredentials())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
