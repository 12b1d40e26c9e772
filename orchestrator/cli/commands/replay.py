"""``creature replay EVENTS.jsonl``: the face (and the brain) driven again from a record."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli.commands.common import (
    add_config_options,
    config_from_args,
    exit_code,
)
from orchestrator.cli.commands.face_options import add_face_options, face_overrides, tell
from orchestrator.cli.terminal_view import TerminalView
from orchestrator.runtime.face_runtime import FaceRuntime, face_running
from orchestrator.runtime.stop_signals import on_stop_signals

if TYPE_CHECKING:
    from orchestrator.runtime.replay import ReplaySession

FACE_POLL_S = 0.1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="drive the face and the brain again from a session record, with no model",
        description=(
            "Publishes a record's voice events (frames with mouth, loudness and text; user "
            "speech; connection) at their recorded pace, or --speed times faster, to a fresh "
            "brain and the face: intents, tool calls, state, affect and every face state are "
            "decided again by this checkout's rules, so a face or an intent pattern can be "
            "tuned without a model. The robot channel stays off (nothing moves twice): the "
            "recorded robot's answers are played back instead; --robot opens the real channel. "
            "Waits for a face to connect before it starts (--no-wait to start at once). "
            "Prints what the replay decided next to what the record says."
        ),
    )
    add_config_options(p)
    add_face_options(p)
    p.add_argument("record", metavar="EVENTS.jsonl", help="a session record")
    p.add_argument("--speed", type=float, default=1.0, help="times real time (default 1.0)")
    p.add_argument(
        "--from", dest="start", type=float, default=0.0, metavar="S",
        help="start this many seconds into the record (as on the report's time axis)",
    )  # fmt: skip
    p.add_argument("--to", dest="end", type=float, metavar="S", help="stop at this second")
    p.add_argument(
        "--robot",
        action="store_true",
        help="open the real robot channel (and webhook): calls go to real robots again",
    )
    p.add_argument("--no-wait", action="store_true", help="start without waiting for a face")
    p.add_argument("--record-to", metavar="EVENTS.jsonl", help="record the replayed session")
    p.set_defaults(func=main)


def _bad(flag: str, what: str) -> int:
    print(f"creature: {flag}: {what}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    from orchestrator.analysis.record_file import RecordReadError, read_record

    if (bad := _check_flags(args)) is not None:
        return bad
    cfg = config_from_args(args, face_overrides(args))
    try:
        rec = read_record(args.record)
        session = _session(args, cfg, rec)
    except (RecordReadError, ValueError) as e:
        print(f"creature: {e}", file=sys.stderr)
        return 2
    stopped_by: list[int] = []
    with ExitStack() as stack:
        stack.callback(session.close)
        stack.callback(TerminalView(session.bus, session.io).close)
        # Ctrl-C or SIGTERM: stop cleanly, say which (the exit code is 128 + it)
        stack.enter_context(on_stop_signals(lambda signum: _stop(session, stopped_by, signum)))
        session.start_slow()
        if args.robot and session.slow.robot_url:
            print(f"robot channel: {session.slow.robot_url} (calls go to real robots)")
        rt = stack.enter_context(face_running(session))
        tell(rt.notices if rt is not None else [])
        if rt is not None and not args.no_wait:
            _wait_for_a_face(session, rt)
        if not session.stopped:
            session.play()
            session.settle(cfg.slow_loop.finish_wait_s)
    print(json.dumps(session.report.summary(rec, session.part)))
    return exit_code(stopped_by[0] if stopped_by else None)


def _check_flags(args: argparse.Namespace) -> int | None:
    """None when the flags make sense; else the exit code, with the flag named."""
    if not args.speed > 0:
        return _bad("--speed", f"expected a number above 0 (got {args.speed})")
    if args.start < 0:
        return _bad("--from", f"expected seconds >= 0 (got {args.start})")
    if args.end is not None and args.end <= args.start:
        return _bad("--to", f"expected a second after --from {args.start:g} (got {args.end})")
    return None


def _session(args: argparse.Namespace, cfg, rec) -> ReplaySession:
    from orchestrator.runtime.replay import ReplaySession, Slice

    return ReplaySession(
        cfg,
        rec,
        args.speed,
        Slice(args.start, args.end),
        robot=args.robot,
        record_to=Path(args.record_to) if args.record_to else None,
    )


def _stop(session: ReplaySession, stopped_by: list[int], signum: int) -> None:
    stopped_by.append(signum)
    session.stop()


def _wait_for_a_face(session: ReplaySession, rt: FaceRuntime) -> None:
    print("replay: waiting for a face to connect (--no-wait to start now)", flush=True)
    while not session.stopped and not session.io.run_sync(lambda: rt.server.stats()["clients"]):
        time.sleep(FACE_POLL_S)
