"""The cascade side of ``creature cascade``: a real Pipecat pipeline, timed by the shared harness.

    <cascade venv>/bin/python benchmarks/cascade/run.py --input A.wav B.wav --json OUT.json

Runs in the cascade's own environment (Pipecat needs newer aiohttp and huggingface-hub than
the creature's moshi_mlx allows), with the repository on PYTHONPATH for the harness
(``track2_voice.devtools.turn_clock``). Pipeline: harness mic -> pocketsphinx STT -> Pipecat's user
aggregator (Silero VAD + smart-turn v3, both inside the pipecat wheel) -> LLM (random-weight
``transformers`` model of a named shape, or any OpenAI-compatible server) -> espeak-ng TTS ->
harness speaker -> assistant aggregator. Prints one line per turn, writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from track2_voice.devtools.turn_clock import (  # noqa: E402
    ClockSettings,
    TurnDetail,
    TurnTiming,
    Utterance,
    load_utterance,
    summarize,
    time_turns,
)

IN_RATE = 16_000  # Silero VAD, smart turn and pocketsphinx all take 16 kHz
OUT_RATE = 24_000
SYSTEM_PROMPT = (
    "You are a friendly robot creature. Answer in one or two short sentences, "
    "as you would speak them aloud."
)


class CascadeSystem:
    """The pipeline as the harness sees it (``track2_voice.devtools.turn_clock.TurnSystem``)."""

    name = "cascade"
    rate = IN_RATE

    def __init__(self, transport, observer, context, names: dict[str, str]) -> None:
        self.transport, self.observer, self.context, self.names = (
            transport,
            observer,
            context,
            names,
        )
        self._turn: tuple[Utterance, float] | None = None

    def listen(self, heard) -> None:
        self.transport.output().heard = heard

    async def feed(self, chunk) -> None:
        await self.transport.input().push_chunk(chunk, IN_RATE)

    def begin_turn(self, utt: Utterance, t_end: float) -> None:
        self._turn = (utt, t_end)

    async def hush(self) -> None:
        from pipecat.frames.frames import InterruptionWorkerFrame
        from pipecat.processors.frame_processor import FrameDirection

        if not self.quiet():  # the worker turns this into an InterruptionFrame for everyone
            await self.transport.input().push_frame(
                InterruptionWorkerFrame(), FrameDirection.UPSTREAM
            )

    def quiet(self) -> bool:
        return not (self.observer.bot_speaking or self.observer.llm_running)

    def end_turn(self, first_audio_t: float | None) -> TurnDetail:
        assert self._turn is not None
        _utt, t_end = self._turn
        detail = self.observer.take_turn(t_end, first_audio_t, self.names)
        # every utterance opens a fresh conversation, so turns are comparable
        self.context.set_messages([{"role": "system", "content": SYSTEM_PROMPT}])
        return detail


def make_llm(args):
    if args.llm_url:
        from pipecat.services.openai.llm import OpenAILLMService

        key = os.environ.get(args.llm_key_env, "") if args.llm_key_env else ""
        return OpenAILLMService(
            api_key=key or "none",
            base_url=args.llm_url,
            settings=OpenAILLMService.Settings(model=args.llm_model, max_tokens=args.max_tokens),
        ), f"{args.llm_model} at {args.llm_url}"
    from benchmarks.cascade.services import RandomWeightsLLMService

    llm = RandomWeightsLLMService(args.llm_shape, max_tokens=args.max_tokens, seed=args.seed)
    llm.warm_up()
    return llm, (
        f"{args.llm_shape} shape with RANDOM weights (transformers, CPU): real compute per "
        "token, random words"
    )


def _build_pipeline(args):
    """The cascade: harness in, STT, the user's turn (VAD start, smart-turn stop), LLM, TTS,
    harness out; an observer that times each stage."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )

    from benchmarks.cascade.harness_io import HarnessTransport, StageObserver
    from benchmarks.cascade.services import EspeakTTSService, PocketsphinxSTTService

    transport = HarnessTransport(IN_RATE, OUT_RATE)
    stt = PocketsphinxSTTService()
    llm, llm_desc = make_llm(args)
    tts = EspeakTTSService()
    context = LLMContext(messages=[{"role": "system", "content": SYSTEM_PROMPT}])
    # default user-turn strategies: VAD start, smart-turn v3 stop (the model in the wheel)
    pair = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [transport.input(), stt, pair.user(), llm, tts, transport.output(), pair.assistant()]
    )
    observer = StageObserver(stt, llm, tts)
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE, enable_metrics=True
        ),
        observers=[observer],
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    names = {"stt": stt.name, "llm": llm.name, "tts": tts.name}
    return transport, worker, CascadeSystem(transport, observer, context, names), llm_desc


async def _start_runner(worker, transport):
    """The pipeline running, once its input is ready (bounded: 60 s)."""
    from pipecat.workers.runner import WorkerRunner

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    ready = asyncio.create_task(transport.input().ready.wait())
    await asyncio.wait({running, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        raise SystemExit("cascade: the pipeline did not start within 60 s")
    return runner, running


def _show(t: TurnTiming) -> None:
    lat = f"{t.latency_ms:7.0f} ms" if t.latency_ms is not None else "  no reply"
    notes = f"  [{'; '.join(t.detail.notes)}]" if t.detail.notes else ""
    print(f"cascade  {t.name:24s} {lat}  heard {t.detail.transcript!r}{notes}", flush=True)


def _describe(llm_desc: str) -> dict:
    return {
        "pipeline": "Pipecat "
        + _version("pipecat-ai")
        + ": Silero VAD + smart-turn v3 (in the wheel), pocketsphinx "
        + _version("pocketsphinx")
        + " streaming STT, LLM, espeak-ng TTS",
        "llm": llm_desc,
        "note": "pocketsphinx mishears espeak speech often: this measures timing, not "
        "understanding",
    }


async def run(args, utterances: list[Utterance], settings: ClockSettings) -> dict:
    transport, worker, system, llm_desc = _build_pipeline(args)
    runner, running = await _start_runner(worker, transport)
    try:
        turns = await time_turns(system, utterances, settings, on_turn=_show)
    finally:
        await runner.cancel()
        await asyncio.wait({running}, timeout=20)
    return {
        "system": "cascade",
        "describe": _describe(llm_desc),
        "turns": [asdict(t) for t in turns],
        "summary": summarize(turns),
    }


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.cascade.services import LLM_SHAPES

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--input", nargs="+", required=True, help="utterance audio files")
    ap.add_argument("--json", required=True, help="where to write the turns")
    ap.add_argument("--llm-shape", choices=sorted(LLM_SHAPES), default="smollm2-135m")
    ap.add_argument("--llm-url", help="an OpenAI-compatible endpoint instead (…/v1)")
    ap.add_argument("--llm-model", default="default", help="model name for --llm-url")
    ap.add_argument("--llm-key-env", help="environment variable holding the --llm-url key")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", default="{}", help="harness settings as JSON (ClockSettings)")
    ap.add_argument("--log-level", default="WARNING", help="Pipecat's log level")
    args = ap.parse_args(argv)

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    settings = ClockSettings(**json.loads(args.settings))
    utterances = [load_utterance(p, IN_RATE, settings.speech_db) for p in args.input]
    report = asyncio.run(run(args, utterances, settings))
    report["settings"] = asdict(settings)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
