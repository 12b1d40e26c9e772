"""``--short``: every benchmark also runs in seconds, so that none can rot unseen.

A benchmark is run by hand, now and then; a change elsewhere (a new rate limit, a renamed
function) can break it without anyone noticing until the figures are wanted.
``tests/test_benchmarks_smoke.py`` runs each script with ``--short`` in CI. A short run
does the same work on less of it (fewer frames, rounds, clients...) and prints its figures
as usual, but they are not judged: the exit code says only that it ran, and its JSON goes to
a temporary file (``benchmarks/results/`` keeps the real runs) unless an output path is given.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

# the modules in benchmarks/ that are not benchmarks (each of the others runs with --short)
NOT_A_BENCHMARK = frozenset(
    {"short_mode.py", "compare.py", "corpus_tsv.py", "spoken_frames.py", "__init__.py"}
)

HELP = (
    "a run of seconds that checks the benchmark still works (figures printed, not judged; "
    "JSON to a temporary file unless the output path is given)"
)


def short_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "creature-bench-short"
    d.mkdir(parents=True, exist_ok=True)
    return d


def parse(
    ap: argparse.ArgumentParser,
    argv: list[str] | None = None,
    out: str | None = None,
    **short: Any,
) -> argparse.Namespace:
    """``ap.parse_args`` plus ``--short``: with it, each ``short`` value replaces its
    option's default (an option given on the command line is kept), and the output option
    ``out`` (the dest of ``--json``/``--out``), if left at its default, moves to a
    temporary directory."""
    ap.add_argument("--short", action="store_true", help=HELP)
    args = ap.parse_args(argv)
    if not args.short:
        return args
    for dest, value in short.items():
        if getattr(args, dest) == ap.get_default(dest):
            setattr(args, dest, value)
    if out is not None and getattr(args, out) == ap.get_default(out):
        default = Path(str(ap.get_default(out)))
        moved = short_dir() / default.name
        setattr(args, out, moved if isinstance(ap.get_default(out), Path) else str(moved))
    return args


def judged(args: argparse.Namespace, code: int) -> int:
    """The exit code: a full run's own; a short run's figures are not judged (0)."""
    return 0 if getattr(args, "short", False) else code


def machine_load(load: tuple[float, float, float]) -> dict[str, Any]:
    """The machine's load when the run started (``os.getloadavg()``) and its CPUs, for the
    figures: a ratio measured on a loaded machine says so."""
    return {"load_avg_1_5_15": [round(x, 2) for x in load], "cpus": os.cpu_count()}


def write_figures(figures: dict[str, Any], path: str | Path) -> None:
    """Print the figures and write them as JSON to ``path`` (its folder made if needed)."""
    text = json.dumps(figures, indent=2)
    print(text)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text + "\n")
