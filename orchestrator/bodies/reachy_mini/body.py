"""The Reachy Mini body: calls (gesture, look_at, stop) and the creature's live look, turned
into one head and antenna target per control tick and sent to the robot's daemon.

One control thread owns the robot: at ``CONTROL_HZ`` it composes the look, the gesture in
progress, the speech sway and the listening nods (``motion.py``) and calls ``set_target``.
The asyncio side (the link) only swaps immutable values it reads (the newest look, the gesture,
the look_at direction, the hold after a stop), so nothing waits on the robot's socket but this
thread, and a ``cancel`` freezes the head on the very next tick.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from orchestrator.bodies.link import Call, Capability, Expression
from orchestrator.bodies.reachy_mini import motion
from orchestrator.bodies.reachy_mini.motion import GESTURE_SECONDS, Pose

log = logging.getLogger("body.reachy_mini")
KIND = "reachy-mini"
CONTROL_HZ = 50.0
LOOK_S = 0.8  # a look_at call succeeds once the head has had this long to turn
LOOK_HOLD_S = 4.0  # then the head goes back to following the user
STOP_HOLD_S = 2.0  # after a stop the head stays still this long, then eases back to the look
CAPABILITIES = [
    Capability("gesture", {"gesture": list(motion.GESTURES)}),
    Capability("look_at", {"object": [*motion.USER, *motion.DIRECTIONS]}),
    Capability("stop", {}),
]


@dataclass(frozen=True)
class Active:
    """A gesture in progress: its name and when it started (monotonic s)."""

    name: str
    t0: float


@dataclass
class FrameStats:
    """CPU per control tick (thread CPU time, so other threads and processes do not count)."""

    frames: int = 0
    cpu_s: float = 0.0
    worst_s: float = 0.0
    late: int = 0  # ticks that started more than one period late

    def add(self, cpu: float) -> None:
        self.frames += 1
        self.cpu_s += cpu
        self.worst_s = max(self.worst_s, cpu)

    def summary(self) -> dict[str, float]:
        mean = self.cpu_s / self.frames if self.frames else 0.0
        return {
            "frames": self.frames,
            "cpu_ms_per_frame": round(mean * 1000, 3),
            "cpu_ms_worst": round(self.worst_s * 1000, 3),
            "late_ticks": self.late,
        }


class ReachyBody:
    kind = KIND
    capabilities = CAPABILITIES

    def __init__(self, robot) -> None:  # a reachy_mini.ReachyMini
        from reachy_mini.utils import create_head_pose

        self.robot = robot
        self._pose = create_head_pose
        self.look = Expression()
        self.gesture: Active | None = None
        self.direction: tuple[tuple[float, float], float] | None = None  # (yaw, pitch), until
        self.hold_until = 0.0
        self.held: Pose | None = None
        self.sway = motion.SpeechSway()
        self.listening_since: float | None = None
        self.stats = FrameStats()
        self._rest = motion.look_pose(self.look)
        self._last = self._rest
        self._halt = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the link's side (asyncio) ----------------------------------------------------------------
    def express(self, expression: Expression) -> None:
        if expression.listening and not self.look.listening:
            self.listening_since = time.monotonic()
        elif not expression.listening:
            self.listening_since = None
        self.look = expression

    def halt(self) -> None:
        """Freeze the head where it is now (its present pose, not the last target, which a
        moving head is still catching up with); a gesture in progress ends on the next tick."""
        self.gesture = None
        self.direction = None
        self.hold_until = time.monotonic() + STOP_HOLD_S
        self._halt = True

    async def perform(self, call: Call) -> None:
        if call.action == "stop":
            self.halt()
            return
        if call.action == "gesture":
            name = call.args.get("gesture")
            if name not in GESTURE_SECONDS:
                raise ValueError(
                    f"a Reachy Mini cannot {name}: it has a head and antennas, no arms"
                )
            self.gesture = active = Active(name, time.monotonic())
            try:
                await asyncio.sleep(GESTURE_SECONDS[name])
            finally:
                if self.gesture is active:
                    self.gesture = None
            return
        if call.action == "look_at":
            what = str(call.args.get("object") or "").strip().lower()
            if what in motion.USER:
                self.direction = None  # the gaze target (the phone sees the user), else ahead
            elif what in motion.DIRECTIONS:
                self.direction = (motion.DIRECTIONS[what], time.monotonic() + LOOK_HOLD_S)
            else:
                raise ValueError(f"cannot find {what!r}: this body only turns its head")
            await asyncio.sleep(LOOK_S)
            return
        raise ValueError(f"a Reachy Mini cannot {call.action}")

    # -- the control thread ---------------------------------------------------------------------
    def start(self) -> ReachyBody:
        self._thread = threading.Thread(target=self._control, name="reachy-control", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def present(self) -> Pose:
        """Where the head and antennas are now, read from the robot."""
        from reachy_mini.utils.rotation import Rotation

        m = self.robot.get_current_head_pose()
        roll, pitch, yaw = Rotation.from_matrix(m[:3, :3]).as_euler("xyz", degrees=True)
        right, left = self.robot.get_present_antenna_joint_positions()
        x, y, z = (float(v) * 1000.0 for v in m[:3, 3])
        return Pose(x, y, z, float(roll), float(pitch), float(yaw), float(right), float(left))

    def target(self, now: float, dt: float) -> Pose:
        """The pose for this tick (``now``: monotonic s)."""
        if self._halt:
            self._halt = False
            self.held = self._rest = self.present()
        if now < self.hold_until and self.held is not None:
            self.sway.step(False, 0.0, dt)  # let the sway fade while held: no jump after
            return self.held
        look = self.look
        direction = self.direction
        if direction is not None and now > direction[1]:
            self.direction = direction = None
        rest = motion.look_pose(look, direction[0] if direction else None)
        self._rest = motion.toward(self._rest, rest, dt)
        pose = self._rest + motion.wiggle(look, now) + self.sway.step(look.speaking, look.mouth, dt)
        listening = None if self.listening_since is None else now - self.listening_since
        pose = pose + motion.listening_nod(listening if not look.speaking else None)
        g = self.gesture
        if g is not None:
            pose = pose + motion.gesture_offset(g.name, now - g.t0)
        return pose

    def _send(self, p: Pose) -> None:
        head = self._pose(p.x, p.y, p.z, p.roll, p.pitch, p.yaw, mm=True, degrees=True)
        self.robot.set_target(head=head, antennas=[p.right, p.left])

    def _control(self) -> None:
        period = 1.0 / CONTROL_HZ
        last = time.monotonic()
        next_tick = last
        failing = False
        while not self._stop.is_set():
            now = time.monotonic()
            if now - next_tick > period:
                self.stats.late += 1
                next_tick = now
            c0 = time.thread_time()
            try:
                self._last = pose = self.target(now, now - last)
                self._send(pose)
                if failing:
                    log.info("the daemon takes targets again")
                failing = False
            except Exception as e:  # a lost daemon: say so once, keep trying
                if not failing:
                    log.warning("set_target failed: %s (retrying every tick)", e)
                failing = True
            self.stats.add(time.thread_time() - c0)
            last = now
            next_tick += period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))
