"""Shared fixtures. Under CI (CI=true, 1 or yes) a missing tool is a failure, never a skip."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# CI=true (or 1 / yes, any case), as CI services set it: everything must be installed there
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
# the creature's state directory (outbox, records, secrets) defaults to $XDG_STATE_HOME/creature:
# tests and the CLI runs they start must never touch the user's own (the cascade's environment,
# built there by .ci/install, is only run, found through USER_XDG_STATE_HOME; kept in the
# environment because this file is imported twice, as conftest and as tests.conftest)
USER_XDG_STATE_HOME = (
    os.environ.setdefault("CREATURE_TEST_USER_XDG_STATE_HOME", os.environ.get("XDG_STATE_HOME", ""))
    or None
)
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="creature-test-state-")
# moshi compiles a few small ops with torch.compile on first use, which costs seconds for
# every new batch shape on a CPU and nothing the tests check; they run eager (set before
# any test imports moshi; the CLI subprocesses inherit it)
os.environ.setdefault("NO_TORCH_COMPILE", "1")


def require(what: str, ok: bool, reason: str = "") -> None:
    """The one gate for what a test needs from the machine (a program, a browser, a package,
    a machine without a sound card): without it the test skips locally and fails under CI,
    where a missing tool must never pass as a silent skip. ``reason``: why, or how to get it."""
    if ok:
        return
    detail = f" ({reason})" if reason else ""
    if IN_CI:
        pytest.fail(f"{what} is required under CI but missing{detail}", pytrace=False)
    pytest.skip(f"{what} not available{detail}")


def user_state_dir() -> Path:
    """The user's own state directory, where .ci/install built the helper environments
    (cascade, Ray, planner, bodies); the tests' own state directory is a fresh temporary one."""
    base = USER_XDG_STATE_HOME or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "creature"


def require_tool(name: str) -> str:
    """The path of program ``name``, via ``require``."""
    path = shutil.which(name)
    require(f"the '{name}' program", path is not None)
    return path  # type: ignore[return-value]


def require_module(name: str, install: str = ""):
    """Import module ``name`` (dotted names too), via ``require``."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        require(f"the Python module {name}", False, install or str(e))


def creature(*args: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None):
    """Run the real CLI in a subprocess, from this checkout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or ROOT,
    )


def espeak_wav(path: Path, text: str, rate: int | None = None) -> Path:
    """Real speech from espeak-ng, optionally resampled with sox to an odd rate."""
    exe = require_tool("espeak-ng")
    raw = path.with_suffix(".raw.wav") if rate else path
    subprocess.run([exe, "-w", str(raw), text], check=True, capture_output=True)
    if rate:
        sox = require_tool("sox")
        subprocess.run([sox, str(raw), "-r", str(rate), str(path)], check=True)
    return path


@contextmanager
def torch_on_one_thread() -> Iterator[None]:
    """One torch intra-op thread: on a shared 2-core machine two spinning threads per process
    cost more than they give (18 ms a tiny frame with one, 340 ms with the default here); the
    tests compare tokens, not speed."""
    torch = require_module("torch")
    require_module("moshi")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    """``torch_on_one_thread`` for a whole module (``pytest.mark.usefixtures``)."""
    with torch_on_one_thread():
        yield


@pytest.fixture(scope="session")
def random_tiny(tmp_path_factory) -> Path:
    """The tiny random PyTorch Moshi whose Mimi hears its input (``creature checkpoint random
    --size tiny --seed 3``), written once for every module that serves or compares it."""
    from orchestrator.cli.main import main

    d = tmp_path_factory.mktemp("random-tiny")
    with torch_on_one_thread():  # session fixtures come before a module's one_torch_thread
        assert main(["checkpoint", "random", str(d), "--size", "tiny", "--seed", "3"]) == 0
    return d


@pytest.fixture(scope="session")
def stt_tiny(tmp_path_factory) -> Path:
    """A tiny Kyutai STT checkpoint in the published layout (seed 1), written once for the
    in-process and the remote transcript tests."""
    require_module("moshi", "the torch extra (README)")
    from track2_voice.devtools.checkpoint_stt import write_stt_checkpoint

    out = tmp_path_factory.mktemp("stt")
    with torch_on_one_thread():
        write_stt_checkpoint(out, seed=1)
    return out


@pytest.fixture(scope="session")
def hibiki_tiny(tmp_path_factory) -> Path:
    """A tiny Hibiki-Zero-layout checkpoint (``creature checkpoint tiny --model hibiki``),
    written once for the interpreter tests."""
    from tests.hibiki_support import write_tiny_hibiki

    with torch_on_one_thread():
        return write_tiny_hibiki(tmp_path_factory.mktemp("hibiki-tiny"))


@pytest.fixture(scope="session")
def hibiki_eos(hibiki_tiny, tmp_path_factory) -> Path:
    """``hibiki_tiny`` whose text head ends a passage about every third frame."""
    from tests.hibiki_support import with_frequent_eos

    with torch_on_one_thread():
        return with_frequent_eos(hibiki_tiny, tmp_path_factory.mktemp("eos") / "ckpt")


@pytest.fixture(scope="session")
def demo_once(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One ``creature demo --once --no-face --robot`` (the shipped scene, 17 s of real time)
    for every test that reads what the demo printed and recorded: (the run, its record)."""
    d = tmp_path_factory.mktemp("demo-once")
    record = d / "demo.jsonl"
    r = creature(
        "demo", "--once", "--no-face", "--robot", "--robot-delay", "0.5",
        "--record", str(record), "--set", "slow_loop.robot.port=0",
        "--set", f"slow_loop.outbox.path={d / 'outbox.sqlite3'}",
        timeout=120,
    )  # fmt: skip
    return r, record


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("speech")
    return espeak_wav(
        d / "speech.wav", "Hello creature, could you pick up the red cup for me please?"
    )


@pytest.fixture(scope="session")
def speech_pcm(speech_wav) -> np.ndarray:
    from track2_voice.audio.devices import load_audio

    return load_audio(speech_wav)


def write_tiny_mlx(d: Path, dim: int, layers: int, seed: int, quantize: int | None = None):
    """``creature checkpoint tiny --backend mlx`` into ``d`` (bf16, and q4 or q8 weights too
    with ``quantize``): the user-facing command, as a user would run it."""
    more = ["--quantize", str(quantize)] if quantize else []
    args = ["--dim", str(dim), "--layers", str(layers), "--seed", str(seed), *more]
    return creature("checkpoint", "tiny", str(d), "--backend", "mlx", *args)


@pytest.fixture(scope="session")
def tiny_mlx(tmp_path_factory) -> dict[str, Path]:
    """Tiny random moshi_mlx checkpoints (bf16 + q4), written by the user-facing command."""
    require_module("moshi_mlx")
    out = {}
    for name, quantize in (("bf16", None), ("q4", 4)):
        d = tmp_path_factory.mktemp(f"tiny-{name}")
        r = write_tiny_mlx(d, dim=128, layers=2, seed=1, quantize=quantize)
        assert r.returncode == 0, r.stderr
        out[name] = d
    return out


@pytest.fixture(autouse=True)
def no_creature_log_handler_left() -> Iterator[None]:
    """An in-process CLI call puts the creature's stderr handler on the root logger. Pytest
    closes that stderr after the test, so a later test's log lines would fail to write, and
    the handler's redaction (it rewrites the record) would change what later tests capture."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_creature", False):
            root.removeHandler(h)
