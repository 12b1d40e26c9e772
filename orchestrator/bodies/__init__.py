"""Bodies: the robot side of the creature, as programs of their own.

A body runs in an environment of its own (a robot SDK's pins need not fit the creature's) and
talks to the creature only over the robot channel's WebSockets: calls in, statuses out
(``/robot``), and the creature's live look (``/expression``). So modules here import the
standard library, ``websockets`` and their robot's SDK, never the rest of ``orchestrator``.
What every robot shares lives here once: the robot's side of the protocol (``protocol``) and
its duties (``duties``); the example robot uses them too.
"""
