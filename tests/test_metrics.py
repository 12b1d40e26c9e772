"""The metrics consumer on scripted event streams: every event type moves the figure it is
documented to move, the exposition parses with Prometheus' own text parser, and
docs/metrics.md lists every family. (The endpoint on a running demo: test_observed_demo.py.)"""

from __future__ import annotations

import json
import re

from prometheus_client.parser import text_string_to_metric_families

from orchestrator.brain.calls import CallStatus
from orchestrator.brain.events import (
    IntentDetected,
    PassageTranslated,
    RobotConnected,
    RobotRefused,
    StateChanged,
    StatusRefused,
    ToolCallSent,
    ToolRejected,
    ToolStatusChanged,
    TranslationStarted,
)
from orchestrator.brain.intents import Intent
from orchestrator.bus import Bus
from orchestrator.runtime.metrics import CreatureMetrics
from orchestrator.runtime.phone_call_events import PhoneCallEnded, PhoneCallStarted
from tests.conftest import ROOT
from track2_voice.events import (
    Connected,
    Disconnected,
    FrameEvent,
    LoopStarted,
    Rollover,
    UserSpeechEnded,
    UserSpeechStarted,
)


def frame(i: int, t: float, rms_db: float = -120.0, missed: bool = False) -> FrameEvent:
    return FrameEvent(
        index=i,
        t=t,
        mouth=0.0,
        rms_db=rms_db,
        text=None,
        model_ms=12.0,
        overhead_ms=0.5,
        missed=missed,
    )


def samples(m: CreatureMetrics) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: CreatureMetrics, name: str, **labels) -> float:
    return samples(m)[(name, tuple(sorted(labels.items())))]


def _voice_events() -> list:
    """The loop starts on a remote session, misses one frame, hears a turn and answers it."""
    return [
        LoopStarted(index=0, t=9.0, backend="remote"),
        Connected(index=0, t=9.0, url="ws://x", session=1),
        frame(0, 9.0),
        frame(1, 9.08, missed=True),
        UserSpeechStarted(index=1, t=9.08, probability=0.9),
        UserSpeechEnded(index=3, t=9.5, probability=0.1, silence_ms=300.0),
        frame(4, 9.6, rms_db=-20.0),  # the reply: 9.6 + 12.5 ms - (9.5 - 0.3) = 412.5 ms
    ]


def _task_events(intent: Intent) -> list:
    """An intent, its call accepted then done, another refused, the creature acting."""
    return [
        IntentDetected(index=9, t=10.001, intent=intent, lag_ms=1.0),
        ToolCallSent(
            index=9,
            t=10.004,
            id="c1",
            name="do_physical_task",
            arguments={"action": "pick_up"},
            intent=intent.id,
            robot="r",
        ),  # fmt: skip
        ToolStatusChanged(
            index=9,
            t=10.104,
            id="c1",
            status=CallStatus.ACCEPTED,
            reason=None,
            action="pick_up",
            source="r",
        ),  # fmt: skip
        ToolStatusChanged(
            index=9,
            t=11.004,
            id="c1",
            status=CallStatus.SUCCEEDED,
            reason=None,
            action="pick_up",
            source="r",
        ),  # fmt: skip
        ToolRejected(index=9, t=11.0, id="c2", action="open", reason="not allowed", intent="i"),
        StateChanged(index=9, t=11.0, src="speaking", dst="acting", trigger="task_started"),
    ]


def _connection_events() -> list:
    """A robot, the voice session lost, refusals, and two phone calls of which one ended."""
    return [
        RobotConnected(index=9, t=11.0, robot="r", robots=1),
        Rollover(index=9, t=11.0, reason="silence", steps=10, total_steps=10, session=1),
        Disconnected(index=9, t=11.0, url="ws://x", reason="silent", retry_s=0.1),
        RobotRefused(index=9, t=11.0, robot="r", reason="name taken", peer="10.0.0.9"),
        StatusRefused(
            index=9,
            t=11.0,
            id="c1",
            status="running",
            current="succeeded",
            code="ILLEGAL_TRANSITION",
            source="r",
        ),  # fmt: skip
        PhoneCallStarted(index=9, t=11.0, call_sid="CA1", stream_sid="MZ1", via="token"),
        PhoneCallStarted(index=9, t=11.0, call_sid="CA2", stream_sid="MZ2", via="token"),
        PhoneCallEnded(index=9, t=11.0, call_sid="CA1", stream_sid="MZ1", reason="stop"),
    ]


def _translation_events() -> list:
    """Two passages: the first with a lag, the second voiced before any source speech."""
    return [
        TranslationStarted(index=9, t=11.0, passage=1, source_t=9.0, lag_ms=2000.0),
        TranslationStarted(index=9, t=11.0, passage=2, source_t=None, lag_ms=None),
        PassageTranslated(
            index=9,
            t=12.0,
            passage=1,
            text="Hello.",
            source_start_t=9.0,
            source_end_t=10.0,
            first_audio_t=11.0,
            first_text_t=10.9,
            end_t=12.0,
            lag_ms=2000.0,
            ended_by="eos",
        ),  # fmt: skip
    ]


def _assert_voice_figures(m: CreatureMetrics) -> None:
    assert value(m, "creature_frames_total") == 3
    assert value(m, "creature_deadline_misses_total") == 1
    assert value(m, "creature_model_step_seconds_count") == 3
    assert abs(value(m, "creature_model_step_seconds_sum") - 0.036) < 1e-9
    assert value(m, "creature_loop_overhead_seconds_bucket", le="0.0005") == 3
    assert value(m, "creature_user_turns_total") == 1
    assert abs(value(m, "creature_response_latency_seconds_sum") - 0.4125) < 1e-6


