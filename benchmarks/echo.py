"""Echo cancellation in simulated rooms: how much of the creature's own voice is left in the mic,
whether the VAD takes it for the user, and what the canceller costs per 80 ms frame.

    python benchmarks/echo.py [--json benchmarks/results/echo.json]

Each room (pyroomacoustics image-source impulse responses: damped, living room, reverberant;
a speaker a hand's width from the mic; the sound card's latency on top) runs the closed loop a
robot lives in: the real fast loop with the replay backend's greeting scene plays through the
room's speaker; the mic hears it one frame plus the latency later, with a user (espeak-ng)
speaking over the creature's first line (double talk). Reported per room, with and without the
canceller: VAD false triggers (starts outside the user's speech), whether the user was heard,
ERLE over the frames where only the creature talks (after 2 s), the delay the canceller measured.
Also: false triggers when the sound card's latency is misreported by +-40 ms, and the cost per
frame (CPU time of the loop's thread; wall time alongside) with the VAD's cost in the same run as
the baseline. Targets: ERLE >= 25 dB, 0 false triggers with the canceller.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import short_mode  # noqa: E402
from track2_voice.audio.devices import AudioSource, load_audio  # noqa: E402
from track2_voice.audio.echo import EchoCanceller  # noqa: E402
from track2_voice.backends.replay import ReplayBackend  # noqa: E402
from track2_voice.config import EchoConfig, VoiceConfig  # noqa: E402
from track2_voice.devtools.room import ROOMS, SimulatedRoom, impulse_response, rt60_s  # noqa: E402
from track2_voice.events import UserSpeechStarted  # noqa: E402
from track2_voice.frames import FRAME_MS, FRAME_SECONDS  # noqa: E402
from track2_voice.loop import FastLoop  # noqa: E402
from track2_voice.vad import UserSpeechDetector  # noqa: E402

FRAMES = 150
USER_AT_S = 1.8
TARGET_ERLE_DB = 25.0


class Events:
    def __init__(self) -> None:
        self.starts: list[float] = []

    def publish(self, e) -> None:
        if isinstance(e, UserSpeechStarted):
            self.starts.append(e.index * FRAME_SECONDS)

    def drops(self) -> dict:
        return {}


class Timed(AudioSource):
    """The canceller's source, with each frame's cleaning timed (CPU and wall)."""

    def __init__(self, inner: AudioSource, canceller: EchoCanceller) -> None:
        self.inner, self.canceller, self.realtime = inner, canceller, inner.realtime
        self.cpu_ms: list[float] = []
        self.wall_ms: list[float] = []
        self.frames: list[np.ndarray] = []

    def read(self):
        f = self.inner.read()
        if f is None:
            return None
        c0, w0 = time.thread_time(), time.perf_counter()
        f.pcm = self.canceller.process(f.pcm)
        self.cpu_ms.append((time.thread_time() - c0) * 1000)
        self.wall_ms.append((time.perf_counter() - w0) * 1000)
        self.frames.append(f.pcm)
        return f


def user_speech() -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "u.wav"
        text = "Could you please pick up the red cup for me?"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        return load_audio(wav) * 0.5


def scene(rir, spec, user, aec: bool, hint_error_ms: float = 0.0) -> dict:
    room = SimulatedRoom(
        rir, FRAMES, user=[(USER_AT_S, user)], device_delay_ms=spec.device_delay_ms
    )
    events = Events()
    if aec:
        canceller = EchoCanceller(
            EchoConfig(), device_delay_ms=FRAME_MS + spec.device_delay_ms + hint_error_ms
        )
        room.on_render = canceller.far
        mic = Timed(room.mic, canceller)
    else:
        mic, canceller = room.mic, None
    loop = FastLoop(ReplayBackend("greeting"), mic, room.speaker, events, VoiceConfig())
    try:
        loop.run()
    finally:
        loop.close()

    def in_user(t: float) -> bool:
        return any(a <= t <= b + 0.3 for a, b in room.user_spans)

    out = {
        "vad_false_triggers": sum(not in_user(t) for t in events.starts),
        "user_heard": any(in_user(t) for t in events.starts),
    }
    if canceller is not None:
        single = [
            j
            for j in range(int(2.0 / FRAME_SECONDS), FRAMES)
            if np.sqrt(np.mean(room.echo_frame(j) ** 2)) > 1e-3
            and not np.any(room.user_frame(j))
            and not in_user(j * FRAME_SECONDS)
        ]
        echo = sum(float(np.sum(room.mic_frame(j) ** 2)) for j in single)
        left = sum(float(np.sum(mic.frames[j] ** 2)) for j in single)
        out["erle_db"] = round(10 * np.log10(echo / left), 2)
        out["single_talk_frames"] = len(single)
        out["delay_estimate_ms"] = canceller.stats()["delay_estimate_ms"]
        out["cpu_ms"] = mic.cpu_ms
        out["wall_ms"] = mic.wall_ms
    return out


def pct(xs, q):
    return round(float(np.percentile(xs, q)), 3)


def room_figures(spec, user: np.ndarray) -> tuple[dict, list[float], list[float]]:
    """One room with and without the canceller, and with a misreported device latency; the
    room's figures and its per-frame canceller costs (CPU, wall)."""
    rir = impulse_response(spec)
    on = scene(rir, spec, user, aec=True)
    off = scene(rir, spec, user, aec=False)
    cpu, wall = on.pop("cpu_ms"), on.pop("wall_ms")
    misreported = {}
    for err in (-40.0, 40.0):
        r = scene(rir, spec, user, aec=True, hint_error_ms=err)
        misreported[f"{err:+.0f}ms"] = r["vad_false_triggers"]
    room = {
        "room": spec.name,
        "rt60_s": round(rt60_s(rir), 3),
        "device_delay_ms": spec.device_delay_ms,
        "with_aec": on,
        "without_aec": off,
        "false_triggers_latency_misreported": misreported,
    }
    return room, cpu, wall


