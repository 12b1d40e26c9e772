"""``creature cascade``: a local Pipecat cascade (VAD -> STT -> LLM -> TTS) and, with
``--against creature``, the creature, timed side by side by one harness on one clock."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.cli.cascade_env import CASCADE_DIR
from orchestrator.cli.commands.bench import DEFAULT_UTTERANCES
from orchestrator.cli.commands.common import (
    add_backend_options,
    add_config_options,
    config_from_args,
)

ANY_OUTPUT_DB = -200.0  # below digital silence's -120: every output window is "audible"


def llm_shapes() -> list[str]:
    """The shapes benchmarks/cascade/llm_shapes.json offers (none outside a source checkout)."""
    path = CASCADE_DIR / "llm_shapes.json"
    return (
        [n for n in json.loads(path.read_text()) if not n.startswith("_")] if path.exists() else []
    )


# harness flags -> ClockSettings fields (track2_voice/devtools/turn_clock.py holds the defaults)
CLOCK_FLAGS = {
    "speech_db": "input windows louder than this (dBFS) are speech",
    "audible_db": "output windows louder than this (dBFS) are the reply",
    "lead_in_s": "seconds of silence before each utterance",
    "max_wait_s": "seconds after the end of speech to wait for a reply",
    "listen_s": "seconds of each reply to hear before stopping it",
    "settle_s": "seconds to wait for the system to go quiet before the next utterance",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cascade",
        help="time a local Pipecat cascade (and the creature) on the same utterances",
        description=(
            "Builds (once) its own environment with Pipecat 1.14, then runs a real Pipecat "
            "pipeline whose parts all run here: Silero VAD and smart-turn v3 (inside the "
            "pipecat wheel), streaming pocketsphinx STT, an LLM (a transformers model of a "
            "published shape with RANDOM weights, or any OpenAI-compatible server via "
            "--llm-url) and espeak-ng TTS. Every utterance is played at real time; latency "
            "runs from the last voiced 20 ms input chunk to the first audible reply sample. "
            "--against creature runs the creature's fast loop through the same harness and "
            "prints both side by side (p50 / p90 per stage), with the machine's load."
        ),
    )
    p.add_argument(
        "--input",
        nargs="+",
        default=[str(DEFAULT_UTTERANCES)],
        help="audio files or directories of them (default: the shipped benchmarks/utterances)",
    )
    p.add_argument(
        "--against", choices=["none", "creature"], default="none", help="also time the creature"
    )
    p.add_argument("--json", metavar="FILE", default="cascade.json", help="where to write results")
    p.add_argument("--html", metavar="FILE",
                   help="also draw the turns (stacked stages beside the creature) as one HTML page")  # fmt: skip
    _add_llm_options(p.add_argument_group("the cascade's LLM"))
    _add_env_options(p.add_argument_group("the cascade's environment"))
    _add_clock_options(p.add_argument_group("the harness"))
    creature = p.add_argument_group(
        "the creature (--against creature; default: mlx with a tiny random checkpoint)"
    )
    add_backend_options(creature)
    add_config_options(p)
    p.set_defaults(func=main)


def _add_llm_options(llm: argparse._ArgumentGroup) -> None:
    llm.add_argument("--llm-shape", choices=llm_shapes(), default="smollm2-135m",
                     help="local model shape, random weights (default smollm2-135m)")  # fmt: skip
    llm.add_argument("--llm-url", metavar="URL",
                     help="an OpenAI-compatible endpoint instead, e.g. http://127.0.0.1:8000/v1")  # fmt: skip
    llm.add_argument("--llm-model", default="default", help="model name sent to --llm-url")
    llm.add_argument("--llm-key-env", metavar="VAR", help="environment variable with its key")
    llm.add_argument("--max-tokens", type=int, default=24, help="reply length cap in tokens")


def _add_env_options(env: argparse._ArgumentGroup) -> None:
    env.add_argument("--venv", metavar="DIR",
                     help="where it lives (default: <state_dir>/cascade-venv)")  # fmt: skip
    env.add_argument("--setup-only", action="store_true", help="build it, then exit")
    env.add_argument("--rebuild", action="store_true", help="build it afresh")


def _add_clock_options(clock: argparse._ArgumentGroup) -> None:
    for name, what in CLOCK_FLAGS.items():
        clock.add_argument("--" + name.removesuffix("_s").replace("_", "-"), dest=name,
                           type=float, metavar="N", help=what)  # fmt: skip
    clock.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                       help="time the first utterance cold (default: play it once untimed first)")  # fmt: skip


def _fail(msg: str) -> int:
    print(f"creature cascade: {msg}", file=sys.stderr)
    return 2


def check_llm_url(url: str) -> str | None:
    """None if ``url`` looks like an OpenAI-compatible base URL that answers; else why not."""
    import httpx

    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        return f"--llm-url {url}: expected http[s]://HOST[:PORT]/v1"
    try:
        httpx.get(url.rstrip("/") + "/models", timeout=5.0)
    except httpx.HTTPError as e:
        return f"--llm-url {url}: cannot reach it ({type(e).__name__}: {e})"
    return None


def main(args: argparse.Namespace) -> int:
    from orchestrator.cli.cascade_env import CascadeEnvError, default_venv, ensure
    from orchestrator.state_dir import state_dir
    from track2_voice.devtools.turn_clock import ClockSettings, find_utterances

    try:
        files = find_utterances(args.input)
    except FileNotFoundError as e:
        return _fail(str(e))
    if (why := _check_args(args)) is not None:
        return _fail(why)
    given = {f: getattr(args, f) for f in CLOCK_FLAGS if getattr(args, f) is not None}
    settings = ClockSettings(**given, warm_up=args.warm_up)
    cfg = config_from_args(args)
    env_dir = Path(args.venv).expanduser() if args.venv else default_venv(state_dir(cfg.state_dir))
    try:
        python = ensure(env_dir, lambda line: print(line, flush=True), rebuild=args.rebuild)
    except CascadeEnvError as e:
        return _fail(str(e))
    if args.setup_only:
        return 0
    load = {"before": os.getloadavg()}
    cascade = run_cascade(args, python, files, settings)
    if cascade is None:
        return 1
    report: dict = {"settings": asdict(settings), "cascade": cascade}
    columns = {"cascade": cascade["summary"]}
    load["after_cascade"] = os.getloadavg()
    if args.against == "creature":
        report["creature"] = run_creature(args, cfg, files, settings)
        columns["creature"] = report["creature"]["summary"]
        load["after_creature"] = os.getloadavg()
    report["machine"] = {"cpus": os.cpu_count(), "load": load}
    write_report(args, report, columns)
    return 0


def _check_args(args: argparse.Namespace) -> str | None:
    """None when the flags and the machine can run the comparison; else why not."""
    if args.llm_url and (why := check_llm_url(args.llm_url)):
        return why
    for flag, path in (("--json", args.json), ("--html", args.html)):
        if path and not Path(path).resolve().parent.is_dir():
            return f"{flag} {path}: directory {Path(path).parent} does not exist"
    if args.html and importlib.util.find_spec("matplotlib") is None:
        return "--html draws with matplotlib: pip install 'creature[report]'"
    if args.max_tokens < 1:
        return f"--max-tokens {args.max_tokens}: expected a positive number"
    if not args.setup_only and shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (the cascade's TTS): apt-get install espeak-ng"
    tiny = args.against == "creature" and args.backend is None and not args.hf_repo
    tiny = tiny and not args.setup_only
    if tiny and importlib.util.find_spec("moshi_mlx") is None:
        return (
            "--against creature runs a tiny MLX checkpoint, but moshi_mlx is not installed "
            '(pip install -e ".[mlx]"), or name --backend / --hf-repo'
        )
    return None


def run_cascade(args: argparse.Namespace, python: Path, files: list[Path], settings) -> dict | None:
    """The Pipecat cascade, in its own environment, on the utterances; None if it failed
    (said on stderr)."""
    from orchestrator.cli.cascade_env import ROOT

    with tempfile.TemporaryDirectory(prefix="cascade-") as tmp:
        out = Path(tmp) / "cascade.json"
        cmd = [str(python), str(CASCADE_DIR / "run.py"), "--json", str(out)]
        cmd += ["--input", *map(str, files), "--settings", json.dumps(asdict(settings))]
        cmd += ["--llm-shape", args.llm_shape, "--max-tokens", str(args.max_tokens)]
        cmd += ["--log-level", "DEBUG" if args.verbose else "WARNING"]
        if args.llm_url:
            cmd += ["--llm-url", args.llm_url, "--llm-model", args.llm_model]
            cmd += ["--llm-key-env", args.llm_key_env] if args.llm_key_env else []
        print(f"cascade: {len(files)} utterances at real time ...", flush=True)
        r = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if r.returncode != 0 or not out.exists():
            print(
                f"creature cascade: the cascade run failed (exit {r.returncode})", file=sys.stderr
            )
            return None
        return json.loads(out.read_text())


def write_report(args: argparse.Namespace, report: dict, columns: dict) -> None:
    """Each side described, the side-by-side table, and the JSON (and HTML) written."""
    from track2_voice.devtools.turn_clock import side_by_side

    print()
    for name in ("cascade", "creature"):
        if part := report.get(name):
            print(f"{name}: " + "; ".join(f"{k} {v}" for k, v in part["describe"].items()))
    table = side_by_side(columns, os.getloadavg())
    print(table)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.html:
        from orchestrator.analysis.cascade_plot import write_html

        write_html(report, table, args.html)
        print(f"wrote {args.html}")


def run_creature(args, cfg, files: list[Path], settings) -> dict:
    """The creature's fast loop through the same harness; a tiny random checkpoint unless the
    user named a backend or a checkpoint."""
    from track2_voice.backends import create_backend
    from track2_voice.devtools.turn_clock import load_utterance, summarize
    from track2_voice.devtools.turn_creature import time_creature
    from track2_voice.frames import SAMPLE_RATE

    utterances = [load_utterance(f, SAMPLE_RATE, settings.speech_db) for f in files]
    voice = cfg.voice
    with tempfile.TemporaryDirectory(prefix="creature-tiny-") as tmp:
        if args.backend is None and not args.hf_repo:
            from track2_voice.devtools.checkpoint_mlx import write_tiny_mlx_checkpoint

            write_tiny_mlx_checkpoint(Path(tmp), dim=128, layers=2, seed=0)
            voice = voice.model_copy(
                update={"backend": "mlx", "mlx": voice.mlx.model_copy(update={"hf_repo": tmp})}
            )
            # its random Mimi decodes to near-digital silence (~1e-11): any output frame counts
            settings = replace(settings, audible_db=ANY_OUTPUT_DB)
            what = (
                "backend mlx with a tiny RANDOM checkpoint (dim 128, 2 layers), which decodes to "
                "silence, so its first output frame after the end of speech counts: the fast "
                "loop's mechanics (frame + step), not Moshi's reply (real weights give that)"
            )
        else:
            if args.backend is None:  # a checkpoint without a backend: the mlx one
                voice = voice.model_copy(update={"backend": "mlx"})
            repo = getattr(voice, voice.backend, None)
            what = f"backend {voice.backend}" + (
                f", checkpoint {repo.hf_repo}" if getattr(repo, "hf_repo", None) else ""
            )

        def show(t) -> None:
            lat = f"{t.latency_ms:7.0f} ms" if t.latency_ms is not None else "  no reply"
            print(f"creature {t.name:24s} {lat}", flush=True)

        print(f"creature: {len(utterances)} utterances at real time ({what}) ...", flush=True)
        turns = asyncio.run(
            time_creature(create_backend(voice), voice, utterances, settings, on_turn=show)
        )
    return {
        "system": "creature",
        "describe": {"voice": what},
        "settings": asdict(settings),
        "turns": [asdict(t) for t in turns],
        "summary": summarize(turns),
    }
