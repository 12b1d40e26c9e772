"""Where the harness meets Pipecat: a transport that takes the harness's 20 ms chunks as its
microphone and plays the bot's audio at real time as a sound card would (telling the harness
when each chunk starts to play), and an observer that stamps the pipeline's frames and
metrics on the harness's clock so a turn splits into additive stages.

The transport stands in for a sound card, which this machine does not have; everything between
its input and its output is Pipecat's own pipeline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import (
    ProcessingMetricsData,
    TextAggregationMetricsData,
    TTFBMetricsData,
    TurnMetricsData,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from benchmarks.cascade.services import pcm16
from track2_voice.devtools.turn_clock import TurnDetail

Heard = Callable[[np.ndarray, int, float], None]


# -- the transport ---------------------------------------------------------------------------


class _HarnessInput(BaseInputTransport):
    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.ready = asyncio.Event()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self.ready.set()

    async def push_chunk(self, chunk: np.ndarray, rate: int) -> None:
        await self.push_audio_frame(
            InputAudioRawFrame(audio=pcm16(chunk), sample_rate=rate, num_channels=1)
        )


class _HarnessOutput(BaseOutputTransport):
    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.heard: Heard | None = None
        self._play_end = 0.0

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """A sound card with one chunk of buffer: the chunk starts to play when the previous
        one ends (or now), and the write returns once it is playing."""
        now = time.monotonic()
        starts = max(now, self._play_end)
        if starts > now:
            await asyncio.sleep(starts - now)
        pcm = np.frombuffer(frame.audio, np.int16).astype(np.float32) / 32768.0
        self._play_end = starts + pcm.size / frame.sample_rate
        if self.heard is not None:
            self.heard(pcm, frame.sample_rate, starts)
        return True


class HarnessTransport(BaseTransport):
    def __init__(self, in_rate: int, out_rate: int) -> None:
        super().__init__()
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=in_rate,
            audio_out_enabled=True,
            audio_out_sample_rate=out_rate,
        )
        self._input = _HarnessInput(params)
        self._output = _HarnessOutput(params)

    def input(self) -> _HarnessInput:
        return self._input

    def output(self) -> _HarnessOutput:
        return self._output


# -- the observer ----------------------------------------------------------------------------


class Stage(str, Enum):
    """The cascade's additive stages, in order; their sum is the end-to-end latency."""

    TURN_WAIT = "turn end wait"  # end of speech -> the user's turn reaches the LLM
    LLM_TTFT = "LLM first token"  # -> the LLM's first token
    FIRST_SENTENCE = "LLM first sentence"  # -> the first sentence reaches the TTS
    TTS_FIRST_AUDIO = "TTS first audio"  # -> the TTS's first audio
    PLAYOUT = "to the speaker"  # -> its first audible sample starts to play


class Metric(str, Enum):
    """Pipecat's own metrics frames (and the VAD's stop), as the services report them."""

    VAD_STOP = "VAD stop"  # end of speech -> VADUserStoppedSpeakingFrame
    STT_TTFB = "STT TTFB"  # Pipecat: speech end (VAD stop - stop_secs) -> final transcript
    SMART_TURN = "smart turn inference"  # TurnMetricsData.e2e_processing_time_ms
    LLM_TTFB = "LLM TTFB"  # context in -> first token
    LLM_PROCESSING = "LLM whole reply"  # ProcessingMetricsData of the LLM
    TEXT_AGGREGATION = "sentence aggregation"  # first token -> first sentence
    TTS_TTFB = "TTS TTFB"  # sentence in -> first audio


class Mark(Enum):
    VAD_STOP = "vad_stop"
    TRANSCRIPT = "transcript"
    TURN_END = "turn_end"
    CONTEXT = "context"
    LLM_TEXT = "llm_text"
    TTS_START = "tts_start"
    TTS_AUDIO = "tts_audio"


@dataclass
class _Event:
    mark: Mark
    t: float
    text: str = ""


