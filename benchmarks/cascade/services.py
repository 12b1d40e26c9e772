"""The cascade's three local services, written against Pipecat's own service base classes so
Pipecat's aggregators, metrics and interruption handling treat them like any provider:

- ``PocketsphinxSTTService``: streaming recognition (audio decoded as it arrives, on a thread),
  the final pass at the VAD's end of speech, pushed as a finalized transcript.
- ``RandomWeightsLLMService``: a ``transformers`` causal LM of a published shape with random
  weights: the real compute of that model per token, not its words (see ``LLM_SHAPES``).
- ``EspeakTTSService``: espeak-ng, one process per sentence, its audio streamed as it comes.

Each one needs nothing downloaded: pocketsphinx ships its en-us model, espeak-ng its voices.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import zlib
from collections import deque
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601

STT_RATE = 16_000
ESPEAK_RATE = 22_050  # espeak-ng's native output rate


# -- STT -------------------------------------------------------------------------------------


class PocketsphinxSTTService(STTService):
    """Streaming pocketsphinx: every chunk is decoded as it arrives (on one worker thread, so
    a slow CPU delays only the transcript, never the pipeline); at the VAD's end of speech the
    utterance is closed and its hypothesis pushed as the final transcript."""

    PRE_ROLL_S = 0.5  # audio kept before the VAD's start, which fires start_secs late

    def __init__(self, **kwargs) -> None:
        from pocketsphinx import Decoder

        super().__init__(
            sample_rate=STT_RATE,
            ttfs_p99_latency=0.5,
            settings=STTSettings(model="pocketsphinx-en-us", language=Language.EN_US),
            **kwargs,
        )
        self._decoder = Decoder()  # the en-us model, dictionary and LM inside the wheel
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketsphinx")
        self._pre_roll: deque[bytes] = deque(maxlen=int(self.PRE_ROLL_S / 0.02))
        self._in_utt = False

    def can_generate_metrics(self) -> bool:
        return True

    async def _on_worker(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _start_utt(self, pre_roll: list[bytes]) -> None:
        self._decoder.start_utt()
        for audio in pre_roll:
            self._decoder.process_raw(audio, False, False)

    def _end_utt(self) -> str:
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        if self._in_utt:
            await self._on_worker(self._decoder.process_raw, audio, False, False)
        else:
            self._pre_roll.append(audio)
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, VADUserStartedSpeakingFrame) and not self._in_utt:
            self._in_utt = True
            await self._on_worker(self._start_utt, list(self._pre_roll))
            self._pre_roll.clear()
        await super().process_frame(frame, direction)  # starts the STT TTFB at the VAD stop
        if isinstance(frame, VADUserStoppedSpeakingFrame) and self._in_utt:
            self._in_utt = False
            text = await self._on_worker(self._end_utt)
            if text:  # a segment it heard nothing in gets no transcript, as with any STT
                self.request_finalize()
                self.confirm_finalize()  # the next transcript is final: TTFB reported now
                await self.push_frame(
                    TranscriptionFrame(text, self._user_id, time_now_iso8601(), Language.EN_US)
                )

    async def cleanup(self) -> None:
        await super().cleanup()
        self._worker.shutdown(wait=False)


# -- LLM -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LlmShape:
    """The published architecture of a small chat model (its config.json), no weights."""

    family: str  # "llama" or "qwen2"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    rope_theta: float
    tie_word_embeddings: bool


SHAPES_FILE = Path(__file__).with_name("llm_shapes.json")


def load_shapes(path: Path = SHAPES_FILE) -> dict[str, LlmShape]:
    data = json.loads(path.read_text())
    return {name: LlmShape(**v) for name, v in data.items() if not name.startswith("_")}


LLM_SHAPES = load_shapes()


def build_random_model(shape: LlmShape, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_cls, model_cls = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }[shape.family]
    config = config_cls(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        rope_theta=shape.rope_theta,
        tie_word_embeddings=shape.tie_word_embeddings,
        max_position_embeddings=8192,
    )
    from transformers.initialization import no_init_weights

    # transformers' own init walks every layer (seconds); one normal fill is the same random
    # weights for this purpose, 4x faster
    with no_init_weights():
        model = model_cls(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.normal_(0.0, config.initializer_range, generator=gen)
    return model.eval()


class WordTokens:
    """Stands in for the model's tokenizer, which would be a download. Input: one id per word
    or punctuation mark (a real BPE gives about 1.3 per English word, so the prompt's compute is
    close). Output: each sampled id names a word of pocketsphinx's dictionary, and every
    ``SENTENCE_TOKENS``-th token ends a sentence, so replies have sentences of a plausible,
    fixed length for the TTS's sentence aggregator (random weights never choose punctuation
    on their own, and a fixed length keeps the first-sentence stage comparable across turns)."""

    SENTENCE_TOKENS = 10

    def __init__(self, vocab_size: int) -> None:
        from pocketsphinx import get_model_path

        words = []
        with open(f"{get_model_path()}/en-us/cmudict-en-us.dict", encoding="utf-8") as f:
            for line in f:
                w = line.split(" ", 1)[0]
                if w.isalpha() and len(w) > 2:
                    words.append(w)
        self.vocab_size = vocab_size
        self.words = words

    def encode(self, text: str) -> list[int]:
        return [
            zlib.crc32(t.lower().encode()) % self.vocab_size
            for t in re.findall(r"\w+|[^\w\s]", text)
        ]

    def piece(self, token_id: int, position: int) -> str:
        if (position + 1) % self.SENTENCE_TOKENS == 0:
            return "."
        return " " + self.words[token_id % len(self.words)]


class RandomWeightsLLMService(LLMService):
    """A local causal LM with random weights, streamed token by token from a worker thread.

    TTFB is Pipecat's own (context in -> first token); an interruption stops generation at the
    next token."""

    def __init__(
        self, shape_name: str, max_tokens: int = 24, seed: int = 0, threads: int = 0, **kwargs
    ) -> None:
        import torch

        super().__init__(
            settings=LLMSettings(
                model=f"{shape_name} (random weights)",
                system_instruction=None,
                temperature=1.0,
                max_tokens=max_tokens,
                top_p=None,
                top_k=None,
                frequency_penalty=None,
                presence_penalty=None,
                seed=seed,
                filter_incomplete_user_turns=False,
                user_turn_completion_config=None,
            ),
            **kwargs,
        )
        if threads:
            torch.set_num_threads(threads)
        self.shape = LLM_SHAPES[shape_name]
        self._model = build_random_model(self.shape, seed)
        self._tokens = WordTokens(self.shape.vocab_size)
        self._max_tokens = max_tokens
        self._generator = torch.Generator().manual_seed(seed)
        self._stop = threading.Event()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")

    def can_generate_metrics(self) -> bool:
        return True

    def warm_up(self) -> None:
        """One short pass so the first turn does not pay for lazy initialisation."""
        self._generate([1, 2, 3, 4], 2, lambda _tok: None, threading.Event())

    def prompt_ids(self, messages) -> list[int]:
        ids: list[int] = []
        for m in messages:
            role = m.get("role", "") if isinstance(m, dict) else getattr(m, "role", "")
            content = m.get("content", "") if isinstance(m, dict) else getattr(m, "content", "")
            if isinstance(content, list):  # multi-part content: keep the text parts
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            ids += self._tokens.encode(f"<|{role}|> {content}")
        return ids or [0]

    def _generate(self, ids: list[int], n: int, emit, stop: threading.Event) -> None:
        import torch

        with torch.inference_mode():
            out = self._model(input_ids=torch.tensor([ids]), use_cache=True)
            for _ in range(n):
                if stop.is_set():
                    return
                probs = torch.softmax(out.logits[0, -1].float(), dim=-1)
                tok = int(torch.multinomial(probs, 1, generator=self._generator))
                emit(tok)
                out = self._model(input_ids=torch.tensor([[tok]]), cache=out.cache, use_cache=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._stop.set()
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        stop = self._stop = threading.Event()  # this reply's own: a new one never revives it
        ids = self.prompt_ids(frame.context.get_messages())

        def emit(tok: int) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, tok)

        def run() -> None:
            try:
                self._generate(ids, self._max_tokens, emit, stop)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        await self.start_ttfb_metrics()
        loop.run_in_executor(self._worker, run)
        position = 0
        try:
            while (tok := await queue.get()) is not None:
                if position == 0:
                    await self.stop_ttfb_metrics()
                await self._push_llm_text(self._tokens.piece(tok, position))
                position += 1
        finally:  # interrupted (cancelled) or done: the worker stops at its next token
            stop.set()
        await self.stop_processing_metrics()
        await self.push_frame(LLMFullResponseEndFrame())

    async def cleanup(self) -> None:
        await super().cleanup()
        self._stop.set()
        self._worker.shutdown(wait=False)


# -- TTS -------------------------------------------------------------------------------------


class EspeakTTSService(TTSService):
    """espeak-ng per sentence: its WAV on stdout is streamed in ~20 ms pieces as it arrives.
    The process runs on a worker thread (``subprocess``, not asyncio's child watcher), and an
    interrupted sentence kills it at the next piece."""

    def __init__(self, voice: str = "en-us", **kwargs) -> None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model="espeak-ng", voice=voice, language=Language.EN_US),
            **kwargs,
        )
        self._cmd = [exe, "-v", voice, "--stdout"]
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
        from pipecat.audio.utils import create_stream_resampler

        self._resampler = create_stream_resampler()

    def can_generate_metrics(self) -> bool:
        return True

    def _speak(self, text: str, emit, stop: threading.Event) -> None:
        piece = int(ESPEAK_RATE * 0.02) * 2
        with subprocess.Popen(
            [*self._cmd, text], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as proc:
            assert proc.stdout is not None
            proc.stdout.read(44)  # the WAV header (espeak-ng's is always 44 bytes)
            pending = b""
            while not stop.is_set() and (data := proc.stdout.read1(piece)):
                pending += data
                whole = len(pending) - len(pending) % 2
                if whole:
                    emit(pending[:whole])
                    pending = pending[whole:]
            if stop.is_set():
                proc.kill()

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        stop = threading.Event()

        def run() -> None:
            try:
                self._speak(text, lambda b: loop.call_soon_threadsafe(queue.put_nowait, b), stop)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        job = loop.run_in_executor(self._worker, run)
        try:
            while (audio := await queue.get()) is not None:
                await self.stop_ttfb_metrics()
                yield TTSAudioRawFrame(
                    audio=await self._resampler.resample(audio, ESPEAK_RATE, self.sample_rate),
                    sample_rate=self.sample_rate,
                    num_channels=1,
                    context_id=context_id,
                )
            await job  # raises what the worker raised
        except OSError as e:  # espeak-ng could not run: an error frame, the pipeline goes on
            yield ErrorFrame(error=f"espeak-ng failed: {e}")
        finally:
            stop.set()

    async def cleanup(self) -> None:
        await super().cleanup()
        self._worker.shutdown(wait=False)


def pcm16(chunk: np.ndarray) -> bytes:
    return (np.clip(chunk, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
