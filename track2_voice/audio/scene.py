"""Recorded scenes for the replay backend: lines of audio with time-aligned text pieces.

A scene is a ``scene.yaml`` next to its WAV files. Each line has ``text`` and ``audio``, an
optional ``pieces`` list (``[{t: seconds, text: " word"}]``) and a start rule. Without
``pieces`` the words are spread over the voiced part of the audio by character count, which
is close enough for a face and an intent watcher (Moshi's own text leads its audio anyway).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from pydantic import Field, ValidationError

from track2_voice.audio.devices import frames_of, load_audio, write_wav
from track2_voice.common.errors import UserError
from track2_voice.common.settings import CONFIGS_DIR, Strict
from track2_voice.frames import FRAME_SECONDS, SAMPLE_RATE
from track2_voice.lipsync import rms_dbfs

SCENES_DIR = CONFIGS_DIR / "scenes"
VOICED_DB = -40.0  # 10 ms windows louder than this count as voiced when aligning words
ALIGN_WINDOW_S = 0.01


class PieceSpec(Strict):
    t: float = Field(ge=0)
    text: str


class LineSpec(Strict):
    text: str
    audio: str
    pieces: list[PieceSpec] | None = None
    after_s: float = Field(0.5, ge=0, description="silence before the line")
    after_user: bool = Field(False, description="wait for the user to say something first")
    timeout_s: float = Field(4.0, ge=0, description="stop waiting for the user after this")
    user: str | None = Field(
        None,
        description="the user's words before this line, scripted: played as user_word events "
        "(source 'scene') while the line waits, as a transcript of the user would publish them",
    )
    user_word_s: float = Field(0.3, gt=0, description="one scripted user word every this long")


class SceneSpec(Strict):
    name: str
    voice: str = Field("en-us", description="espeak-ng voice used by `creature scene build`")
    speed: int = Field(150, description="espeak-ng words per minute")
    tail_s: float = Field(0.8, ge=0, description="silence after the last line")
    lines: list[LineSpec]


@dataclass
class SceneLine:
    spec: LineSpec
    frames: list[np.ndarray]
    pieces: dict[int, str]  # frame index within the line -> text


@dataclass
class Scene:
    spec: SceneSpec
    path: Path
    lines: list[SceneLine]

    @property
    def text(self) -> str:
        return " ".join(line.spec.text for line in self.lines)


class SceneError(UserError):
    pass


def resolve_scene_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "scene.yaml"
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SceneError(f"{p}: scene file not found")
        return p
    shipped = SCENES_DIR / name_or_path / "scene.yaml"
    if shipped.exists():
        return shipped
    names = sorted(d.name for d in SCENES_DIR.iterdir() if (d / "scene.yaml").exists())
    raise SceneError(f"unknown scene {name_or_path!r}: give a path or one of {names}")


def read_spec(path: Path) -> SceneSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return SceneSpec.model_validate(raw)
    except yaml.YAMLError as e:
        raise SceneError(f"{path}: not valid YAML ({e})") from e
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise SceneError(f"{path}: {loc}: {first['msg']}") from e


def align_words(text: str, pcm: np.ndarray) -> list[tuple[float, str]]:
    """Spread words over the voiced span in proportion to their length."""
    words = text.split()
    if not words:
        return []
    win = int(ALIGN_WINDOW_S * SAMPLE_RATE)
    voiced = [
        i for i in range(0, max(1, pcm.size - win), win) if rms_dbfs(pcm[i : i + win]) > VOICED_DB
    ]
    start = voiced[0] / SAMPLE_RATE if voiced else 0.0
    end = (voiced[-1] + win) / SAMPLE_RATE if voiced else pcm.size / SAMPLE_RATE
    weights = [len(w) + 1 for w in words]
    total = float(sum(weights))
    out, acc = [], 0.0
    for w, weight in zip(words, weights):
        out.append((start + (end - start) * acc / total, " " + w))
        acc += weight
    return out


def load_scene(name_or_path: str) -> Scene:
    path = resolve_scene_path(name_or_path)
    spec = read_spec(path)
    lines = []
    for i, ls in enumerate(spec.lines):
        audio_path = path.parent / ls.audio
        if not audio_path.exists():
            raise SceneError(
                f"{path}: lines.{i}.audio: {audio_path} is missing (run `creature scene build {path}`)"
            )
        pcm = load_audio(audio_path)
        timed = [(p.t, p.text) for p in ls.pieces] if ls.pieces else align_words(ls.text, pcm)
        pieces: dict[int, str] = {}
        for t, piece in timed:
            k = int(t / FRAME_SECONDS)
            pieces[k] = pieces.get(k, "") + piece
        lines.append(SceneLine(ls, frames_of(pcm), pieces))
    return Scene(spec, path, lines)


def build_scene(path: str | Path, espeak: str = "espeak-ng") -> list[Path]:
    """Synthesize every line's audio with espeak-ng (offline TTS), at 24 kHz mono."""
    path = resolve_scene_path(str(path))
    spec = read_spec(path)
    exe = shutil.which(espeak)
    if exe is None:
        raise SceneError(f"{espeak} not found: install it (apt-get install espeak-ng)")
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, line in enumerate(spec.lines):
            raw = Path(tmp) / f"{i}.wav"
            subprocess.run(
                [exe, "-v", spec.voice, "-s", str(spec.speed), "-w", str(raw), line.text],
                check=True,
                capture_output=True,
            )
            pcm = load_audio(raw)
            peak = float(np.max(np.abs(pcm))) or 1.0
            out = path.parent / line.audio
            write_wav(out, (pcm * (0.7 / peak)).astype(np.float32))
            written.append(out)
    return written