@dataclass
class _TurnLog:
    events: list[_Event] = field(default_factory=list)
    ttfb: list[tuple[str, float, float]] = field(default_factory=list)  # processor, s, t
    processing: list[tuple[str, float, float]] = field(default_factory=list)
    aggregation: list[tuple[float, float]] = field(default_factory=list)
    turn_checks: list[tuple[bool, float, float, float]] = field(default_factory=list)


class StageObserver(BaseObserver):
    """Stamps frames with ``time.monotonic()`` (the harness's clock) the first time each one
    is pushed, and keeps Pipecat's metrics frames, per turn."""

    def __init__(self, stt: FrameProcessor, llm: FrameProcessor, tts: FrameProcessor) -> None:
        super().__init__()
        self._stt, self._llm, self._tts = stt, llm, tts
        self._seen: set[int] = set()
        self.log = _TurnLog()
        self.bot_speaking = False
        self.llm_running = False

    async def on_push_frame(self, data: FramePushed) -> None:
        frame, src = data.frame, data.source
        if frame.id in self._seen or isinstance(frame, (InputAudioRawFrame,)):
            return
        if isinstance(frame, OutputAudioRawFrame) and not isinstance(frame, TTSAudioRawFrame):
            return
        self._seen.add(frame.id)
        self._record(frame, src, time.monotonic())

    def _record(self, frame: Frame, src: FrameProcessor, t: float) -> None:
        log = self.log
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            log.events.append(_Event(Mark.VAD_STOP, t))
        elif isinstance(frame, TranscriptionFrame) and src is self._stt:
            log.events.append(_Event(Mark.TRANSCRIPT, t, frame.text))
        elif isinstance(frame, UserStoppedSpeakingFrame):
            log.events.append(_Event(Mark.TURN_END, t))
        elif isinstance(frame, LLMContextFrame):
            log.events.append(_Event(Mark.CONTEXT, t))
        elif isinstance(frame, LLMTextFrame) and src is self._llm:
            log.events.append(_Event(Mark.LLM_TEXT, t, frame.text))
        elif isinstance(frame, TTSStartedFrame) and src is self._tts:
            log.events.append(_Event(Mark.TTS_START, t))
        elif isinstance(frame, TTSAudioRawFrame) and src is self._tts:
            log.events.append(_Event(Mark.TTS_AUDIO, t))
        elif isinstance(frame, LLMFullResponseStartFrame) and src is self._llm:
            self.llm_running = True
        elif isinstance(frame, LLMFullResponseEndFrame) and src is self._llm:
            self.llm_running = False
        elif isinstance(frame, InterruptionFrame):  # a cancelled reply pushes no end frame
            self.llm_running = False
        elif isinstance(frame, BotStartedSpeakingFrame):
            self.bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.bot_speaking = False
        elif isinstance(frame, MetricsFrame):
            for d in frame.data:
                if isinstance(d, TTFBMetricsData) and d.value > 0:
                    log.ttfb.append((d.processor, d.value, t))
                elif isinstance(d, ProcessingMetricsData) and d.value > 0:
                    log.processing.append((d.processor, d.value, t))
                elif isinstance(d, TextAggregationMetricsData):
                    log.aggregation.append((d.value, t))
                elif isinstance(d, TurnMetricsData):
                    log.turn_checks.append(
                        (d.is_complete, d.probability, d.e2e_processing_time_ms, t)
                    )

    def take_turn(
        self, t_end: float, first_audio_t: float | None, names: dict[str, str]
    ) -> TurnDetail:
        """Split the turn that ended into stages, and say what was odd about it."""
        log, self.log = self.log, _TurnLog()
        self._seen.clear()
        detail = TurnDetail()
        _note_what_was_heard(log, t_end, detail)
        vad = _first(log, Mark.VAD_STOP, t_end)
        turn = _first(log, Mark.TURN_END, t_end)
        _time_stages(log, t_end, first_audio_t, detail)
        if vad is not None:
            detail.metrics_ms[Metric.VAD_STOP.value] = round((vad.t - t_end) * 1000.0, 1)
        _service_metrics(log, t_end, names, detail.metrics_ms)
        _smart_turn(log, t_end, vad, turn, detail)
        return detail


