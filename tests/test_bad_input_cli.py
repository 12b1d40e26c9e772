"""Every bad input an unlucky user gave the CLI: one clear line naming the file, key or flag,
exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, creature


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "a_dir").mkdir()
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "not_a_db.sqlite3").write_text("this is not SQLite\n" * 100)
    (d / "ceil.yaml").write_text("voice:\n  lipsync:\n    ceil_db: -40\n")
    sf.write(d / "ok.wav", np.zeros(24000, np.float32), 24000)
    # 50 MB of valid YAML once took 400 s and 3.7 GB to load: over 1 MiB is refused unparsed
    (d / "huge.yaml").write_text("padding:\n" + "  - [1, 2, 3, 4, 5, 6, 7, 8]\n" * 100_000)
    (d / "cut.wav").write_bytes((d / "ok.wav").read_bytes()[:20000])
    return d


NO_ROBOT = ["--set", "slow_loop.robot.port=0", "--no-face"]
CASES = {
    "config_is_a_directory": (["config", "--config", "{d}/a_dir"], "a_dir: is a directory"),
    "config_is_binary": (["config", "--config", "{d}/binary.yaml"], "binary.yaml: not a text"),
    "outbox_not_a_database": (
        ["demo", "--once", *NO_ROBOT, "--set", "slow_loop.outbox.path={d}/not_a_db.sqlite3"],
        "slow_loop.outbox.path: ",
    ),
    "outbox_is_a_directory": (
        ["demo", "--once", *NO_ROBOT, "--set", "slow_loop.outbox.path={d}/a_dir"],
        "slow_loop.outbox.path: ",
    ),
    "outbox_folder_missing": (
        ["demo", "--once", *NO_ROBOT, "--set", "slow_loop.outbox.path={d}/nope/o.sqlite3"],
        "does not exist",
    ),
    "output_is_a_directory": (
        ["run", "--input", "{d}/ok.wav", "--output", "{d}/a_dir"],
        "--output {d}/a_dir: is a directory",
    ),
    "missing_certfile": (
        ["serve", "--face-port", "0", "--max-frames", "1", "--set", "face.ssl_certfile={d}/x"],
        "face.ssl_certfile: ",
    ),
    "unwritable_state_dir": (
        ["demo", "--once", *NO_ROBOT, "--set", "state_dir=/proc/creature"],
        "state_dir: cannot use /proc/creature",
    ),
    "unwritable_phone_state_dir": (
        ["serve", "--face-port", "0", "--max-frames", "1", "--set", "phone.state_dir=/proc/x"],
        "phone.state_dir: ",
    ),
    "config_too_large": (["config", "--config", "{d}/huge.yaml"], "huge.yaml: larger than"),
    "hf_repo_mistyped_dir_torch": (
        ["demo", "--once", *NO_ROBOT, "--backend", "torch", "--hf-repo", "{d}/no_such_ckpt"],
        "{d}/no_such_ckpt: no such directory",
    ),
    "hf_repo_mistyped_dir_mlx": (
        ["demo", "--once", *NO_ROBOT, "--backend", "mlx", "--hf-repo", "{d}/a_dir/tiny"],
        "{d}/a_dir/tiny: no such directory",
    ),
    "nan_floor": (["config", "--set", "voice.lipsync.floor_db=.nan"], "finite number"),
    "nan_per_ip_rate": (["config", "--set", "face.limits.per_ip_rate=.nan"], "finite number"),
    "nan_viseme_gate": (
        ["config", "--set", "face.visemes.gate_db=nan"],
        "command line (face.visemes.gate_db): face.visemes.gate_db: Input should be a finite",
    ),
    "inf_telephony_lead": (
        ["config", "--set", "telephony.lead_ms=.inf"],
        "command line (telephony.lead_ms): telephony.lead_ms: Input should be a finite",
    ),
    "nan_model_server_flag": (
        ["model-server", "--open", "--checkpoint", "{d}/no_ckpt", "--temp", "nan"],
        "creature: error: --temp: Input should be a finite number",
    ),
    "inverted_range_blames_the_flag": (
        ["config", "--set", "voice.lipsync.floor_db=-20"],
        "command line (voice.lipsync.floor_db): voice.lipsync: ",
    ),
    "inverted_range_names_both": (
        ["config", "--config", "{d}/ceil.yaml", "--set", "voice.lipsync.floor_db=-35"],
        "{d}/ceil.yaml and command line (voice.lipsync.floor_db)",
    ),
    "negative_max_frames": (["run", "--input", "{d}/ok.wav", "--max-frames", "-1"], "--max-frames"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line_and_exit_2(case, files, tmp_path):
    args, expected = CASES[case]
    args = [a.format(d=files) for a in args]
    r = creature(*args, env={"XDG_STATE_HOME": str(tmp_path)}, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert expected.format(d=files) in r.stderr, r.stderr[-2000:]


def test_a_truncated_wav_is_reported(files, tmp_path):
    r = creature(
        "run",
        "--input",
        str(files / "cut.wav"),
        "--max-frames",
        "2",
        env={"XDG_STATE_HOME": str(tmp_path)},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{files / 'cut.wav'}: truncated WAV" in r.stderr


# -- the command line itself -----------------------------------------------------------------
TWO_LINES = {
    "negative_frames_serve": (["serve", "--max-frames", "-3"], "creature serve", "--max-frames"),
    "unknown_flag_of_a_sub_command": (["serve", "--bogus"], "creature serve", "--bogus"),
    "unknown_flag_two_levels_down": (
        ["checkpoint", "tiny", "x", "--bogus"],
        "creature checkpoint tiny",
        "--bogus",
    ),
}


@pytest.mark.parametrize("case", list(TWO_LINES))
def test_a_bad_flag_is_the_command_usage_line_and_one_error_line(case, tmp_path):
    args, prog, flag = TWO_LINES[case]
    r = creature(*args, env={"XDG_STATE_HOME": str(tmp_path)}, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(f"usage: {prog} "), r.stderr
    assert lines[1].startswith(f"{prog}: error: ") and flag in lines[1], r.stderr


def test_checkpoint_into_an_existing_file_is_one_line(tmp_path):
    f = tmp_path / "taken"
    f.write_text("not a directory\n")
    for action in (["tiny"], ["random", "--size", "tiny"]):
        r = creature("checkpoint", *action, str(f), timeout=60, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip() == (
            f"creature: error: {f}: exists and is not a directory; expected DIR"
        ), r.stderr


BLOCK_MODULES = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
"""


