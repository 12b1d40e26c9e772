"""The batched model server: one Moshi (+ Mimi) serving many conversations at once.

Kyutai's servers hold one conversation behind a lock. Here the model streams with a fixed
number of slots; every 80 ms one batched step runs for all slots that have a session, idle
slots are left untouched (``exec_mask``), and a slot is reset on its own when its session
joins, leaves or rolls over (``reset_streaming(reset_mask)``). Sessions speak Kyutai's wire
protocol at ``/api/chat``.

Modules, one job each:

- ``sampling``: per-slot temperatures, top-k and seeds, with noise that depends only on the
  slot's own seed and step (so a slot samples the same tokens whoever shares the batch);
- ``engine``: the model in batched streaming mode and its synchronous ``step()``;
- ``params``: a session's query parameters (Kyutai's names) as typed values;
- ``scheduler``: the 80 ms clock, per-slot input/output queues, join/leave/rollover;
- ``server``: the HTTP/WebSocket front (Starlette + uvicorn);
- ``options``: the server's settings (the ``creature model-server`` flags).
"""
