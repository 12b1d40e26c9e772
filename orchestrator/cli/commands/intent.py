"""``creature intent "Sure, I'll bring you the keys"``: what the intent watcher would emit, and
with ``--explain`` why each sentence did or did not fire."""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.brain.actions import load_actions
from orchestrator.brain.intent_rules import Judgement, load_rules
from orchestrator.brain.intents import Intent, IntentWatcher, intents_in_text
from orchestrator.brain.tool_schema import tool_schema
from orchestrator.brain.tools import SafetyGate, call_from_intent
from orchestrator.cli.commands.common import add_config_options, config_from_args
from orchestrator.config import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "intent",
        help="show the intent (and tool call) a sentence of the creature's speech would fire",
        description=(
            "Feeds the text to the intent watcher word by word, as the creature's inner "
            "monologue would arrive, and prints one JSON line per intent with the tool call it "
            "would become (or why the safety gate would refuse it). Prints nothing when the "
            "text commits to no physical action; --explain prints one line per sentence "
            "instead, saying which rule decided it."
        ),
    )
    p.add_argument("text", nargs="*", help="what the creature says")
    p.add_argument(
        "--explain",
        action="store_true",
        help="one JSON line per sentence: fired (action, verb, commitment, slots) or the rule "
        "that blocked it (question, hedge, negation, idiom, tense, addressed_to_user, "
        "gerund_subject, no_commitment, no_action_verb), with every verb candidate",
    )
    p.add_argument(
        "--tool",
        action="store_true",
        help="print the do_physical_task tool (OpenAI function-tool form) generated from the "
        "action declarations, and exit",
    )
    add_config_options(p)
    p.set_defaults(func=main)


def _call(intent: Intent, gate: SafetyGate, schema) -> dict[str, Any]:
    if gate.actions.cancels_all(intent.action):
        return {"effect": "cancel every open tool call"}
    call = call_from_intent(intent, schema=schema)
    out: dict[str, Any] = {
        "tool_call": {"name": schema.definition["function"]["name"], "arguments": call}
    }
    refused = gate.check(call)
    if refused:
        out["refused"] = refused
    return out


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args).slow_loop
    actions = load_actions(cfg.actions.file)
    schema = tool_schema(actions)
    if args.tool:
        print(json.dumps(schema.definition, indent=2))
        return 0
    if not args.text:
        raise ConfigError('intent: give the text to judge, e.g. creature intent "I\'ll open it"')
    rules = load_rules(cfg.intents.rules_file, actions)
    gate = SafetyGate(cfg.safety, actions=actions)
    verdicts: list[tuple[Judgement, bool]] = []
    watcher = IntentWatcher(cfg.intents, rules, on_judged=lambda j, rep: verdicts.append((j, rep)))
    intents = iter(intents_in_text(" ".join(args.text), watcher))
    if not args.explain:
        for intent in intents:
            print(json.dumps({"intent": intent.to_dict(), **_call(intent, gate, schema)}))
        return 0
    for verdict, repeated in verdicts:
        line = verdict.to_dict()
        if repeated:
            line["repeated"] = (
                f"the same action and object fired within {cfg.intents.repeat_window_s}s "
                "(slow_loop.intents.repeat_window_s): not fired again"
            )
        elif verdict.match is not None:
            line.update(_call(next(intents), gate, schema))
        print(json.dumps(line))
    return 0
