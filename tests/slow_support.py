"""Helpers for slow-loop tests: config, speaking into a hub, waiting, the example robot."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from orchestrator.bus import Bus
from orchestrator.config import load_config
from orchestrator.slow_config import SlowLoopConfig
from track2_voice.events import FrameEvent


def slow_cfg(tmp_path: Path, **overrides) -> SlowLoopConfig:
    base = {
        "slow_loop.robot.port": 0,
        "slow_loop.outbox.path": str(tmp_path / "outbox.sqlite3"),
    }
    base.update({f"slow_loop.{k}": v for k, v in overrides.items()})
    return load_config(overrides=base).slow_loop


class LinkToARobot:
    """Where the dispatcher sends messages: a list (a robot arm cannot exist here)."""

    name = "scripted"

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def send(self, message: dict) -> bool:
        self.messages.append(message)
        return True


def frame(i: int, text: str | None = None, mouth: float = 0.5) -> FrameEvent:
    return FrameEvent(
        index=i,
        t=time.monotonic(),
        mouth=mouth,
        rms_db=-30.0,
        text=text,
        pcm=np.zeros(1920, np.float32),
    )


def speak(hub: Bus, text: str, start: int = 0) -> int:
    """Publish the text one word a frame, as the fast loop would; returns the next index."""
    i = start
    for word in text.split():
        hub.publish(frame(i, " " + word))
        i += 1
    return i


def wait_until(pred, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(slow) -> dict[str, str]:
    return {c.id: c.status for c in slow.run_sync(lambda: slow.outbox.all_calls())}
