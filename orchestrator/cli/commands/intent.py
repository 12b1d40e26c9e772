"""``creature intent "Sure, I'll bring you the keys"``: what the intent watcher would emit."""

from __future__ import annotations

import argparse
import json

from orchestrator.brain.intents import IntentWatcher, intents_in_text
from orchestrator.brain.tools import SafetyGate, call_from_intent
from orchestrator.cli.commands.common import add_config_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "intent",
        help="show the intent (and tool call) a sentence of the creature's speech would fire",
        description=(
            "Feeds the text to the intent watcher word by word, as the creature's inner "
            "monologue would arrive, and prints one JSON line per intent with the tool call it "
            "would become (or why the safety gate would refuse it). Prints nothing when the "
            "text commits to no physical action."
        ),
    )
    p.add_argument("text", nargs="+", help="what the creature says")
    add_config_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args).slow_loop
    gate = SafetyGate(cfg.safety)
    for intent in intents_in_text(" ".join(args.text), IntentWatcher(cfg.intents)):
        out = {"intent": intent.to_dict()}
        if intent.action == "stop":
            out["effect"] = "cancel every open tool call"
        else:
            call = call_from_intent(intent)
            refused = gate.check(call)
            out["tool_call"] = {"name": "do_physical_task", "arguments": call}
            if refused:
                out["refused"] = refused
        print(json.dumps(out))
    return 0
