"""``creature report EVENTS.jsonl``: the session as one self-contained HTML file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="draw a session record as one self-contained HTML page",
        description=(
            "Reads a session record (--record of demo, run or serve) and writes one HTML file "
            "with everything inside it (inline SVG plots, no network): a timeline of the "
            "user's speech, the creature's words, mouth and RMS, state and emotion, intents "
            "and tool-call lifecycles; histograms of step time and loop overhead against the "
            "80 ms budget; deadline misses and drops; and per turn the time from the end of "
            "the user's speech to the creature's first audio. Needs matplotlib "
            "(pip install 'creature[report]')."
        ),
    )
    p.add_argument("record", metavar="EVENTS.jsonl", help="a session record")
    p.add_argument(
        "-o", "--output", metavar="report.html", help="where to write (default: EVENTS.html)"
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures and tables as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from orchestrator.analysis.plots import PlottingUnavailable
    from orchestrator.analysis.record_file import RecordReadError
    from orchestrator.analysis.report import write_report

    out = Path(args.output) if args.output else Path(args.record).with_suffix(".html")
    if not out.parent.is_dir():
        print(f"creature: -o {out}: directory {out.parent} does not exist", file=sys.stderr)
        return 2
    try:
        s = write_report(args.record, out)
    except (RecordReadError, PlottingUnavailable) as e:
        print(f"creature: {e}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(s.to_dict(), indent=2, default=str) + "\n")
    print(json.dumps({"report": str(out), **s.figures()}))
    return 0
