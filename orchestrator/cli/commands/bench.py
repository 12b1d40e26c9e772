"""``creature bench ttfat``: time to first audio against any Moshi-protocol endpoint."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

DEFAULT_UTTERANCES = Path(__file__).resolve().parents[3] / "benchmarks" / "utterances"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency against a running voice server")
    bsub = p.add_subparsers(dest="bench_cmd", required=True, metavar="WHAT")
    t = bsub.add_parser(
        "ttfat",
        help="time to first audio after each spoken utterance",
        description=(
            "Plays spoken utterances to a Moshi-protocol endpoint (/api/chat: moshi.server, "
            "the Rust server, or a cascade agent speaking the same protocol) at real time, one "
            "session each, and measures the time from the end of speech to the first returned "
            "audio above a silence threshold. Prints p50/p90 and writes JSON."
        ),
    )
    t.add_argument("--url", required=True, help="ws[s]://HOST:PORT/api/chat")
    t.add_argument(
        "--input",
        nargs="+",
        default=[str(DEFAULT_UTTERANCES)],
        help="audio files or directories of them (default: the shipped benchmarks/utterances)",
    )
    t.add_argument("--json", metavar="FILE", default="ttfat.json", help="where to write results")
    t.add_argument("--threshold-db", type=float, default=-45.0, help="returned audio above this")
    t.add_argument("--speech-db", type=float, default=-40.0, help="input speech above this")
    t.add_argument("--lead-in", type=float, default=0.5, help="seconds of silence before each")
    t.add_argument("--max-wait", type=float, default=4.0, help="seconds to wait for an answer")
    t.add_argument("--insecure", action="store_true", help="accept a self-signed wss:// cert")
    t.set_defaults(func=main_ttfat)


def main_ttfat(args: argparse.Namespace) -> int:
    from track2_voice.backends.moshi_protocol import RemoteError
    from track2_voice.devtools.ttfat import TtfatSettings, run_ttfat, write_report
    from track2_voice.devtools.turn_clock import find_utterances

    files = find_utterances(args.input)
    s = TtfatSettings(
        threshold_db=args.threshold_db,
        speech_db=args.speech_db,
        lead_in_s=args.lead_in,
        max_wait_s=args.max_wait,
        insecure_tls=args.insecure,
    )

    def show(r) -> None:
        ttfat = f"{r.ttfat_ms:7.1f} ms" if r.ttfat_ms is not None else "  no answer"
        print(f"{r.name:28s} end of speech {r.speech_end_s:5.2f} s  ttfat {ttfat}", flush=True)

    try:
        report = asyncio.run(run_ttfat(args.url, files, s, on_result=show))
    except RemoteError as e:
        raise SystemExit(f"creature bench ttfat: {e}") from e
    write_report(report, args.json)
    print(json.dumps(report.summary()))
    print(f"wrote {args.json}")
    return 0