def _assert_task_figures(m: CreatureMetrics) -> None:
    assert value(m, "creature_intents_total", action="pick_up") == 1
    # from the frame of the phrase's last piece (the intent's t) to the call
    assert abs(value(m, "creature_intent_to_call_seconds_sum") - 0.004) < 1e-6
    assert value(m, "creature_tool_calls_total", action="pick_up") == 1
    assert abs(value(m, "creature_tool_status_seconds_sum", status="accepted") - 0.1) < 1e-6
    assert abs(value(m, "creature_tool_status_seconds_sum", status="succeeded") - 1.0) < 1e-6
    assert value(m, "creature_tool_calls_finished_total", action="pick_up", status="succeeded") == 1
    assert value(m, "creature_tool_calls_rejected_total", action="open") == 1
    assert value(m, "creature_state", creature_state="acting") == 1
    assert value(m, "creature_state", creature_state="idle") == 0


def _assert_connection_figures(m: CreatureMetrics) -> None:
    assert value(m, "creature_robots_connected") == 1
    assert value(m, "creature_rollovers_total", reason="silence") == 1
    assert value(m, "creature_backend_connects_total") == 1
    assert value(m, "creature_backend_disconnects_total") == 1
    assert value(m, "creature_voice_sessions") == 0  # the remote session was lost
    assert value(m, "creature_robot_refused_total") == 1
    assert value(m, "creature_tool_status_refused_total", code="ILLEGAL_TRANSITION") == 1
    assert value(m, "creature_phone_calls_total") == 2
    assert value(m, "creature_phone_calls_active") == 1


def _assert_translation_figures(m: CreatureMetrics) -> None:
    # a passage whose voice began before any source speech has no lag to observe
    assert value(m, "creature_translation_lag_seconds_count") == 1
    assert value(m, "creature_translation_lag_seconds_sum") == 2.0
    assert value(m, "creature_translated_passages_total", ended_by="eos") == 1


def test_each_event_moves_its_metric() -> None:
    bus = Bus()
    late = bus.subscribe("slow-reader", 1)
    m = CreatureMetrics(bus, clock=lambda: 100.0)
    intent = Intent("pick_up", {"object": "red cup"}, 0.9, "I'll pick up the red cup.", 9, 10.0,
                    "sentence_end")  # fmt: skip
    events = _voice_events() + _task_events(intent) + _connection_events() + _translation_events()
    for ev in events:
        bus.publish(ev)
        m.observe(ev)
    _assert_voice_figures(m)
    _assert_task_figures(m)
    _assert_connection_figures(m)
    _assert_translation_figures(m)
    # a consumer that reads nothing has lost all but its newest event
    assert (
        value(m, "creature_consumer_dropped_events_total", consumer="slow-reader")
        == len(events) - 1
        == late.dropped
    )


def test_face_send_time_and_live_gauges() -> None:
    now = [50.0]
    m = CreatureMetrics(clock=lambda: now[0])
    sent: list[dict] = []
    publish = m.timed(sent.append)
    publish({"emotion": "happy", "mouth": 0.2, "t": 49.99})
    assert sent and abs(value(m, "creature_face_send_seconds_sum") - 0.01) < 1e-9
    faces = [2]
    m.watch_faces(lambda: faces[0])
    m.watch_phones(lambda: True)
    assert value(m, "creature_faces_connected") == 2
    faces[0] = 0
    assert value(m, "creature_faces_connected") == 0
    assert value(m, "creature_phones_connected") == 1


def test_every_metric_family_is_documented() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(creature_[a-z_]+)`", doc))
    m = CreatureMetrics(Bus())
    families = text_string_to_metric_families(m.exposition().decode())
    exposed = {
        f.name + ("_total" if f.type == "counter" else "")
        for f in families
        if f.name.startswith("creature_")
    }
    assert len(exposed) > 20
    missing = exposed - documented
    assert not missing, f"not in docs/metrics.md: {sorted(missing)}"


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    dash = json.loads((ROOT / "docs" / "grafana" / "creature.json").read_text(encoding="utf-8"))
    m = CreatureMetrics(Bus())
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    known = {f.name + x for f in m.registry.collect() for x in ("", *suffixes.get(f.type, ()))}
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\bcreature_[a-z_]+", e)}
    assert used and not used - known, sorted(used - known)
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_the_metrics_consumer_hears_every_event_a_figure_depends_on() -> None:
    """The consumer on the bus is subscribed to each type ``observe`` handles: a hand-kept
    list of types left the planner's events out, so its figures never moved in a live run."""
    from orchestrator.brain.events import PlannerConsulted
    from orchestrator.runtime.io_loop import IoLoop
    from orchestrator.runtime.metrics import MetricsService
    from tests.slow_support import wait_until

    bus, io = Bus(), IoLoop("metrics-test").start()
    service = MetricsService(bus, 64).start(io)
    try:
        bus.publish(
            PlannerConsulted(
                request=1, trigger="t", policy="propose", verdict="calls", latency_ms=120.0
            )
        )
        m = service.metrics
        key = ("creature_planner_requests_total", (("verdict", "calls"),))
        wait_until(lambda: samples(m).get(key) == 1, what="the planner's request counted")
    finally:
        service.stop()
        io.stop()
