"""Options every sub-command shares, and how they become a validated config."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from orchestrator.cli import logs
from orchestrator.cli.logs import add_log_options
from orchestrator.config import CreatureConfig, load_config, parse_set


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero (argparse prints the flag and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="a YAML file overriding configs/creature.yaml")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config key, e.g. --set voice.lipsync.floor_db=-45 (repeatable)",
    )
    add_log_options(p)


def add_backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["replay", "mlx", "torch", "remote"], help="voice backend")
    p.add_argument("--hf-repo", metavar="REPO_OR_DIR", help="model repo id or local directory")
    p.add_argument("--quantize", choices=["4", "8", "bf16", "auto"], help="MLX weight format")
    p.add_argument("--scene", help="replay scene name or path to scene.yaml")
    p.add_argument("--max-steps", type=int, help="generator steps before a rollover")
    p.add_argument("--url", metavar="WS_URL", help="remote backend: ws[s]://HOST:PORT/api/chat")
    p.add_argument(
        "--insecure", action="store_true", help="remote backend: accept a self-signed wss:// cert"
    )
    p.add_argument(
        "--mode",
        choices=["converse", "interpret"],
        help="converse (default): the creature talks; interpret: its voice translates a "
        "visitor (a Hibiki checkpoint), with captions and no intents (docs/interpreter.md)",
    )


def config_from_args(
    args: argparse.Namespace, extra: dict[str, Any] | None = None
) -> CreatureConfig:
    overrides: dict[str, Any] = {}
    flag_keys = {
        "backend": "voice.backend",
        "scene": "voice.replay.scene",
        "max_steps": "voice.rollover.max_steps",
        "url": "voice.remote.url",
        "mode": "mode",
    }
    for attr, key in flag_keys.items():
        val = getattr(args, attr, None)
        if val is not None:
            overrides[key] = val
    backend = getattr(args, "backend", None)
    if getattr(args, "hf_repo", None):
        # the repo flag applies to the chosen backend (mlx unless told otherwise)
        overrides[f"voice.{backend if backend in ('mlx', 'torch') else 'mlx'}.hf_repo"] = (
            args.hf_repo
        )
    q = getattr(args, "quantize", None)
    if q is not None:
        overrides["voice.mlx.quantize"] = int(q) if q in ("4", "8") else q
    if getattr(args, "insecure", False):
        overrides["voice.remote.insecure_tls"] = True
    if getattr(args, "realtime", False):
        overrides["voice.loop.realtime"] = True
    if getattr(args, "log_format", None):
        overrides["log.format"] = args.log_format
    overrides.update(extra or {})
    overrides.update(parse_set(getattr(args, "set", []) or []))
    cfg = load_config(getattr(args, "config", None), overrides)
    verbose = getattr(args, "verbose", False)
    logs.configure(logging.DEBUG if verbose else cfg.log.level, cfg.log.format)
    return cfg


def exit_code(stop_signal: int | None, errors: int = 0) -> int:
    """How a session's command ends: 128 + the signal that stopped it (130 for Ctrl-C, 143
    for SIGTERM, as a shell reports them; the summary is printed either way), else 1 when
    the voice had errors, else 0."""
    if stop_signal is not None:
        return 128 + stop_signal
    return 0 if errors == 0 else 1
