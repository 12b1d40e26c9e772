"""Runs the example robot (examples/robot_client.py, a fake arm) in-process on its own thread,
for `creature demo --robot`. It talks to the robot channel over a real WebSocket."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "robot_client.py"
STOP_WAIT_S = 3.0


def load_example():
    """The examples/robot_client.py module (it ships in the source tree, not the wheel)."""
    if not EXAMPLE.exists():
        raise FileNotFoundError(
            f"{EXAMPLE}: the example robot is not here; run it from a source checkout"
        )
    spec = importlib.util.spec_from_file_location("creature_example_robot", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


class InProcessRobot:
    def __init__(self, url: str, token: str, delay_s: float = 1.0, **kw) -> None:
        self.robot = load_example().FakeRobot(url, token, delay_s, **kw)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="example-robot", daemon=True)

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._started.set()
        self.loop.run_until_complete(self.robot.run())
        self.loop.close()

    def start(self, wait_connected_s: float = 5.0) -> InProcessRobot:
        self._thread.start()
        self._started.wait()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(self.robot.connected.wait(), wait_connected_s), self.loop
        )
        fut.result(wait_connected_s + 1)
        return self

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.robot.stop)
        self._thread.join(STOP_WAIT_S)
