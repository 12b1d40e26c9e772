"""What the Reachy Mini's head and antennas do, as pure functions of time and the creature's
look: no SDK calls here, so every number is easy to read and to test.

The head target each control tick is the sum of
* the **look**: a rest pose from the valence/arousal point (happy: chin up a little and sitting
  up; sad: head down), turned toward the **gaze** target (the user's face the phone sees) or a
  ``look_at`` direction;
* a **gesture** (nod, shake_head, dance, bow, shrug, wave), a few seconds of offsets;
* **speech sway** while the creature speaks: the SDK's own speech wobble oscillators
  (``reachy_mini.motion.speech_tapper``, its frequencies and amplitudes), driven by the mouth
  opening the creature already computes instead of the audio, so it needs no sound here;
* **listening nods**: a small nod every ``NOD_EVERY_S`` while the user speaks.
Antennas (``[right, left]`` in radians, 0 = straight up; ``right = -a, left = +a`` with ``a``
the droop, as the SDK's own rest ``[-0.1745, 0.1745]`` and sleep ``[-3.05, 3.05]``) show the
emotion: upright and wiggling with positive valence, drooping with negative (docs/bodies.md has
the table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reachy_mini.motion import speech_tapper as st

from orchestrator.bodies.link import Expression

# -- the look: valence/arousal -> rest pose and antennas (docs/bodies.md, "Emotions") --------
REST_DROOP = 0.1745  # the SDK's rest antennas (10 degrees off vertical)
SAD_DROOP = 2.0  # extra droop (rad) per unit of negative valence: sad (-0.7) -> ~1.57 (level)
LOW_AROUSAL_DROOP = 0.3  # extra droop per unit of negative arousal
HAPPY_WIGGLE = 0.5  # wiggle amplitude (rad) per unit of positive valence, opposite phases
WIGGLE_HZ = 1.2
PITCH_PER_VALENCE = -6.0  # degrees: positive valence lifts the chin (pitch > 0 looks down)
PITCH_PER_AROUSAL = -4.0
Z_PER_AROUSAL = 6.0  # mm: an aroused creature sits up
# -- gaze and look_at ---------------------------------------------------------------------------
GAZE_YAW_DEG = 25.0  # gaze x = 1 (the user's right on the screen: the robot's left) -> yaw
GAZE_PITCH_DEG = 15.0
DIRECTIONS = {  # look_at objects the head can show without a camera: (yaw, pitch) degrees
    "left": (30.0, 0.0),
    "right": (-30.0, 0.0),
    "up": (0.0, -20.0),
    "down": (0.0, 20.0),
    "ahead": (0.0, 0.0),
    "forward": (0.0, 0.0),
    "straight ahead": (0.0, 0.0),
}
USER = ("user", "you", "me")  # look at the person: the gaze target, else straight ahead
# -- listening nods -----------------------------------------------------------------------------
NOD_EVERY_S = 2.2
NOD_FIRST_S = 0.8  # after the user started speaking
NOD_LEN_S = 0.8
NOD_DEG = 8.0
# -- smoothing ------------------------------------------------------------------------------------
LOOK_TAU_S = 0.35  # the rest pose follows a new look with this time constant


@dataclass(frozen=True)
class Pose:
    """A head pose (mm, degrees; pitch > 0 looks down, yaw > 0 turns to the robot's left) and
    the antennas (radians, ``[right, left]``)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    right: float = -REST_DROOP
    left: float = REST_DROOP

    def __add__(self, o: Pose) -> Pose:
        return Pose(*(a + b for a, b in zip(_fields(self), _fields(o))))

    def scaled(self, k: float) -> Pose:
        return Pose(*(a * k for a in _fields(self)))


def _fields(p: Pose) -> tuple[float, ...]:
    return (p.x, p.y, p.z, p.roll, p.pitch, p.yaw, p.right, p.left)


ZERO = Pose(right=0.0, left=0.0)


def look_pose(e: Expression, direction: tuple[float, float] | None = None) -> Pose:
    """The rest pose and antennas for the look ``e`` (smoothed by the caller)."""
    v, a = e.valence, e.arousal
    droop = REST_DROOP + SAD_DROOP * max(0.0, -v) + LOW_AROUSAL_DROOP * max(0.0, -a)
    if a > 0.6:  # alert: antennas straight up
        droop = min(droop, REST_DROOP * (1.0 - a))
    if direction is not None:
        yaw, pitch = direction
    elif e.gaze is not None:
        yaw, pitch = GAZE_YAW_DEG * e.gaze.x, GAZE_PITCH_DEG * e.gaze.y
    else:
        yaw, pitch = 0.0, 0.0
    return Pose(
        z=Z_PER_AROUSAL * a,
        pitch=pitch + PITCH_PER_VALENCE * v + PITCH_PER_AROUSAL * a,
        yaw=yaw,
        right=-droop,
        left=droop,
    )


def wiggle(e: Expression, t: float) -> Pose:
    """Happy antennas wiggle, in opposite phases (added after the look's smoothing)."""
    w = HAPPY_WIGGLE * max(0.0, e.valence) * max(0.3, e.arousal) * _sin(WIGGLE_HZ, t)
    return Pose(right=-w, left=-w)


def toward(current: Pose, target: Pose, dt: float, tau: float = LOOK_TAU_S) -> Pose:
    """First-order smoothing from ``current`` to ``target`` over ``dt`` seconds."""
    k = 1.0 - math.exp(-dt / tau)
    return current + (target + current.scaled(-1.0)).scaled(k)


# -- gestures -----------------------------------------------------------------------------------
def _window(t: float, d: float, ramp: float = 0.2) -> float:
    """0 -> 1 -> 0 over ``d`` s with cosine ramps, so a gesture starts and ends smoothly."""
    if t <= 0.0 or t >= d:
        return 0.0
    r = min(ramp, d / 2)
    if t < r:
        return 0.5 - 0.5 * math.cos(math.pi * t / r)
    if t > d - r:
        return 0.5 - 0.5 * math.cos(math.pi * (d - t) / r)
    return 1.0


def _bump(t: float, d: float) -> float:
    """A smooth 0 -> 1 -> 0 over ``d`` s."""
    return 0.0 if t <= 0.0 or t >= d else 0.5 - 0.5 * math.cos(2 * math.pi * t / d)


def _sin(hz: float, t: float) -> float:
    return math.sin(2 * math.pi * hz * t)


GESTURE_SECONDS = {
    "nod": 2.0,
    "shake_head": 2.0,
    "dance": 4.0,
    "bow": 2.0,
    "shrug": 1.5,
    "wave": 2.0,
}
GESTURES = tuple(GESTURE_SECONDS)  # what the head and antennas can show (no arms)


def gesture_offset(name: str, t: float) -> Pose:
    """The offset of gesture ``name`` at ``t`` s after it started (ZERO outside it)."""
    d = GESTURE_SECONDS[name]
    w = _window(t, d)
    if w == 0.0:
        return ZERO
    if name == "nod":
        return Pose(pitch=12.0 * w * _sin(1.6, t), right=0.0, left=0.0)
    if name == "shake_head":
        return Pose(yaw=18.0 * w * _sin(1.4, t), right=0.0, left=0.0)
    if name == "dance":
        a = 0.5 * w * _sin(2.0, t)
        return Pose(
            z=6.0 * w * abs(_sin(1.0, t)),
            roll=8.0 * w * _sin(2.0, t),
            yaw=12.0 * w * _sin(1.0, t),
            right=-a,
            left=-a,
        )
    if name == "bow":
        return Pose(pitch=20.0 * _bump(t, d), z=-5.0 * _bump(t, d), right=0.0, left=0.0)
    if name == "shrug":
        b = _bump(t, d)
        return Pose(roll=10.0 * b, z=8.0 * b, right=-0.8 * b, left=0.8 * b)
    if name == "wave":  # the right antenna waves
        return Pose(right=0.7 * w * _sin(2.0, t), left=0.0)
    raise KeyError(name)


# -- speech sway and listening nods --------------------------------------------------------------
class SpeechSway:
    """The SDK's speech wobble (speech_tapper's oscillators, phases and attack/release), driven
    by the creature's ``speaking`` and ``mouth`` (already a 0..1 loudness) rather than PCM."""

    def __init__(self, seed: int = 7) -> None:
        ref = st.SwayRollRT(rng_seed=seed)  # the SDK's own random phases
        self.phases = (
            ref.phase_pitch,
            ref.phase_yaw,
            ref.phase_roll,
            ref.phase_x,
            ref.phase_y,
            ref.phase_z,
        )
        self.env = 0.0
        self.t = 0.0

    def step(self, speaking: bool, mouth: float, dt: float) -> Pose:
        attack = dt / (st.SWAY_ATTACK_MS / 1000.0)
        release = dt / (st.SWAY_RELEASE_MS / 1000.0)
        self.env = min(1.0, self.env + attack) if speaking else max(0.0, self.env - release)
        if self.env == 0.0:
            return ZERO
        self.t += dt
        k = st.SWAY_MASTER * max(0.25, mouth) * self.env
        ph = self.phases

        def osc(hz: float, amp: float, phase: float) -> float:
            return amp * k * math.sin(2 * math.pi * hz * self.t + phase)

        return Pose(
            pitch=osc(st.SWAY_F_PITCH, st.SWAY_A_PITCH_DEG, ph[0]),
            yaw=osc(st.SWAY_F_YAW, st.SWAY_A_YAW_DEG, ph[1]),
            roll=osc(st.SWAY_F_ROLL, st.SWAY_A_ROLL_DEG, ph[2]),
            x=osc(st.SWAY_F_X, st.SWAY_A_X_MM, ph[3]),
            y=osc(st.SWAY_F_Y, st.SWAY_A_Y_MM, ph[4]),
            z=osc(st.SWAY_F_Z, st.SWAY_A_Z_MM, ph[5]),
            right=0.0,
            left=0.0,
        )


def listening_nod(listening_for_s: float | None) -> Pose:
    """A small nod every NOD_EVERY_S while the user speaks (None: not listening)."""
    if listening_for_s is None or listening_for_s < NOD_FIRST_S:
        return ZERO
    phase = (listening_for_s - NOD_FIRST_S) % NOD_EVERY_S
    return Pose(pitch=NOD_DEG * _bump(phase, NOD_LEN_S), right=0.0, left=0.0)
