"""What a :class:`~orchestrator.brain.brain.Brain` is built from, each part from its settings:
the ears for the creature's own sentences (the intent watcher) and for both sides of the
conversation (the dialogue), the dispatcher that turns intents into calls (behind the safety
gate, with the outbox's timings and the tool schema), and the optional planner beside the
rules. Kept apart so the brain's constructor reads as the list of its parts."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.brain.actions import ActionSet
from orchestrator.brain.call_deadlines import CallTiming
from orchestrator.brain.dialogue import Dialogue
from orchestrator.brain.dialogue_rules import load_dialogue_rules
from orchestrator.brain.dispatcher import ToolDispatcher, caps_of
from orchestrator.brain.intent_rules import Judgement, load_rules
from orchestrator.brain.intents import IntentWatcher
from orchestrator.brain.outbox import Outbox
from orchestrator.brain.planning import Deliberation
from orchestrator.brain.tool_schema import tool_schema
from orchestrator.brain.tools import SafetyGate
from orchestrator.slow_config import SlowLoopConfig
from track2_voice.events import DiscreteEvent

Emit = Callable[[DiscreteEvent], None]
Clock = Callable[[], float]


def hearing(
    cfg: SlowLoopConfig,
    actions: ActionSet,
    on_judged: Callable[[Judgement, bool], None],
) -> tuple[IntentWatcher, Dialogue | None]:
    """The watcher of the creature's sentences (every verdict goes to ``on_judged``) and, when
    enabled, the dialogue (docs/slow_loop.md, "Dialogue"), on one set of intent rules."""
    rules = load_rules(cfg.intents.rules_file, actions)
    watcher = IntentWatcher(cfg.intents, rules, on_judged=on_judged)
    if not cfg.dialogue.enabled:
        return watcher, None
    dialogue_rules = load_dialogue_rules(rules, cfg.dialogue.rules_file)
    return watcher, Dialogue(cfg.dialogue, dialogue_rules, cfg.intents.repeat_window_s)


def dispatcher(
    cfg: SlowLoopConfig, actions: ActionSet, outbox: Outbox, emit: Emit, clock: Clock
) -> ToolDispatcher:
    """Intents to calls: the safety gate on the action set, the outbox's and the robot
    channel's deadlines, the tool schema of the same actions."""
    return ToolDispatcher(
        outbox,
        SafetyGate(cfg.safety, clock, actions=actions),
        emit,
        CallTiming(
            max_age_s=cfg.outbox.max_age_s,
            queued_max_age_s=cfg.outbox.queued_max_age_s,
            reclaim_s=cfg.robot.reclaim_s,
            ack_timeout_s=cfg.robot.ack_timeout_s,
        ),
        schema=tool_schema(actions),
    )


def deliberation(
    cfg: SlowLoopConfig, calls: ToolDispatcher, outbox: Outbox, emit: Emit, clock: Clock
) -> Deliberation | None:
    """The optional planner beside the rules (its port is attached by the runtime); it sees
    what the connected bodies declared."""
    if not cfg.planner.enabled:
        return None
    d = Deliberation(
        cfg.planner, calls.schema, calls.gate.allowed, outbox, calls.submit, emit, clock
    )
    d.bodies = lambda: declared_bodies(calls)
    return d


def declared_bodies(calls: ToolDispatcher) -> tuple[frozenset[str] | None, str]:
    """What the connected bodies declared (None: some body declared nothing, or none is
    here: any action may find one), and a line naming them, for the planner."""
    caps = [caps_of(r) for r in calls.robots]
    if not caps or any(c is None for c in caps):
        return None, calls.bodies_text()
    return frozenset(c.action for body in caps for c in body), calls.bodies_text()
