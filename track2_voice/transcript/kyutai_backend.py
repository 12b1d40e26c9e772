"""Kyutai's streaming STT (kyutai/stt-1b-en_fr, kyutai/stt-2.6b-en) in this process, through
the ``moshi`` package (PyTorch), loaded as delayed-streams-modeling's
``stt_from_file_pytorch.py`` loads it: ``CheckpointInfo``, ``get_mimi``, ``get_moshi``,
``LMGen(temp=0, temp_text=0)``.

One 80 ms frame in, one Mimi encode and one LM step, one text token out; tokens become timed
words by ``stt_words.SttWords`` (the model writes a word ``stt_config.audio_delay_seconds``
after hearing it). A word is reported as partial while it grows and as final once it ended
(Kyutai's STT never revises a word).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from track2_voice.config import KyutaiSttConfig
from track2_voice.frames import FRAME_SAMPLES, FRAME_SECONDS
from track2_voice.transcript.base import Heard, RecognizerError
from track2_voice.transcript.stt_words import SttWords, WordDone

log = logging.getLogger(__name__)

FLUSH_EXTRA_S = 1.0  # after the delay, as Kyutai's own scripts pad the end of a file


class KyutaiSttRecognizer:
    name = "kyutai"

    def __init__(self, cfg: KyutaiSttConfig | None = None) -> None:
        cfg = cfg or KyutaiSttConfig()
        try:
            import torch
            from moshi.models import LMGen, loaders

            from track2_voice.backends.torch_backend import (
                local_checkpoint_args,
                resolve_device,
                resolve_dtype,
            )
        except ImportError as e:
            raise RecognizerError(
                f"voice.transcript.backend kyutai needs the torch extra ({e}); see README"
            ) from None
        self._torch = torch
        repo = cfg.hf_repo
        try:
            self.device = resolve_device(cfg.device, "voice.transcript.kyutai.device")
            dtype = resolve_dtype(cfg.dtype, self.device)
            if Path(repo).is_dir():
                info = loaders.CheckpointInfo.from_hf_repo(
                    str(Path(repo).resolve()), **local_checkpoint_args(Path(repo))
                )
            else:
                info = loaders.CheckpointInfo.from_hf_repo(repo)
            if info.model_type != "stt":
                raise RecognizerError(
                    f"voice.transcript.kyutai.hf_repo {repo}: model_type is "
                    f"{info.model_type!r}, expected an STT checkpoint ('stt')"
                )
            self.mimi = info.get_mimi(device=self.device)
            self.tokenizer = info.get_text_tokenizer()
            lm = info.get_moshi(device=self.device, dtype=dtype)
        except RecognizerError:
            raise
        except Exception as e:  # noqa: BLE001 (a missing file, a bad config: one line)
            raise RecognizerError(f"voice.transcript.kyutai.hf_repo {repo}: {e}") from None
        stt = info.stt_config or {}
        self.delay_s = float(stt.get("audio_delay_seconds", 0.0))
        self.prefix_s = float(stt.get("audio_silence_prefix_seconds", 0.0))
        self.lm_gen = LMGen(lm, temp=0.0, temp_text=0.0)
        self._twice = max(lm.delays) > 0  # as run_inference: the first slice seen properly
        self.mimi.streaming_forever(1)
        self.lm_gen.streaming_forever(1)
        self.steps = 0
        if self.prefix_s > 0:
            for _ in range(round(self.prefix_s / FRAME_SECONDS)):
                self._step(np.zeros(FRAME_SAMPLES, np.float32))
        self.words = SttWords(self.tokenizer, self.delay_s, first_step=self.steps)

    def _step(self, pcm: np.ndarray) -> int | None:
        torch = self._torch
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(pcm, np.float32)).to(self.device)[None, None]
            codes = self.mimi.encode(x)
            if self.steps == 0:
                # as moshi.server (and the model server's slots): the first encoded frame
                # carries the left padding, so it is applied again to the next one
                self.mimi.reset_streaming()
            if self._twice and self.steps == 0:
                self.lm_gen.step(codes)
            tokens = self.lm_gen.step(codes)
        self.steps += 1
        return None if tokens is None else int(tokens[0, 0, 0].item())

    def _token(self, token: int | None) -> list[Heard]:
        out = []
        for w in self.words.token(self.steps - 1, token):
            if isinstance(w, WordDone):
                out.append(Heard(w.text, w.start, w.stop, True))
            else:
                out.append(Heard(w.text, w.start, round(w.start + FRAME_SECONDS, 3), False))
        return out

    def accept(self, pcm: np.ndarray) -> list[Heard]:
        pcm = np.asarray(pcm, np.float32)
        out: list[Heard] = []
        for i in range(0, pcm.shape[0] - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            out += self._token(self._step(pcm[i : i + FRAME_SAMPLES]))
        return out

    def finish(self) -> list[Heard]:
        """Silence for the delay (and a second more): the words still inside the model."""
        out: list[Heard] = []
        silence = np.zeros(FRAME_SAMPLES, np.float32)
        for _ in range(round((self.delay_s + FLUSH_EXTRA_S) / FRAME_SECONDS)):
            out += self._token(self._step(silence))
        return out + self._token(None)

    def close(self) -> None:
        pass
