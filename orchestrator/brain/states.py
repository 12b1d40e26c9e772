"""The creature's state machine (transitions' AsyncMachine).

States: idle, listening, speaking, acting, disconnected. Inputs are plain triggers
(user_started/user_stopped, creature_started/creature_stopped, task_started/task_done,
lost/found); the machine keeps the flags it needs to settle into the right state after
acting or a reconnection. Every change is reported to ``on_change(from, to, trigger)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from transitions.extensions.asyncio import AsyncMachine

STATES = ["idle", "listening", "speaking", "acting", "disconnected"]
TRANSITIONS = [
    {"trigger": "lost", "source": "*", "dest": "disconnected"},
    {"trigger": "found", "source": "disconnected", "dest": "idle", "after": "settle"},
    {"trigger": "task_started", "source": ["idle", "listening", "speaking"], "dest": "acting"},
    {"trigger": "task_done", "source": "acting", "dest": "idle", "after": "settle"},
    {"trigger": "user_started", "source": ["idle", "speaking"], "dest": "listening"},
    {
        "trigger": "user_stopped",
        "source": "listening",
        "dest": "speaking",
        "conditions": "creature_speaking",
    },
    {"trigger": "user_stopped", "source": "listening", "dest": "idle"},
    {"trigger": "creature_started", "source": "idle", "dest": "speaking"},
    {
        "trigger": "creature_started",
        "source": "listening",
        "dest": "speaking",
        "unless": "user_speaking",
    },
    {
        "trigger": "creature_stopped",
        "source": "speaking",
        "dest": "listening",
        "conditions": "user_speaking",
    },
    {"trigger": "creature_stopped", "source": "speaking", "dest": "idle"},
]
OnChange = Callable[[str, str, str], Awaitable[None] | None]


class CreatureStates:
    """The model the machine drives. Call ``await states.user_started()`` etc."""

    state: str

    def __init__(self, on_change: OnChange | None = None) -> None:
        self.user_is_speaking = False
        self.creature_is_speaking = False
        self.on_change = on_change
        self.changes = 0
        self.machine = AsyncMachine(
            model=self,
            states=STATES,
            transitions=TRANSITIONS,
            initial="idle",
            after_state_change="_changed",
            ignore_invalid_triggers=True,
            send_event=True,
            queued=True,
        )

    # conditions
    def user_speaking(self, _event=None) -> bool:
        return self.user_is_speaking

    def creature_speaking(self, _event=None) -> bool:
        return self.creature_is_speaking

    async def settle(self, _event=None) -> None:
        """After acting or a reconnection, fall into listening/speaking if that is going on."""
        if self.user_is_speaking:
            await self.user_started()
        elif self.creature_is_speaking:
            await self.creature_started()

    async def _changed(self, event) -> None:
        src, dst = event.transition.source, event.transition.dest
        if src == dst:
            return
        self.changes += 1
        if self.on_change is not None:
            r = self.on_change(src, dst, event.event.name)
            if r is not None:
                await r

    # inputs that keep the flags up to date
    async def user(self, speaking: bool) -> None:
        self.user_is_speaking = speaking
        await (self.user_started() if speaking else self.user_stopped())

    async def creature(self, speaking: bool) -> None:
        self.creature_is_speaking = speaking
        await (self.creature_started() if speaking else self.creature_stopped())
