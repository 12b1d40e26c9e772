"""The creature's physical actions, declared once in ``configs/actions.yaml``.

An action is a name, a description, the slots its calls carry, the verbs that say it and how
those verbs take their slots. The tool schema's action enum and slot properties
(:mod:`orchestrator.brain.tool_schema`), the safety allowlist's default and the intent
watcher's verbs (:mod:`orchestrator.brain.intent_rules`) are all derived from one
:class:`ActionSet`, so adding an action is an edit to data, never to code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.data_files import ACTIONS_FILE
from orchestrator.yaml_file import read_yaml_mapping
from track2_voice.common.errors import ConfigError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SLOT_MAX_CHARS = 80
ACTION_KEYS = {
    "description",
    "slots",
    "requires",
    "verbs",
    "frames",
    "phrasings",
    "verb_slot",
    "cancels_all",
}


class ActionsError(ConfigError):
    """The actions file is missing a key or declares something inconsistent."""


@dataclass(frozen=True)
class Slot:
    """One argument a call can carry (beyond the action itself)."""

    name: str
    description: str
    words: str | None = None  # the grammar macro its words must match (configs/intents.yaml)
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SentencePattern:
    """How an action's verbs take their slots: a regex template (see configs/actions.yaml)."""

    say: str
    set: dict[str, str] = field(default_factory=dict)
    priority: int = 0


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    slots: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    verb_values: dict[str, str] = field(default_factory=dict)  # verb -> value of verb_slot
    verb_slot: str | None = None
    frames: tuple[SentencePattern, ...] = ()
    phrasings: tuple[SentencePattern, ...] = ()
    cancels_all: bool = False


@dataclass(frozen=True)
class ActionSet:
    slots: dict[str, Slot]
    actions: dict[str, Action]
    source: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Every action a robot can be asked for, in declaration order."""
        return tuple(self.actions)

    def get(self, name: str) -> Action | None:
        return self.actions.get(name)

    def cancels_all(self, name: str) -> bool:
        a = self.actions.get(name)
        return bool(a and a.cancels_all)


def _sentence_pattern(raw: Any, where: str) -> SentencePattern:
    if isinstance(raw, str):
        return SentencePattern(raw)
    if isinstance(raw, dict) and isinstance(raw.get("say"), str):
        extra = set(raw) - {"say", "set", "priority"}
        if extra:
            raise ActionsError(f"{where}: unknown key(s) {sorted(extra)}")
        sets = raw.get("set") or {}
        if not isinstance(sets, dict):
            raise ActionsError(f"{where}.set: expected a mapping slot -> value")
        try:
            priority = int(raw.get("priority", 0))
        except (TypeError, ValueError):
            raise ActionsError(f"{where}.priority: expected an integer") from None
        return SentencePattern(raw["say"], {str(k): str(v) for k, v in sets.items()}, priority)
    raise ActionsError(f"{where}: expected a regex string or {{say: ..., set: ..., priority: ...}}")


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ActionsError(f"{where}: expected a list of names")
    return tuple(raw)


def _parse_slots(raw: Any, src: str) -> dict[str, Slot]:
    if not isinstance(raw, dict):
        raise ActionsError(f"{src}: slots: expected a mapping of slot name -> {{description, ...}}")
    out = {}
    for name, spec in raw.items():
        where = f"{src}: slots.{name}"
        if not NAME.match(str(name)) or name in ("action", "id"):
            raise ActionsError(f"{where}: a slot name is lower_snake_case and not 'action'/'id'")
        if not isinstance(spec, dict) or not isinstance(spec.get("description"), str):
            raise ActionsError(f"{where}: expected a mapping with a 'description'")
        enum = spec.get("enum")
        if enum is not None and (not isinstance(enum, list) or not enum):
            raise ActionsError(f"{where}.enum: expected a non-empty list of values")
        words = spec.get("words")
        if words is None and enum is None:
            raise ActionsError(f"{where}: give 'words' (a grammar macro) or 'enum'")
        out[name] = Slot(
            name,
            spec["description"],
            str(words) if words is not None else None,
            tuple(str(v) for v in enum) if enum else None,
        )
    return out


def _action_header(name: str, spec: Any, where: str) -> None:
    """The name, the mapping and its keys, the description."""
    if not NAME.match(name):
        raise ActionsError(f"{where}: an action name is lower_snake_case (at most 40 chars)")
    if not isinstance(spec, dict):
        raise ActionsError(f"{where}: expected a mapping")
    unknown = set(spec) - ACTION_KEYS
    if unknown:
        raise ActionsError(
            f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(ACTION_KEYS)}"
        )
    if not isinstance(spec.get("description"), str):
        raise ActionsError(f"{where}.description: expected a sentence")


def _action_slots(
    spec: dict, slots: dict[str, Slot], where: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The action's own slots (each declared under ``slots``) and the ones it requires."""
    own = _names(spec.get("slots"), f"{where}.slots")
    requires = _names(spec.get("requires"), f"{where}.requires")
    for s in own:
        if s not in slots:
            raise ActionsError(f"{where}.slots: {s!r} is not declared under slots: {list(slots)}")
    for s in requires:
        if s not in own:
            raise ActionsError(f"{where}.requires: {s!r} is not one of this action's slots")
    return own, requires


