"""``creature serve``: the creature with its face on the LAN; a phone is its ears and voice.

With ``--audio phone`` (the default) the fast loop is paced by a real-time clock and hears the
phone's mic; its voice goes back to the page. With ``--audio local`` the host's sound card is the
mic and speaker and phones only show the face.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from orchestrator.commands.common import add_backend_options, add_config_options, config_from_args
from orchestrator.phone_link import PhoneLink, build_server, prepare_web
from orchestrator.voice_session import VoiceSession

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the creature and serve its face (and, from a phone, its ears and voice)",
        description=(
            "Runs the creature in real time and serves its face page on the LAN over HTTPS. "
            "Open the printed URL (or scan the QR code) on a phone and tap the face: the phone's "
            "mic becomes the creature's ears and its speaker the creature's voice."
        ),
    )
    add_config_options(p)
    add_backend_options(p)
    p.add_argument(
        "--audio",
        choices=["phone", "local"],
        default="phone",
        help="phone: the page's mic and speaker (default); local: this machine's sound card",
    )
    p.add_argument("--host", help="interface to listen on (face.host)")
    p.add_argument("--port", type=int, help="TCP port (face.port; 0 = any free port)")
    p.add_argument("--no-tls", action="store_true", help="plain HTTP (phone mics need HTTPS)")
    p.add_argument("--once", action="store_true", help="exit when the scene ends (replay)")
    p.add_argument("--max-frames", type=int, help="stop after this many 80 ms frames")
    p.add_argument("--record", metavar="EVENTS.jsonl", help="record the session as JSON lines")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    extra: dict = {"voice.loop.realtime": True}
    if args.audio == "local":
        extra["audio.input"] = "local"
        extra["audio.output"] = "local"
    else:
        extra["audio.input"] = None
    if args.host:
        extra["face.host"] = args.host
    if args.port is not None:
        extra["face.port"] = args.port
    cfg = config_from_args(args, extra)
    from affect.presets import load_presets

    # the sound card is checked first: with --audio local and no device this is the error
    session = VoiceSession(cfg, Path(args.record) if args.record else None)
    phone_source = session.source if args.audio == "phone" else None
    setup = prepare_web(cfg.face, cfg.phone, https=False if args.no_tls else None)
    server, phone = build_server(
        setup, cfg.phone, phone_source, load_presets(), cfg.voice.lipsync.model_dump()
    )
    link = PhoneLink(session.hub, phone, face=server)
    try:
        server.start_in_thread()
        url = setup.url.format(port=server.port)
        print(f"creature: face at {url}", flush=True)
        if args.audio == "local":
            print("creature: audio on this machine's sound card; phones show the face", flush=True)
        if cfg.phone.qr:
            from face.qr import qr_text

            print(qr_text(url), flush=True)
        if setup.face.ssl_certfile and not cfg.face.ssl_certfile:
            print(
                "creature: the certificate is self-signed: the phone asks you to accept it once",
                flush=True,
            )
        session.start_backend()
        stats = session.run(max_frames=args.max_frames, stop_when_finished=args.once)
    finally:
        link.close()
        session.close()
        server.stop()
    print(json.dumps({**stats.summary(), "phone": phone.stats()}), file=sys.stdout, flush=True)
    return 0
