"""State in one place: a restart from another directory resumes the queued call; records are
never truncated and reach the disk each second; the outbox forgets old settled calls."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time

from orchestrator.brain.calls import CallStatus
from orchestrator.brain.outbox import Outbox
from orchestrator.bus import Bus
from orchestrator.data_files import CONFIGS_DIR
from orchestrator.runtime.record import JsonlRecorder, RecordError
from orchestrator.state_dir import migrate_phone_files, record_path
from tests.conftest import creature
from tests.slow_support import frame, wait_until


def short_scene(tmp_path):
    """The shipped scene's one line that commits to a task, as a scene of its own."""
    d = tmp_path / "scene"
    d.mkdir()
    shutil.copy(CONFIGS_DIR / "scenes" / "greeting" / "02_agree.wav", d / "agree.wav")
    (d / "scene.yaml").write_text(
        "name: agree\nvoice: en-us+f3\nspeed: 150\ntail_s: 0.5\nlines:\n"
        '  - text: "Sure, I\'ll pick up the red cup."\n    audio: agree.wav\n    after_s: 0.3\n'
    )
    return d / "scene.yaml"


def test_a_restart_from_another_directory_resumes_the_queued_call(tmp_path):
    scene, state = short_scene(tmp_path), tmp_path / "state"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    env = {"XDG_STATE_HOME": str(state)}
    common = ["demo", "--once", "--no-face", "--scene", str(scene)]
    common += ["--set", "slow_loop.robot.port=0", "--set", "slow_loop.finish_wait_s=5"]
    first = creature(*common, "--set", "slow_loop.robot.enabled=false", env=env, cwd=a)
    assert first.returncode == 0, first.stderr[-2000:]
    s1 = json.loads(first.stdout.strip().splitlines()[-1])
    outbox = state / "creature" / "outbox.sqlite3"
    (queued,) = sqlite3.connect(outbox).execute("SELECT id, status FROM calls").fetchall()
    assert queued[1] == "queued"

    second = creature(*common, "--robot", "--robot-delay", "0.1", env=env, cwd=b)
    assert second.returncode == 0, second.stderr[-2000:]
    s2 = json.loads(second.stdout.strip().splitlines()[-1])
    rows = dict(sqlite3.connect(outbox).execute("SELECT id, status FROM calls").fetchall())
    assert rows[queued[0]] == "succeeded"  # the first run's call, done by the second run
    assert list(a.iterdir()) == [] and list(b.iterdir()) == []  # nothing in either cwd
    assert s1["record"] != s2["record"]
    for s in (s1, s2):
        assert s["record"].startswith(str(state / "creature" / "records" / "demo-"))
    resumed = [json.loads(x) for x in open(s2["record"]) if '"outbox_resumed"' in x]
    assert resumed and queued[0] in resumed[0]["open"]


def test_a_record_is_never_truncated_and_reaches_the_disk_each_second(tmp_path):
    old = tmp_path / "session.jsonl"
    old.write_text('{"kind": "evidence"}\n')
    try:
        JsonlRecorder(old, Bus())
        raise AssertionError("opened an existing record")
    except RecordError as e:
        assert "never overwritten" in str(e)
    path = record_path(tmp_path, str(old), "demo")
    assert path != old and path.parent == tmp_path
    assert old.read_text() == '{"kind": "evidence"}\n'

    bus = Bus()
    rec = JsonlRecorder(path, bus)
    try:
        t0 = time.monotonic()
        bus.publish(frame(0, " hello"))
        # not closed, not a full buffer: the flush timer gets it to the OS (kill -9 safe)
        wait_until(lambda: path.stat().st_size > 0, 3.0, "the record on disk")
        assert time.monotonic() - t0 < 2.5
    finally:
        rec.close()
    assert json.loads(path.read_text().splitlines()[0])["kind"] == "frame"


