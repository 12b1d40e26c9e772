"""``creature serve``: the face server plus a voice session with the configured backend."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestrator.commands.common import add_backend_options, add_config_options, config_from_args
from orchestrator.face_runtime import add_face_options, face_overrides, face_running
from orchestrator.voice_session import VoiceSession


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the face and run the creature's voice",
        description=(
            "Starts the face server (open the printed URL on a phone on the same network) and a "
            "voice session with the configured backend; runs until Ctrl-C. The face shows the "
            "creature's mouth, whether it speaks, and whether the user is speaking."
        ),
    )
    add_config_options(p)
    add_backend_options(p)
    add_face_options(p, skip_flag=False)
    p.add_argument("--input", help="'local' for the sound card's microphone, or an audio file")
    p.add_argument("--output", help="'local' for the speaker, or a WAV file")
    p.add_argument("--record", metavar="EVENTS.jsonl", help="write every event as JSON lines")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    extra: dict = {"face.enabled": True, **face_overrides(args)}
    if args.input:
        extra["audio.input"] = args.input
        extra["voice.loop.realtime"] = True
    if args.output:
        extra["audio.output"] = args.output
    cfg = config_from_args(args, extra)
    session = VoiceSession(cfg, Path(args.record) if args.record else None)
    try:
        with face_running(cfg, session.hub):
            session.start_backend()
            stats = session.run(max_frames=args.max_frames)
    finally:
        session.close()
    print(json.dumps(stats.summary()))
    return 0 if stats.errors == 0 else 1
