"""Command-line flags as data: one row per flag, added to a parser in one loop.

A row that names a ``field`` of an options dataclass takes its default from that field (a
dotted path reaches into nested options) and ``values`` reads the parsed flags back as
``{field: value}``, so a flag's name, default and destination are each written once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Flag:
    """``help`` may show the field's default as ``{default}`` (format specs allowed:
    ``{default:g}``). ``preset=False``: the parser's default stays None (the flag was not
    given), while the help still shows the field's default."""

    name: str
    help: str | None = None
    field: str | None = None
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # store_true
    repeat: bool = False  # append: each use adds a value (default: an empty list)
    preset: bool = True

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")


def add_flags(
    p: argparse.ArgumentParser | argparse._ArgumentGroup, flags: Iterable[Flag], defaults: object
) -> None:
    """Add ``flags`` to ``p`` in order, defaults read from the ``defaults`` options object."""
    for f in flags:
        default = attrgetter(f.field)(defaults) if f.field else None
        kw: dict[str, Any] = {}
        if f.help is not None:
            kw["help"] = f.help.format(default=default)
        if f.switch:
            kw["action"] = "store_true"
        elif f.repeat:
            kw.update(action="append", default=[])  # a fresh list per parser
        elif f.preset and default is not None:
            kw["default"] = default
        for key in ("type", "metavar", "choices"):
            if getattr(f, key) is not None:
                kw[key] = getattr(f, key)
        p.add_argument(f.name, **kw)


def flag_error(e: ValidationError, flags: Iterable[Flag]) -> str:
    """A settings model's complaint about a value a flag gave, as one line naming the flag."""
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    name = next((f.name for f in flags if f.field and f.field.endswith(field)), field)
    return f"{name}: {err['msg']} (got {err.get('input')!r})"


def values(args: argparse.Namespace, flags: Iterable[Flag]) -> dict[str, Any]:
    """``{field: parsed value}`` for the ``flags`` that name a field."""
    return {f.field: getattr(args, f.dest) for f in flags if f.field}
