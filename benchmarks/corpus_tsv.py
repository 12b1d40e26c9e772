"""The benchmark corpora's tab-separated files: one file per part, one example per row.

Blank lines and ``#`` comments are skipped; a row with the wrong number of columns, or a
slot that is not ``slot=value``, stops the run with one line naming the file and the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path


def rows(
    directory: Path, parts: Iterable[str], columns: int
) -> Iterator[tuple[str, str, int, list[str]]]:
    """(part, "file:line", line number, cells) for each row of ``directory/{part}.tsv``, part by
    part."""
    for part in parts:
        path = directory / f"{part}.tsv"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != columns:
                raise SystemExit(f"{path}:{n}: expected {columns} tab-separated columns")
            yield part, f"{path}:{n}", n, cols


def slots(items: Iterable[str], where: str) -> list[tuple[str, str]]:
    """``slot=value`` items as (slot, value) pairs, stripped."""
    out = []
    for item in items:
        if "=" not in item:
            raise SystemExit(f"{where}: expected slot=value, got {item!r}")
        k, v = item.split("=", 1)
        out.append((k.strip(), v.strip()))
    return out
