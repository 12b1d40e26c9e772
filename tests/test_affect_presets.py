"""The emotion presets are data (configs/emotions.yaml), validated with errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from affect.presets import EKMAN, PresetError
from orchestrator.data_files import PRESETS_FILE, load_presets


def test_default_presets_cover_ekman_set_with_every_parameter() -> None:
    data = load_presets()
    assert set(EKMAN) <= set(data["emotions"])
    for name, emo in data["emotions"].items():
        assert set(emo["face"]) == set(data["params"]), name
        assert -1 <= emo["valence"] <= 1 and -1 <= emo["arousal"] <= 1


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(PRESETS_FILE.read_text())
    mutate(data)
    p = tmp_path / "emotions.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["emotions"].pop("fear"), "missing the Ekman preset(s) ['fear']"),
        (lambda d: d["emotions"]["sad"]["face"].pop("brow_tilt"), "emotions.sad.face: missing"),
        (lambda d: d["emotions"]["sad"]["face"].update(wings=1), "unknown parameter(s) ['wings']"),
        (
            lambda d: d["emotions"]["happy"]["face"].update(eye_open=3),
            "emotions.happy.face.eye_open",
        ),
        (lambda d: d["emotions"]["happy"].update(valence="nice"), "emotions.happy.valence"),
        (lambda d: d["emotions"]["anger"].update(arousal=2), "emotions.anger.arousal"),
        (lambda d: d["params"]["blush"].update(min=2), "params.blush: min"),
    ],
)
def test_bad_presets_name_the_key(tmp_path: Path, mutate, expected: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(PresetError) as err:
        load_presets(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="presets file not found"):
        load_presets(tmp_path / "nope.yaml")
