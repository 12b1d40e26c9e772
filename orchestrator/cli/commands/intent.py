"""``creature intent "Sure, I'll bring you the keys"``: what the intent watcher would emit, and
with ``--explain`` why each sentence did or did not fire."""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.brain.actions import load_actions
from orchestrator.brain.dialogue import Dialogue, Plan, RequestHeard, Stop, Unsent
from orchestrator.brain.dialogue_play import play
from orchestrator.brain.dialogue_rules import load_dialogue_rules
from orchestrator.brain.intent_rules import Judgement, load_rules
from orchestrator.brain.intents import Intent, IntentWatcher, intents_in_text
from orchestrator.brain.tool_schema import tool_schema
from orchestrator.brain.tools import SafetyGate, call_from_intent
from orchestrator.cli.commands.common import add_config_options, config_from_args
from track2_voice.common.errors import ConfigError


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
        "--user",
        metavar="USER_WORDS",
        help="what the user said before the creature's words: both sides are read as the "
        "brain's dialogue reads them (a request the creature accepts becomes calls with the "
        "user's objects; pronouns resolved; '-' for no user words); --explain then names the "
        "binding",
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
    if args.user is not None:
        return _dialogue(args, cfg, rules, gate, schema)
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


def _dialogue(args: argparse.Namespace, cfg, rules, gate: SafetyGate, schema) -> int:
    """Both sides, played as the brain hears them: one JSON line per call (``--explain``: one
    per decision, naming the binding)."""
    dialogue = Dialogue(
        cfg.dialogue,
        load_dialogue_rules(rules, cfg.dialogue.rules_file),
        cfg.intents.repeat_window_s,
    )
    user = None if args.user.strip() in ("", "-") else args.user
    for x in play(user, " ".join(args.text), dialogue, rules, cfg.intents):
        d = x.decision
        if isinstance(d, Plan):
            calls = []
            for n, intent in enumerate(d.intents):
                line = {"intent": intent.to_dict(), **_call(intent, gate, schema)}
                if n:
                    line["after"] = "the call before succeeds (dropped if it fails)"
                calls.append(line)
            if not args.explain:
                for line in calls:
                    print(json.dumps(line))
                continue
            print(json.dumps({"binding": d.binding.value, "reply": d.reply.value,
                              "user": d.user, "creature": d.creature,
                              "waited_s": round(d.waited_s, 3), "calls": calls}))  # fmt: skip
        elif not args.explain:
            continue
        elif isinstance(d, RequestHeard):
            print(json.dumps({"user_request": d.request.to_dict()}))
        elif isinstance(d, Unsent):
            print(json.dumps({"unsent": d.reason, "creature": d.creature, "user": d.user,
                              "action": d.action}))  # fmt: skip
        elif isinstance(d, Stop):
            print(json.dumps({"user_stop": d.words, "effect": "cancel every open tool call"}))
    return 0