def vad_costs(user: np.ndarray) -> list[float]:
    """The speech detector's CPU per frame (ms): the baseline the canceller is held to."""
    vad = UserSpeechDetector()
    speech = np.resize(user, FRAMES * 1920).reshape(FRAMES, 1920)
    costs = []
    for frame in speech:
        c0 = time.thread_time()
        vad.update(frame)
        costs.append((time.thread_time() - c0) * 1000)
    return costs


def summary(
    rooms: list[dict], cpu: list[float], wall: list[float], vad_cpu: list[float], load: tuple
) -> dict:
    erles = [r["with_aec"]["erle_db"] for r in rooms]
    false_on = sum(r["with_aec"]["vad_false_triggers"] for r in rooms)
    return {
        "frames_per_room": FRAMES,
        "rooms": rooms,
        "erle_db_min": min(erles),
        "vad_false_triggers_with_aec": false_on,
        "vad_false_triggers_without_aec": sum(
            r["without_aec"]["vad_false_triggers"] for r in rooms
        ),
        "user_heard_in_double_talk": all(r["with_aec"]["user_heard"] for r in rooms),
        "aec_cpu_ms_per_frame_p50": pct(cpu, 50),
        "aec_cpu_ms_per_frame_p99": pct(cpu, 99),
        "aec_wall_ms_per_frame_p50": pct(wall, 50),
        "aec_wall_ms_per_frame_p99": pct(wall, 99),
        "vad_cpu_ms_per_frame_p50": pct(vad_cpu, 50),
        "aec_to_vad_cpu_p50_ratio": round(pct(cpu, 50) / pct(vad_cpu, 50), 3),
        "aec_cpu_share_of_frame_p99": round(pct(cpu, 99) / FRAME_MS, 4),
        **short_mode.machine_load(load),
        "target": {"erle_db_min": TARGET_ERLE_DB, "vad_false_triggers_with_aec": 0},
        "meets_target": min(erles) >= TARGET_ERLE_DB and false_on == 0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "echo.json"))
    ap.add_argument("--rooms", type=int, default=len(ROOMS), help="how many of the rooms")
    args = short_mode.parse(ap, out="json", rooms=1)
    user = user_speech()
    load = os.getloadavg()
    rooms = []
    cpu: list[float] = []
    wall: list[float] = []
    for spec in ROOMS[: args.rooms]:
        room, room_cpu, room_wall = room_figures(spec, user)
        rooms.append(room)
        cpu += room_cpu
        wall += room_wall
    short_mode.write_figures(summary(rooms, cpu, wall, vad_costs(user), load), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
