"""Every script in ``benchmarks/`` still runs: each with ``--short`` (seconds of the same work;
figures printed, not judged, JSON to a temporary file; ``benchmarks/short_mode.py``).

Why: benchmarks are run by hand now and then, so one can rot unseen (``face_fanout.py``
crashed for weeks: its clients, all from one address, met the per-address connection rate
limit added after it last ran). Each run is bounded; the scripts that need a helper
environment, a browser or an optional stack say so through ``require`` (a failure under CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.short_mode import NOT_A_BENCHMARK
from tests.conftest import ROOT, USER_XDG_STATE_HOME, require, require_module, require_tool

BENCHMARKS = ROOT / "benchmarks"


def _user_env_ready(module: str, what: str, how: str) -> Callable[[], None]:
    def check() -> None:
        import importlib

        from orchestrator.state_dir import default_state_dir

        env_mod = importlib.import_module(module)
        with pytest.MonkeyPatch.context() as mp:
            if USER_XDG_STATE_HOME:
                mp.setenv("XDG_STATE_HOME", USER_XDG_STATE_HOME)
            else:
                mp.delenv("XDG_STATE_HOME", raising=False)
            env = env_mod.default_venv(default_state_dir())
        require(f"{what} at {env}", env_mod.is_ready(env), how)

    return check


def _modules(*names: str) -> Callable[[], None]:
    return lambda: [require_module(n) for n in names] and None


def _planner_env() -> None:
    from orchestrator.cli.commands.planner import PLANNER_ENV
    from tests.conftest import user_state_dir

    env = PLANNER_ENV.path(user_state_dir())
    require(
        f"the planner's environment at {env}", PLANNER_ENV.is_ready(env), "creature planner setup"
    )


def _browser() -> None:
    require_module("playwright.sync_api")
    require("Chromium at /usr/bin/chromium", Path("/usr/bin/chromium").exists(), "apt chromium")


@dataclass(frozen=True)
class Smoke:
    needs: Callable[[], None] = lambda: None
    timeout_s: float = 180.0
    result: str | None = None  # the JSON it writes (default: SCRIPT.json)
    marks: tuple = ()


SMOKES: dict[str, Smoke] = {
    "attacks.py": Smoke(timeout_s=240.0),
    "av_sync.py": Smoke(_browser, marks=(pytest.mark.browser,)),
    "body_reachy_mini.py": Smoke(
        _user_env_ready(
            "orchestrator.cli.reachy_env",
            "the Reachy Mini environment",
            "creature body reachy-mini --setup",
        ),
        timeout_s=300.0,
        marks=(pytest.mark.slow,),
    ),
    "cascade_vs_creature.py": Smoke(
        _user_env_ready(
            "orchestrator.cli.cascade_env",
            "the cascade's environment",
            "creature cascade --setup-only",
        ),
        timeout_s=420.0,
        result="cascade.json",
        marks=(pytest.mark.slow,),
    ),
    "cluster.py": Smoke(
        _user_env_ready(
            "orchestrator.cli.ray_env",
            "Ray Serve's environment",
            "creature model-server --ray-setup",
        ),
        timeout_s=480.0,
        marks=(pytest.mark.ray, pytest.mark.torch, pytest.mark.slow),
    ),
    "dialogue.py": Smoke(),
    "echo.py": Smoke(_modules("livekit.rtc", "pyroomacoustics")),
    "face_fanout.py": Smoke(),
    "fast_loop.py": Smoke(_modules("moshi_mlx"), marks=(pytest.mark.mlx,)),
    "intents.py": Smoke(),
    "interpret.py": Smoke(_modules("moshi", "torch"), 300.0, marks=(pytest.mark.torch,)),
    "planner.py": Smoke(_planner_env, 300.0, marks=(pytest.mark.slow,)),
    "remote_loop.py": Smoke(_modules("moshi", "torch"), marks=(pytest.mark.torch,)),
    "sessions.py": Smoke(_modules("moshi", "torch"), 300.0, marks=(pytest.mark.torch,)),
    "slow_loop.py": Smoke(),
    "soak.py": Smoke(timeout_s=120.0),
    "telephony.py": Smoke(),
    "telephony_attacks.py": Smoke(timeout_s=240.0),
    "text_lead.py": Smoke(result="text_lead_replay.json"),
    "transcript.py": Smoke(lambda: require_tool("espeak-ng") and None, 300.0),
    "visemes.py": Smoke(lambda: require_tool("espeak-ng") and None),
}


def test_every_benchmark_script_has_a_smoke_run() -> None:
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - NOT_A_BENCHMARK
    assert scripts == set(SMOKES), "add the new benchmark to SMOKES (and give it --short)"


@pytest.mark.parametrize(
    "script", [pytest.param(k, marks=v.marks) for k, v in sorted(SMOKES.items())]
)
def test_the_benchmark_runs_in_its_short_mode(script: str) -> None:
    smoke = SMOKES[script]
    smoke.needs()
    # its own short temporary directory: the short JSON lands there (TMPDIR), and Ray's
    # socket paths stay under their 107-byte limit
    tmp = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"TMPDIR": str(tmp), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    # where the helper environments were built: the user's state directory, not the tests' own
    if USER_XDG_STATE_HOME:
        env["XDG_STATE_HOME"] = USER_XDG_STATE_HOME
    else:
        env.pop("XDG_STATE_HOME", None)
    try:
        r = subprocess.run(
            [sys.executable, str(BENCHMARKS / script), "--short"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=smoke.timeout_s,
        )  # fmt: skip
        assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
        written = tmp / "creature-bench-short" / (smoke.result or script.replace(".py", ".json"))
        assert written.is_file(), f"no {written.name}: {r.stdout[-2000:]}"
        assert json.loads(written.read_text()), "an empty result"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_short_run_leaves_the_committed_results_alone() -> None:
    """``--short`` figures are not judged, so they never replace a real run's."""
    import argparse

    from benchmarks import short_mode

    def parse(argv: list[str]) -> argparse.Namespace:
        ap = argparse.ArgumentParser()
        ap.add_argument("--json", default=str(BENCHMARKS / "results" / "x.json"))
        ap.add_argument("--frames", type=int, default=250)
        return short_mode.parse(ap, argv, out="json", frames=10)

    args = parse(["--short"])
    assert args.frames == 10 and Path(args.json) == short_mode.short_dir() / "x.json"
    args = parse(["--short", "--frames", "7", "--json", "/x/y.json"])
    assert args.frames == 7 and args.json == "/x/y.json"  # what is given is kept
    args = parse([])
    assert args.frames == 250 and Path(args.json) == BENCHMARKS / "results" / "x.json"


def test_the_comparison_reads_every_number_of_a_result_by_its_path() -> None:
    """``benchmarks/compare.py`` judges a change by every figure its benchmarks write."""
    from benchmarks.compare import compare, figures

    doc = {"p99_ms": 4.0, "ok": True, "runs": [{"ms": 2}, {"ms": 3}], "name": "x"}
    assert figures(doc) == {"p99_ms": 4.0, "runs[0].ms": 2.0, "runs[1].ms": 3.0}
    table = compare([{"a": 2.0}, {"a": 4.0}], [{"a": 6.0}, {"a": 6.0}])
    assert table == {"a": {"before": 3.0, "after": 6.0, "ratio": 2.0}}
