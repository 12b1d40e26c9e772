"""Every benchmark in two checkouts, side by side: did a change make any figure worse?

A refactor promises that no benchmark gets worse. One machine's load moves absolute figures
more than most changes do, so the two checkouts are measured in the same run, alternating
(A, B, A, B ...), each benchmark in its ``--short`` mode (the same work on less of it), and
every number of each JSON result is compared by the median of its rounds: the ratio B/A.

    python benchmarks/compare.py --before /path/to/old/checkout --after . --rounds 3

Which direction is better depends on the figure (a latency down, a recall up), so the table
shows the ratio and the figures that moved most; the JSON keeps every figure of every round.
A benchmark that cannot run in one checkout (a helper environment missing) is listed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.short_mode import NOT_A_BENCHMARK  # noqa: E402

HERE = Path(__file__).resolve().parent
# the JSON a script writes when it is not named after the script
RESULT_NAME = {"cascade_vs_creature.py": "cascade.json", "text_lead.py": "text_lead_replay.json"}


def figures(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a JSON document by its path (``a.b[2].c``); booleans left out."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            out |= figures(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out |= figures(v, f"{prefix}[{i}]")
    return out


def run_once(tree: Path, script: str, timeout_s: float) -> dict[str, float] | str:
    """One ``--short`` run of ``script`` in ``tree``: its figures, or why it did not run."""
    tmp = Path(tempfile.mkdtemp(prefix="cmp-", dir="/tmp"))
    env = dict(os.environ, PYTHONPATH=str(tree), TMPDIR=str(tmp), OMP_NUM_THREADS="1")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        r = subprocess.run(
            [sys.executable, str(tree / "benchmarks" / script), "--short"],
            cwd=tree, env=env, capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
        written = tmp / "creature-bench-short" / RESULT_NAME.get(script, script[:-3] + ".json")
        if r.returncode != 0 or not written.is_file():
            return f"exit {r.returncode}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
        return figures(json.loads(written.read_text()))
    except subprocess.TimeoutExpired:
        return f"ran past {timeout_s:.0f} s"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compare(before: list[dict[str, float]], after: list[dict[str, float]]) -> dict[str, Any]:
    """Per figure both sides' medians and the ratio after/before (None where before is 0)."""
    out = {}
    for key in sorted(set().union(*before) & set().union(*after)):
        a = statistics.median(r[key] for r in before if key in r)
        b = statistics.median(r[key] for r in after if key in r)
        out[key] = {"before": a, "after": b, "ratio": (b / a) if a else None}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout measured first")
    ap.add_argument("--after", type=Path, default=HERE.parent, help="checkout measured second")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each side (alternating)")
    ap.add_argument("--only", nargs="*", help="these scripts only (e.g. fast_loop.py)")
    ap.add_argument("--timeout-s", type=float, default=480.0, help="one run's limit")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "compare.json")
    args = ap.parse_args(argv)
    scripts = sorted(
        p.name for p in (args.after / "benchmarks").glob("*.py") if p.name not in NOT_A_BENCHMARK
    )
    if args.only:
        scripts = [s for s in scripts if s in args.only]
    report: dict[str, Any] = {"load_before": os.getloadavg(), "rounds": args.rounds}
    for script in scripts:
        started = time.monotonic()
        runs: dict[str, list] = {"before": [], "after": []}
        for _ in range(args.rounds):
            for side, tree in (("before", args.before), ("after", args.after)):
                runs[side].append(run_once(tree.resolve(), script, args.timeout_s))
        failed = {s: r for s, rs in runs.items() for r in rs if isinstance(r, str)}
        if failed:
            report[script] = {"not_run": failed}
            print(f"{script}: not run: {failed}", flush=True)
            continue
        table = compare(runs["before"], runs["after"])
        report[script] = {"figures": table, "seconds": time.monotonic() - started}
        moved = sorted(
            (k for k, v in table.items() if v["ratio"] is not None),
            key=lambda k: -abs(table[k]["ratio"] - 1.0),
        )[:5]
        print(f"{script}: {len(table)} figures; moved most:", flush=True)
        for k in moved:
            v = table[k]
            print(f"  {k}: {v['before']:.4g} -> {v['after']:.4g} (x{v['ratio']:.3f})", flush=True)
    report["load_after"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"load average {report['load_before']} -> {report['load_after']}; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
