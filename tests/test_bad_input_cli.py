"""Every bad input an unlucky user gave the CLI: one clear line naming the file, key or flag,
exit code 2, no traceback."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import creature


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "a_dir").mkdir()
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "not_a_db.sqlite3").write_text("this is not SQLite\n" * 100)
    (d / "ceil.yaml").write_text("voice:\n  lipsync:\n    ceil_db: -40\n")
    sf.write(d / "ok.wav", np.zeros(24000, np.float32), 24000)
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
    "nan_floor": (["config", "--set", "voice.lipsync.floor_db=.nan"], "finite number"),
    "nan_per_ip_rate": (["config", "--set", "face.limits.per_ip_rate=.nan"], "finite number"),
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