def test_the_outbox_forgets_settled_calls_older_than_the_limit(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    for i, status in enumerate([CallStatus.SUCCEEDED, CallStatus.FAILED, CallStatus.QUEUED]):
        box.add({"id": f"old{i}"})
        if status is not CallStatus.QUEUED:
            box.update(f"old{i}", CallStatus.SENT)
            box.update(f"old{i}", status)
    box.add({"id": "fresh"})
    box.update("fresh", CallStatus.REJECTED)
    long_ago = time.time() - 30 * 24 * 3600
    box._db.execute("UPDATE calls SET updated = ? WHERE id LIKE 'old%'", (long_ago,))
    assert box.prune(7 * 24 * 3600) == 2
    assert [c.id for c in box.all_calls()] == ["old2", "fresh"]  # open and recent stay
    assert box.history("old0") == []
    assert box.prune(0) == 0  # 0 keeps everything
    box.close()


def test_the_phone_token_moves_from_the_old_place_once(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "phone-token").write_text("bookmarked-token-123\n")
    assert migrate_phone_files(new, old) == ["phone-token"]
    assert (new / "phone-token").read_text() == "bookmarked-token-123\n"
    assert (new / "phone-token").stat().st_mode & 0o077 == 0
    assert migrate_phone_files(new, old) == []  # never over a newer one


def _mode(p) -> int:
    return p.stat().st_mode & 0o777


def test_the_outbox_and_its_wal_and_shm_are_owner_only(tmp_path):
    old = os.umask(0o022)  # a common umask: files would be 0644 unless made private
    try:
        box = Outbox(tmp_path / "outbox.sqlite3")
        box.prune(1)  # a write: the -wal and -shm exist while the outbox is open
        files = sorted(tmp_path.glob("outbox.sqlite3*"))
        assert [f.name for f in files] == [
            "outbox.sqlite3",
            "outbox.sqlite3-shm",
            "outbox.sqlite3-wal",
        ]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        os.umask(old)


def test_a_record_is_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        rec = JsonlRecorder(tmp_path / "r.jsonl", Bus())
        rec.close()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "r.jsonl") == 0o600


def test_state_files_and_dirs_are_private_whatever_existed(tmp_path):
    """An existing state directory made under a loose umask (or by an older version): after
    one run its directory, records, outbox, secrets and certificate are 0700 / 0600."""
    state = tmp_path / "state" / "creature"
    (state / "records").mkdir(parents=True)
    os.chmod(state, 0o755)
    os.chmod(state / "records", 0o755)
    old_record = state / "records" / "demo-old.jsonl"
    old_record.write_text("{}\n")
    for name in ("outbox.sqlite3", "robot-token", "phone-cert.pem", "phone-key.pem"):
        (state / name).touch()
    sqlite3.connect(state / "outbox.sqlite3").close()
    (state / "robot-token").write_text("x" * 32 + "\n")
    for f in [old_record, *state.iterdir()]:
        if f.is_file():
            os.chmod(f, 0o644)
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    cmd = ["serve", "--face-port", "0", "--max-frames", "2", "--set", "slow_loop.robot.port=0"]
    r = creature(*cmd, "--record", str(state / "records" / "serve.jsonl"), env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    r = creature("demo", "--once", "--no-face", "--set", "slow_loop.robot.port=0", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    dirs = {state, state / "records"}
    files = {f for f in state.rglob("*") if f.is_file()}
    names = {f.name for f in files}
    assert {"phone-cert.pem", "phone-key.pem", "phone-token", "outbox.sqlite3"} <= names
    assert {"robot-token", "demo-old.jsonl", "serve.jsonl"} <= names
    assert any(n.startswith("demo-2") for n in names)
    loose = {str(p): oct(_mode(p)) for p in dirs if _mode(p) != 0o700}
    loose |= {str(p): oct(_mode(p)) for p in files if _mode(p) != 0o600}
    assert loose == {}


def test_a_shared_sticky_directory_is_refused_as_the_state_directory(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    r = creature("demo", "--once", "--no-face", "--set", f"state_dir={shared}")
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"state_dir: {shared} is a shared directory" in r.stderr
    assert _mode(shared) == 0o777  # left as it was


def test_every_state_file_the_creature_writes_is_made_private_at_start():
    from orchestrator.cli.commands.model_server import TOKEN_FILE as MODEL_SERVER_TOKEN
    from orchestrator.runtime.telephony_link import TOKEN_FILE as TELEPHONY_TOKEN
    from orchestrator.state_dir import PHONE_FILES, PRIVATE_FILES, ROBOT_TOKEN, WEBHOOK_SECRET

    names = {*PHONE_FILES, ROBOT_TOKEN, WEBHOOK_SECRET, TELEPHONY_TOKEN, MODEL_SERVER_TOKEN}
    assert names <= set(PRIVATE_FILES)


def test_creatures_starting_together_all_get_the_state_directory(tmp_path):
    """Each checks that it can write there with a probe of its own: with one shared probe name,
    one process unlinked the other's probe and that one failed to start (seen with several
    creatures joining one model server at once)."""
    from concurrent.futures import ProcessPoolExecutor

    d = str(tmp_path / "state")
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_open_state, [d] * 64))
    assert results == [d] * 64


def _open_state(d: str) -> str:
    from orchestrator.state_dir import state_dir

    for _ in range(50):
        state_dir(d)
    return d
