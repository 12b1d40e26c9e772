"""``creature serve``: the face server plus a voice session with the configured backend.

With ``--audio phone`` (the default) the fast loop is paced by a real-time clock and hears the
phone page's mic; its voice plays on the page with the mouth in sync. With ``--audio local`` the
host's sound card is the mic and speaker and phones only show the face.
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

from orchestrator.cli.commands.common import (
    add_backend_options,
    add_config_options,
    config_from_args,
    exit_code,
    positive_int,
)
from orchestrator.cli.commands.face_options import add_face_options, face_overrides, tell
from orchestrator.runtime.face_runtime import face_running
from orchestrator.runtime.telephony_link import telephony_running
from orchestrator.runtime.voice_session import VoiceSession
from orchestrator.state_dir import record_path, state_dir
from track2_voice.audio.devices import ClockSource
from track2_voice.common.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the face and run the creature's voice (a phone can be its ears and voice)",
        description=(
            "Starts the face server (open the printed URL, or scan the QR code, on a phone on "
            "the same network) and a voice session with the configured backend; runs until "
            "Ctrl-C. Tap the face on the phone: its mic becomes the creature's ears and its "
            "speaker the creature's voice, with the mouth in sync (HTTPS with a self-signed "
            "certificate made on first run; the URL carries an access token)."
        ),
    )
    add_config_options(p)
    add_backend_options(p)
    add_face_options(p, skip_flag=False)
    p.add_argument(
        "--audio",
        choices=["phone", "local", "telephony"],
        default="phone",
        help="phone: the page's mic and speaker (default); local: this machine's sound card "
        "(with echo cancellation); telephony: a phone call through the telephone bridge",
    )
    p.add_argument("--no-tls", action="store_true", help="plain HTTP (phone mics need HTTPS)")
    p.add_argument("--input", help="an audio file as the mic instead (turns phone audio off)")
    p.add_argument("--output", help="a WAV file for the creature's voice as well")
    p.add_argument("--record", metavar="EVENTS.jsonl", help="write every event as JSON lines")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--once", action="store_true", help="exit when the scene ends (replay)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    extra: dict = {"face.enabled": True, "voice.loop.realtime": True, **face_overrides(args)}
    if args.audio == "local":
        extra["audio.input"] = "local"
        extra["audio.output"] = "local"
    if args.input:
        extra["audio.input"] = args.input
    if args.output:
        extra["audio.output"] = args.output
    if args.audio == "telephony" and args.input:
        raise ConfigError("--audio telephony: the call is the mic; leave out --input")
    cfg = config_from_args(args, extra)
    state = state_dir(cfg.state_dir)
    record = record_path(state, args.record, "serve") if args.record else None
    phone_stats: dict = {}
    call_stats: dict = {}
    with ExitStack() as stack:
        # with --audio local and no sound card, this raises the clear error of check_sound_device
        session = stack.enter_context(VoiceSession(cfg, record, state=state))
        clock = session.source if isinstance(session.source, ClockSource) else None
        telephony = args.audio == "telephony" and clock is not None
        phone_source = None if telephony else clock  # one pair of ears: the call's, or the page's
        session.start_slow()
        https = False if args.no_tls else None
        rt = stack.enter_context(face_running(session, phone_source, https))
        tell(rt.notices if rt is not None else [])
        tel = stack.enter_context(telephony_running(session, clock)) if telephony else None
        tell(tel.notices if tel is not None else [])
        session.start_backend()
        stats = session.run(max_frames=args.max_frames, stop_when_finished=args.once)
        if rt is not None:
            phone_stats = rt.phone.stats()
        if tel is not None:
            call_stats = tel.bridge.stats()
    extra = {"telephony": call_stats} if telephony else {}
    print(json.dumps({**stats.summary(), "phone": phone_stats, **extra}), flush=True)
    return exit_code(session.stop_signal, stats.errors)