def _first(log: _TurnLog, mark: Mark, after: float) -> _Event | None:
    return next((e for e in log.events if e.mark is mark and e.t >= after), None)


def _note_what_was_heard(log: _TurnLog, t_end: float, detail: TurnDetail) -> None:
    """The transcript, and a note where the turn was cut before the speech ended or the
    VAD heard it as several segments."""
    ends = [e for e in log.events if e.mark is Mark.TURN_END]
    early = [e for e in ends if e.t < t_end]
    if early:
        detail.notes.append(
            f"turn split: {len(early)} turn end(s) before the speech ended "
            f"({', '.join(f'{(e.t - t_end) * 1000:.0f} ms' for e in early)})"
        )
    heard = [e.text for e in log.events if e.mark is Mark.TRANSCRIPT]
    detail.transcript = " | ".join(heard)
    if len(heard) > 1:
        detail.notes.append(f"the VAD heard {len(heard)} speech segments")


def _time_stages(
    log: _TurnLog, t_end: float, first_audio_t: float | None, detail: TurnDetail
) -> None:
    """Each stage from the speech's end to the first reply audio played, as far as the chain
    got, and the LLM's reply."""
    ctx = _first(log, Mark.CONTEXT, t_end)  # the user's turn, handed to the LLM
    llm = _first(log, Mark.LLM_TEXT, ctx.t) if ctx else None
    tts = _first(log, Mark.TTS_START, llm.t) if llm else None
    audio = _first(log, Mark.TTS_AUDIO, tts.t) if tts else None
    if ctx is None:
        detail.notes.append("the user's turn never reached the LLM")
    if llm is not None:
        detail.reply = "".join(
            e.text for e in log.events if e.mark is Mark.LLM_TEXT and e.t >= llm.t
        ).strip()
    chain = [(Stage.TURN_WAIT, ctx), (Stage.LLM_TTFT, llm)]
    chain += [(Stage.FIRST_SENTENCE, tts), (Stage.TTS_FIRST_AUDIO, audio)]
    prev = t_end
    for stage, ev in chain:
        if ev is None:
            break
        detail.stages_ms[stage.value] = round((ev.t - prev) * 1000.0, 1)
        prev = ev.t
    if audio is not None and first_audio_t is not None and first_audio_t >= audio.t:
        detail.stages_ms[Stage.PLAYOUT.value] = round((first_audio_t - audio.t) * 1000.0, 1)


def _service_metrics(log: _TurnLog, t_end: float, names: dict[str, str], m: dict) -> None:
    """Pipecat's own metrics after the speech's end: each service's first one only."""
    after = [x for x in log.ttfb if x[2] >= t_end]
    for proc, value, _t in after:
        key = {
            names["stt"]: Metric.STT_TTFB,
            names["llm"]: Metric.LLM_TTFB,
            names["tts"]: Metric.TTS_TTFB,
        }.get(proc)
        if key is not None and key.value not in m:
            m[key.value] = round(value * 1000.0, 1)
    for proc, value, t in log.processing:
        if proc == names["llm"] and t >= t_end and Metric.LLM_PROCESSING.value not in m:
            m[Metric.LLM_PROCESSING.value] = round(value * 1000.0, 1)
    for value, t in log.aggregation:
        if t >= t_end and Metric.TEXT_AGGREGATION.value not in m:
            m[Metric.TEXT_AGGREGATION.value] = round(value * 1000.0, 1)


def _smart_turn(log: _TurnLog, t_end: float, vad, turn, detail: TurnDetail) -> None:
    """Smart turn's first check after the speech: its time, and a note when it judged the
    turn incomplete (the turn then waited)."""
    checks = [c for c in log.turn_checks if c[3] >= t_end]
    if checks:
        detail.metrics_ms[Metric.SMART_TURN.value] = round(checks[0][2], 1)
        if not checks[0][0]:
            wait = f"{(turn.t - vad.t) * 1000:.0f} ms" if turn and vad else "its fallback"
            detail.notes.append(
                f"smart turn judged it incomplete (p={checks[0][1]:.2f}); waited {wait}"
            )
