"""The one place that finds and reads the creature's data files in ``configs/``: the emotion
presets, the affect map, the visemes, and the paths of the settings, the actions, the intents,
the dialogue rules and the tool envelope (read by their own modules). The ``affect`` package
stays pure: it validates the data it is handed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affect.affect_map import AffectMap, AffectMapError, parse_affect_map
from affect.presets import PresetError, parse_presets, preset_points
from affect.visemes import VisemeError, VisemeSet, parse_visemes
from orchestrator.yaml_file import read_yaml_mapping
from track2_voice.common.settings import CONFIGS_DIR

CONFIG_FILE = CONFIGS_DIR / "creature.yaml"
ACTIONS_FILE = CONFIGS_DIR / "actions.yaml"
INTENTS_FILE = CONFIGS_DIR / "intents.yaml"
DIALOGUE_FILE = CONFIGS_DIR / "dialogue.yaml"
TOOL_ENVELOPE_FILE = CONFIGS_DIR / "tools" / "do_physical_task.json"
ROS2_MAP_FILE = CONFIGS_DIR / "bodies" / "ros2.yaml"
PRESETS_FILE = CONFIGS_DIR / "emotions.yaml"
AFFECT_FILE = CONFIGS_DIR / "affect.yaml"
VISEMES_FILE = CONFIGS_DIR / "visemes.yaml"


def load_presets(path: str | Path | None = None) -> dict[str, Any]:
    """The face's emotion presets (default configs/emotions.yaml); raises PresetError."""
    p = Path(path) if path is not None else PRESETS_FILE
    return parse_presets(read_yaml_mapping(p, "presets", PresetError, allow_empty=False), str(p))


def load_affect_map(
    path: str | Path | None = None, presets: dict[str, Any] | None = None
) -> AffectMap:
    """The affect map (default configs/affect.yaml), its emotions placed by the presets."""
    p = Path(path) if path else AFFECT_FILE
    try:
        points = preset_points(presets if presets is not None else load_presets())
    except PresetError as e:
        raise AffectMapError(str(e)) from None
    return parse_affect_map(read_yaml_mapping(p, "affect", AffectMapError), str(p), points)


def load_visemes(path: str | Path | None = None) -> VisemeSet:
    """The viseme shapes, phoneme map and blending (default configs/visemes.yaml); raises
    VisemeError."""
    p = Path(path) if path else VISEMES_FILE
    return parse_visemes(read_yaml_mapping(p, "visemes", VisemeError, allow_empty=False), str(p))
