"""``creature run``: push audio through the fast loop; write the creature's voice and a log."""

from __future__ import annotations

import argparse
import json
import logging

from orchestrator.cli.commands.common import (
    add_backend_options,
    add_config_options,
    config_from_args,
    exit_code,
    positive_int,
)
from orchestrator.runtime.voice_session import VoiceSession
from orchestrator.state_dir import record_path, state_dir

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the fast loop on a file or the sound card",
        description=(
            "Push audio through the fast loop (as fast as the model allows, or --realtime) and "
            "write the creature's audio and a JSONL record: one line per frame (index, t, mouth, "
            "text, model_ms, overhead_ms, missed) plus events (rollover, user speech, errors). "
            "With --mode interpret the brain follows the translation too, so the record gets "
            "its passages and their timing (docs/interpreter.md)."
        ),
    )
    add_config_options(p)
    add_backend_options(p)
    p.add_argument("--input", help="input audio file (any rate; resampled to 24 kHz) or 'local'")
    p.add_argument("--output", help="WAV file for the creature's voice, or 'local'")
    p.add_argument("--record", metavar="EVENTS.jsonl", help="write every event as JSON lines")
    p.add_argument("--realtime", action="store_true", help="pace file input at 80 ms per frame")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    extra = {}
    if args.input:
        extra["audio.input"] = args.input
    if args.output:
        extra["audio.output"] = args.output
    cfg = config_from_args(args, extra)
    if cfg.audio.input is None:
        raise SystemExit("creature run: give --input FILE (or 'local' for the sound card)")
    state = state_dir(cfg.state_dir)
    record = record_path(state, args.record, "run") if args.record else None
    with VoiceSession(cfg, record, state=state) as session:
        if cfg.interpreting is not None:  # the passages and their timing, in the record
            session.start_slow()
        session.start_backend()
        stats = session.run(max_frames=args.max_frames)
    summary = stats.summary()
    print(json.dumps(summary))
    return exit_code(session.stop_signal, stats.errors)