@pytest.mark.parametrize(
    ("blocked", "args", "install"),
    [
        ("torch", ["checkpoint", "tiny", "{d}/ck", "--backend", "torch"], "creature[torch-cpu]"),
        ("mlx", ["checkpoint", "tiny", "{d}/ck", "--backend", "mlx"], "creature[mlx]"),
        ("moshi", ["checkpoint", "random", "{d}/ck"], "moshi==0.2.13"),
        ("torch", ["demo", "--once", *NO_ROBOT, "--backend", "torch", "--hf-repo", "{d}"], "torch"),
        ("matplotlib", ["report", "{d}/rec.jsonl"], "creature[report]"),
    ],
)
def test_a_missing_optional_stack_is_named_with_its_install_command(
    blocked, args, install, tmp_path
):
    """The stack is made missing for real: a ``sitecustomize`` refuses to import it."""
    (tmp_path / "sitecustomize.py").write_text(BLOCK_MODULES.format(blocked={blocked}))
    if blocked == "matplotlib":  # a real record to draw
        sf.write(tmp_path / "in.wav", np.zeros(4800, np.float32), 24000)
        made = creature(
            "run",
            "--input",
            str(tmp_path / "in.wav"),
            "--record",
            str(tmp_path / "rec.jsonl"),
            env={"XDG_STATE_HOME": str(tmp_path)},
        )
        assert made.returncode == 0, made.stderr[-2000:]
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "XDG_STATE_HOME": str(tmp_path)}
    r = creature(*[a.format(d=tmp_path) for a in args], env=env, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "not installed" in last and blocked in last and install in last, r.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    """``creature intent --tool | head -1``: the reader went away; no BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "intent", "--tool"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        os.close(write_end)
    assert r.returncode == 141, r.stderr
    assert r.stderr == "", r.stderr


def test_yaml_is_read_with_libyaml_when_present():
    import yaml

    from orchestrator import yaml_file

    assert hasattr(yaml, "CSafeLoader"), "PyYAML without libyaml"
    assert yaml_file.SafeLoader is yaml.CSafeLoader
