"""``creature demo``: the shipped scene, end to end, with no model weights needed."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack

from orchestrator.cli.commands.common import (
    add_backend_options,
    add_config_options,
    config_from_args,
    exit_code,
)
from orchestrator.cli.commands.face_options import add_face_options, face_overrides, tell
from orchestrator.cli.terminal_view import TerminalView
from orchestrator.runtime.face_runtime import face_running
from orchestrator.runtime.voice_session import VoiceSession
from orchestrator.state_dir import record_path, state_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the creature on the shipped replay scene",
        description=(
            "Runs the creature in real time on the shipped scene (replay backend): it greets you "
            "and agrees to pick up the red cup, which becomes a do_physical_task call on the "
            "robot channel. Add --robot to run the example (fake) robot in-process, or run "
            "examples/robot_client.py in a second terminal. Speak to it with --input local. "
            "The session is recorded as JSON lines."
        ),
    )
    add_config_options(p)
    add_backend_options(p)
    add_face_options(p)
    p.add_argument("--once", action="store_true", help="exit 0 when the scene ends")
    p.add_argument("--input", help="'local' for the sound card's microphone, or an audio file")
    p.add_argument("--output", help="'local' for the speaker, or a WAV file")
    p.add_argument(
        "--record",
        metavar="EVENTS.jsonl",
        help="session record (default: a new STATE_DIR/records/demo-YYYYmmdd-HHMMSS.jsonl; "
        "an existing file is never overwritten)",
    )
    p.add_argument(
        "--robot",
        action="store_true",
        help="run examples/robot_client.py (a fake robot) in-process on the robot channel",
    )
    p.add_argument(
        "--robot-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds the in-process robot takes per task (default 1.0)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    extra: dict = {}
    if args.input:
        extra["audio.input"] = args.input
        extra["voice.loop.realtime"] = True
    if args.output:
        extra["audio.output"] = args.output
    extra.update(face_overrides(args))
    cfg = config_from_args(args, extra)
    state = state_dir(cfg.state_dir)
    record = record_path(state, args.record, "demo")
    settled = None
    with ExitStack() as stack:
        session = stack.enter_context(VoiceSession(cfg, record, state=state))
        stack.callback(TerminalView(session.bus, session.io).close)
        session.start_slow()
        slow = session.slow
        if args.robot and (slow is None or not slow.robot_url):
            # asked for a robot that cannot run: saying so beats a scene that "passes"
            print(
                "creature: error: --robot: the robot channel is not listening "
                "(slow_loop.robot; see the error above), so no robot can run",
                file=sys.stderr,
            )
            return 1
        if args.robot:
            from orchestrator.runtime.robot_runner import InProcessRobot

            robot = InProcessRobot(slow.robot_url, slow.token, args.robot_delay)
            stack.callback(robot.start().stop)
        elif slow is not None and slow.robot_url:
            print(slow.robot_hint(), flush=True)
        rt = stack.enter_context(face_running(session))
        tell(rt.notices if rt is not None else [])
        session.start_backend()
        stats = session.run(stop_when_finished=args.once)
        if args.once and slow is not None:
            # bounded: a connected robot gets the time to finish what it was asked to do
            settled = slow.wait_settled(cfg.slow_loop.finish_wait_s)
    summary = {"record": str(record), **stats.summary()}
    if session.slow is not None:
        summary["intents"] = session.slow.intents
        summary["tool_calls_settled"] = settled
    print(json.dumps(summary))
    return exit_code(session.stop_signal)