def _action_verbs(
    spec: dict, own: tuple[str, ...], where: str
) -> tuple[tuple[str, ...], dict[str, str], str | None]:
    """The verbs, and with ``verb_slot`` the value each verb gives that slot."""
    verb_slot = spec.get("verb_slot")
    raw_verbs = spec.get("verbs") or []
    if verb_slot is None:
        return _names(raw_verbs, f"{where}.verbs"), {}, None
    if verb_slot not in own:
        raise ActionsError(f"{where}.verb_slot: {verb_slot!r} is not one of this action's slots")
    if not isinstance(raw_verbs, dict):
        raise ActionsError(f"{where}.verbs: with verb_slot, expected a mapping verb -> value")
    values = {str(k): str(v) for k, v in raw_verbs.items()}
    return tuple(values), values, verb_slot


def _check_settings(
    patterns: tuple[SentencePattern, ...], own: tuple[str, ...], slots: dict[str, Slot], where: str
) -> None:
    """What a pattern sets must be one of the action's slots, and a value of its enum."""
    for i, fr in enumerate(patterns):
        for k, v in fr.set.items():
            if k not in own:
                raise ActionsError(f"{where}: frame {i} sets {k!r}, not one of this action's slots")
            enum = slots[k].enum
            if enum and v not in enum:
                raise ActionsError(f"{where}: frame {i} sets {k}={v!r}, not in slots.{k}.enum")


def _parse_action(name: str, spec: Any, slots: dict[str, Slot], src: str) -> Action:
    where = f"{src}: actions.{name}"
    _action_header(name, spec, where)
    own, requires = _action_slots(spec, slots, where)
    verbs, values, verb_slot = _action_verbs(spec, own, where)
    frames = tuple(
        _sentence_pattern(f, f"{where}.frames.{i}") for i, f in enumerate(spec.get("frames") or [])
    )
    phrasings = tuple(
        _sentence_pattern(f, f"{where}.phrasings.{i}")
        for i, f in enumerate(spec.get("phrasings") or [])
    )
    if not verbs and not phrasings:
        raise ActionsError(f"{where}: give 'verbs' (or 'phrasings') so the creature can say it")
    _check_settings(frames + phrasings, own, slots, where)
    if verb_slot is not None and slots[verb_slot].enum:
        bad = sorted({v for v in values.values() if v not in slots[verb_slot].enum})
        if bad:
            raise ActionsError(f"{where}.verbs: value(s) {bad} not in slots.{verb_slot}.enum")
    return Action(
        name=name,
        description=spec["description"],
        slots=own,
        requires=requires,
        verbs=verbs,
        verb_values=values,
        verb_slot=verb_slot,
        frames=frames,
        phrasings=phrasings,
        cancels_all=bool(spec.get("cancels_all", False)),
    )


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, dict]:
    """Slots and actions of a file, after the file it extends (``extends: default`` or a path
    relative to it); a later declaration of the same name replaces the earlier one."""
    raw = read_yaml_mapping(path, "actions", ActionsError)
    src = str(path)
    slots: dict = {}
    actions: dict = {}
    base = raw.get("extends")
    if base is not None:
        target = ACTIONS_FILE if base == "default" else (path.parent / str(base))
        target = target.resolve()
        if target in seen or target == path.resolve():
            raise ActionsError(f"{src}: extends: {base!r} would include itself")
        slots, actions = _raw(target, (*seen, path.resolve()))
    unknown = set(raw) - {"extends", "slots", "actions", "remove"}
    if unknown:
        raise ActionsError(
            f"{src}: unknown key(s) {sorted(unknown)}; expected extends, slots, actions, remove"
        )
    own_slots = raw.get("slots")
    if own_slots is not None and not isinstance(own_slots, dict):
        raise ActionsError(f"{src}: slots: expected a mapping of slot name -> {{description, ...}}")
    slots.update({k: (v, src) for k, v in (own_slots or {}).items()})
    own = raw.get("actions") or {}
    if not isinstance(own, dict):
        raise ActionsError(f"{src}: actions: expected a mapping of action name -> declaration")
    actions.update({str(k): (v, src) for k, v in own.items()})
    for name in _names(raw.get("remove"), f"{src}: remove"):
        if actions.pop(name, None) is None:
            raise ActionsError(f"{src}: remove: {name!r} is not an action declared before")
    return slots, actions


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> ActionSet:
    raw_slots, raw_actions = _raw(path)
    if not raw_actions:
        raise ActionsError(f"{path}: actions: declare at least one action")
    slots: dict[str, Slot] = {}
    for name, (spec, src) in raw_slots.items():
        slots.update(_parse_slots({name: spec}, src))
    actions = {
        name: _parse_action(name, spec, slots, src) for name, (spec, src) in raw_actions.items()
    }
    return ActionSet(slots, actions, str(path))


def load_actions(path: str | Path | None = None) -> ActionSet:
    """Read and check an actions file (default configs/actions.yaml); errors name the file and
    the key. Cached per file until it changes."""
    p = Path(path) if path else ACTIONS_FILE
    if not p.exists():
        raise ActionsError(f"{p}: actions file not found")
    p = p.resolve()
    return _load(p, p.stat().st_mtime)
