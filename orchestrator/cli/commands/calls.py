"""``creature calls list | cancel ID | cancel-all``: the operator's view of the outbox.

Works whether or not a creature is running. A running creature owns the outbox (its lock file),
so a cancel is written into the outbox as a request, and the creature takes it within a
fraction of a second and does what a spoken "stop" does: a call nobody has been sent is
cancelled in place, a robot that has one is sent a ``cancel``. With no creature running, the
command applies the request itself; a robot that has the call is sent the cancel when it next
connects to a creature.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from orchestrator.brain.dispatcher import ALL_CALLS, ToolDispatcher
from orchestrator.brain.outbox import Outbox, OutboxCall, OutboxLock, open_outbox
from orchestrator.cli.commands.common import add_config_options, config_from_args
from orchestrator.state_dir import OUTBOX, state_dir
from track2_voice.common.errors import ConfigError

TAKEN_WAIT_S = 5.0  # how long to wait for a running creature to take a cancel request
REASON = "cancelled by the operator (creature calls)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calls",
        help="list or cancel the robot calls in the outbox (also while the creature runs)",
        description=(
            "The calls in the outbox (STATE_DIR/outbox.sqlite3, or slow_loop.outbox.path). "
            "`cancel` and `cancel-all` work while a creature runs: it sends the robot a cancel."
        ),
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser("list", help="open calls (--all: every call)")
    ls.add_argument("--all", action="store_true", help="settled calls too")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    one = verbs.add_parser("cancel", help="cancel one call")
    one.add_argument("id", help="the call id (as `creature calls list` prints it)")
    verbs.add_parser("cancel-all", help="cancel every open call")
    for v in (ls, one, verbs.choices["cancel-all"]):
        add_config_options(v)
        v.set_defaults(func=main)


def outbox_path(args: argparse.Namespace) -> Path:
    cfg = config_from_args(args)
    if cfg.slow_loop.outbox.path:
        return Path(cfg.slow_loop.outbox.path).expanduser()
    return state_dir(cfg.state_dir) / OUTBOX


def main(args: argparse.Namespace) -> int:
    path = outbox_path(args)
    if not path.is_file():
        if args.verb == "list":
            print(f"no calls ({path} does not exist yet)", file=sys.stderr)
            return 0
        raise ConfigError(f"slow_loop.outbox.path: {path} does not exist (no call was ever made)")
    box = open_outbox(path, "slow_loop.outbox.path", own=False)
    try:
        if args.verb == "list":
            return list_calls(box, args.all, args.json)
        return cancel(box, ALL_CALLS if args.verb == "cancel-all" else args.id)
    finally:
        box.close()


def _line(c: OutboxCall, now: float) -> str:
    what = " ".join(
        str(c.args.get(k)) for k in ("action", "object", "gesture", "destination") if c.args.get(k)
    )
    age = now - float(c.args.get("created", c.created or now))
    robot = c.robot or "-"
    return f"{c.id}  {c.status.value:<10} {age:7.1f}s  {robot:<16} {what}" + (
        f"  ({c.reason})" if c.reason else ""
    )


def list_calls(box: Outbox, every: bool, as_json: bool) -> int:
    calls = box.all_calls() if every else box.open_calls()
    now = time.time()
    for c in calls:
        if as_json:
            row = {"id": c.id, "status": c.status.value, "robot": c.robot, "reason": c.reason}
            print(json.dumps({**row, "arguments": c.args, "attempts": c.attempts}))
        else:
            print(_line(c, now))
    if not calls and not as_json:
        print("no open calls" if not every else "no calls", file=sys.stderr)
    return 0


def cancel(box: Outbox, call_id: str) -> int:
    if call_id != ALL_CALLS:
        call = box.get(call_id)
        if call is None:
            raise ConfigError(f"calls cancel: no call with id {call_id[:64]!r} in {box.path}")
        if call.status.terminal:
            print(f"{call.id}: already {call.status.value}; nothing to cancel")
            return 0
    targets = [c.id for c in box.open_calls()] if call_id == ALL_CALLS else [call_id]
    box.request_cancel(call_id, REASON)
    lock = OutboxLock(box.path)
    if lock.acquire():  # no creature runs: apply the request here
        try:
            ToolDispatcher(box, None, lambda _event: None).take_operator_cancels()
        finally:
            lock.release()
        where = "no creature running; a robot that has a call gets the cancel when it connects"
    else:
        where = f"taken by the running creature (pid {lock.owner()})"
        deadline = time.monotonic() + TAKEN_WAIT_S
        while box.cancel_requests_pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        if box.cancel_requests_pending():
            where = f"not yet taken by the running creature (pid {lock.owner()}); it will be"
        else:
            time.sleep(0.1)  # its robot's cancel is on the way; show what it did
    for cid in targets:
        c = box.get(cid)
        print(f"{cid}: {c.status.value if c else '?'}")
    print(f"{len(targets)} call(s): {where}", file=sys.stderr)
    return 0
