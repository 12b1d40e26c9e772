"""The current look: a state's baseline plus at most one passing event look.

Writers (the slow loop) replace an immutable snapshot; readers (the face, on any thread)
sample it at a time stamp. No locks: a reader sees either the old or the new snapshot.
"""

from __future__ import annotations

from affect.affect_map import AffectMap
from affect.blend import NEUTRAL, Affect, Baseline, Transient, retarget, sample


class AffectMixer:
    def __init__(self, amap: AffectMap, t: float = 0.0) -> None:
        self.map = amap
        idle = amap.states["idle"]
        self._snap: tuple[Baseline, Transient | None] = (Baseline(idle, idle, t, 0.0), None)
        self.state = "idle"

    def set_state(self, state: str, t: float) -> Affect:
        """Ease to the state's look (an unknown state looks neutral)."""
        baseline, transient = self._snap
        target = self.map.states.get(state, self.map.states.get("idle", NEUTRAL))
        self._snap = (retarget(baseline, target, t, self.map.ease_s), transient)
        self.state = state
        return target

    def event(self, name: str, t: float) -> Affect | None:
        """Play an event's passing look; None if the map has no look for it."""
        look = self.map.events.get(name)
        if look is None:
            return None
        baseline, _ = self._snap
        m = self.map
        self._snap = (baseline, Transient(look.look, t, m.attack_s, look.hold_s, m.release_s))
        return look.look

    def sample(self, t: float) -> Affect:
        baseline, transient = self._snap
        if transient is not None and transient.over(t):
            transient = None
        return sample(baseline, transient, t)
