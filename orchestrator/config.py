"""Configuration: ``configs/creature.yaml`` < a user file < CLI flags, validated as one.

Every error names the file (or flag) the value came from, the dotted key, and what was
expected, e.g. ``my.yaml: voice.lipsync.attack_ms: Input should be a valid number (got 'fast')``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from face.config import FaceConfig
from face.phone.phone_config import PhoneConfig
from face.phone.telephony_config import TelephonyConfig
from orchestrator.data_files import CONFIG_FILE
from orchestrator.slow_config import InterpretConfig, SlowLoopConfig
from orchestrator.yaml_file import read_yaml_mapping
from track2_voice.backends.model_kind import HIBIKI_ZERO_REPO
from track2_voice.common.errors import ConfigError
from track2_voice.common.settings import Strict
from track2_voice.config import EchoConfig, VoiceConfig
from track2_voice.redact import redact_url

DEFAULT_CONFIG = CONFIG_FILE


class AudioConfig(Strict):
    input: str | None = Field(
        None, description="'local' (sound card), a file path, or null (silence / browser audio)"
    )
    output: str | None = Field(None, description="'local' (sound card), a WAV path, or null")
    input_device: str | int | None = Field(None, description="sounddevice input name or index")
    output_device: str | int | None = Field(None, description="sounddevice output name or index")
    echo: EchoConfig = EchoConfig()


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    format: Literal["text", "json"] = Field(
        "text", description="text: for people; json: one JSON object per line, for machines"
    )


class MetricsConfig(Strict):
    enabled: bool = Field(
        True,
        description="serve /metrics (Prometheus text format, needs the access token) on the "
        "face server",
    )
    queue_size: int = Field(
        1024, ge=1, description="events buffered for the metrics consumer before drop-oldest"
    )


class CreatureConfig(Strict):
    state_dir: str | None = Field(
        None,
        description="where the outbox, session records, secrets and the phone's certificate "
        "live (docs/security.md); null: $XDG_STATE_HOME/creature, i.e. ~/.local/state/creature",
    )
    mode: Literal["converse", "interpret"] = Field(
        "converse",
        description="converse: the creature's words are its own (Moshi); interpret: its voice "
        "translates a visitor (Hibiki), with captions and no intents by default "
        f"(docs/interpreter.md); the torch backend's default checkpoint is then {HIBIKI_ZERO_REPO}",
    )
    interpret: InterpretConfig = InterpretConfig()
    voice: VoiceConfig = VoiceConfig()
    audio: AudioConfig = AudioConfig()
    log: LogConfig = LogConfig()
    face: FaceConfig = FaceConfig()
    phone: PhoneConfig = PhoneConfig()
    telephony: TelephonyConfig = TelephonyConfig()
    slow_loop: SlowLoopConfig = SlowLoopConfig()
    metrics: MetricsConfig = MetricsConfig()

    @model_validator(mode="after")
    def _interpreter_model(self) -> CreatureConfig:
        """An interpreter runs a translation model: in interpret mode the in-process default
        checkpoint is Hibiki-Zero's (a ``voice.torch.hf_repo`` given anywhere wins)."""
        if self.mode == "interpret" and "hf_repo" not in self.voice.torch.model_fields_set:
            self.voice.torch.hf_repo = HIBIKI_ZERO_REPO
        return self

    @property
    def interpreting(self) -> InterpretConfig | None:
        """The interpreter's settings in interpret mode, else None."""
        return self.interpret if self.mode == "interpret" else None


def _merge(base: dict, over: dict, source: str, sources: dict[str, str], prefix: str = "") -> dict:
    out = dict(base)
    for k, v in over.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, source, sources, key + ".")
        else:
            out[k] = copy.deepcopy(v)
            sources[key] = source
            if isinstance(v, dict):
                for sub in _leaves(v, key + "."):
                    sources[sub] = source
    return out


def _leaves(d: dict, prefix: str) -> list[str]:
    out = []
    for k, v in d.items():
        out.append(prefix + str(k))
        if isinstance(v, dict):
            out.extend(_leaves(v, f"{prefix}{k}."))
    return out


def _read_yaml(path: Path) -> dict:
    return read_yaml_mapping(path, "config", ConfigError)


def dotted_to_nested(overrides: dict[str, Any]) -> dict:
    nested: dict = {}
    for dotted, value in overrides.items():
        node = nested
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return nested


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set voice.lipsync.floor_db=-45`` -> {"voice.lipsync.floor_db": -45} (YAML-typed)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY=VALUE, e.g. voice.backend=mlx")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item}: value is not valid YAML: {e}") from e
    return out


def _explain(err: dict, sources: dict[str, str], default_source: str) -> str:
    key_parts = [str(x) for x in err["loc"]]
    dotted = ".".join(key_parts)
    src = default_source
    under = list(dict.fromkeys(v for k, v in sources.items() if k.startswith(dotted + ".")))
    if under:
        src = " and ".join(under)  # a section's own check (e.g. floor < ceil): who set its keys
    else:
        for i in range(len(key_parts), 0, -1):
            cand = ".".join(key_parts[:i])
            if cand in sources:
                src = sources[cand]
                break
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        parent = ".".join(key_parts[:-1])
        allowed = _allowed_keys(parent)
        msg = f"unknown key; expected one of: {', '.join(allowed)}" if allowed else "unknown key"
        return f"{src}: {dotted}: {msg}"
    got = err.get("input")
    return f"{src}: {dotted}: {msg} (got {got!r})"


def _allowed_keys(parent: str) -> list[str]:
    model: Any = CreatureConfig
    for part in [p for p in parent.split(".") if p]:
        field = model.model_fields.get(part)
        if field is None or not hasattr(field.annotation, "model_fields"):
            return []
        model = field.annotation
    return list(model.model_fields)


def load_config(
    user_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base_file: Path = DEFAULT_CONFIG,
) -> CreatureConfig:
    sources: dict[str, str] = {}
    merged = _merge({}, _read_yaml(base_file), str(base_file), sources)
    if user_file is not None:
        up = Path(user_file)
        merged = _merge(merged, _read_yaml(up), str(up), sources)
    if overrides:
        for dotted, value in overrides.items():
            merged = _merge(
                merged, dotted_to_nested({dotted: value}), f"command line ({dotted})", sources
            )
    try:
        cfg = CreatureConfig.model_validate(merged)
    except ValidationError as e:
        lines = [_explain(err, sources, str(base_file)) for err in e.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
    # checks across files: the allowlist names actions declared in the actions file
    problems = [
        f"{sources.get(f'slow_loop.{key}', str(base_file))}: slow_loop.{key}: {msg}"
        for key, msg in cfg.slow_loop.cross_check()
    ]
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return cfg


SECRET_KEYS = (("slow_loop", "robot", "token"), ("slow_loop", "webhook", "secret"))
# URLs that may carry a credential in their query (?token=...): shown redacted
URL_KEYS = (("voice", "remote", "url"), ("slow_loop", "webhook", "url"))


def dump_config(cfg: CreatureConfig) -> str:
    """The merged config as YAML; secrets show only whether they are set, URLs without their
    credentials (``creature config`` output is often pasted into bug reports)."""
    data = cfg.model_dump(mode="json")
    for keys, hide in ((SECRET_KEYS, lambda v: "<set, hidden>"), (URL_KEYS, redact_url)):
        for path in keys:
            node = data
            for part in path[:-1]:
                node = node[part]
            if node.get(path[-1]) is not None:
                node[path[-1]] = hide(node[path[-1]])
    return yaml.safe_dump(data, sort_keys=False)
