"""The binary audio messages between the face page and the server (documented in docs/phone.md).

Why a header: the page must apply each frame's mouth when that frame is *heard*, so the mouth,
the frame index and the server time travel with the samples they belong to. PCM16 little-endian
halves the bytes of float32 and is what every browser can pack cheaply.

Server -> page (kind 1, one 80 ms frame of the creature's voice)::

    u8 kind=1 | u8 version=1 | u16 flags | u32 index | f32 mouth | f64 t | i16 pcm[n]   (20 + 2n bytes)

Page -> server (kind 2, any number of samples of the user's mic, 24 kHz mono)::

    u8 kind=2 | u8 version=1 | u16 flags | u32 seq | i16 pcm[n]                        (8 + 2n bytes)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from track2_voice.common.errors import CreatureError

VERSION = 1
KIND_BOT_FRAME = 1
KIND_MIC = 2
BOT_HEADER = struct.Struct("<BBHIfd")  # 20 bytes
MIC_HEADER = struct.Struct("<BBHI")  # 8 bytes
MAX_MIC_SAMPLES = 24_000  # one second per message is already far more than a page sends
PCM16_SCALE = 32767.0


class AudioMessageError(CreatureError, ValueError):
    """A message from a page that does not follow the protocol."""


def float_to_pcm16(pcm: np.ndarray) -> bytes:
    x = np.clip(np.asarray(pcm, dtype=np.float32), -1.0, 1.0)
    return np.round(x * PCM16_SCALE).astype("<i2").tobytes()


def pcm16_to_float(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM16_SCALE


def encode_bot_frame(index: int, t: float, mouth: float, pcm: np.ndarray) -> bytes:
    head = BOT_HEADER.pack(KIND_BOT_FRAME, VERSION, 0, index & 0xFFFFFFFF, float(mouth), float(t))
    return head + float_to_pcm16(pcm)


@dataclass(slots=True)
class BotFrame:
    index: int
    t: float
    mouth: float
    pcm: np.ndarray


def decode_bot_frame(msg: bytes) -> BotFrame:
    if len(msg) < BOT_HEADER.size or (len(msg) - BOT_HEADER.size) % 2:
        raise AudioMessageError(f"bot frame: bad length {len(msg)}")
    kind, ver, _flags, index, mouth, t = BOT_HEADER.unpack_from(msg)
    if kind != KIND_BOT_FRAME or ver != VERSION:
        raise AudioMessageError(f"bot frame: kind {kind} version {ver}, expected 1/{VERSION}")
    return BotFrame(index, t, mouth, pcm16_to_float(memoryview(msg)[BOT_HEADER.size :]))


def encode_mic(seq: int, pcm: np.ndarray) -> bytes:
    return MIC_HEADER.pack(KIND_MIC, VERSION, 0, seq & 0xFFFFFFFF) + float_to_pcm16(pcm)


def decode_mic(msg: bytes) -> tuple[int, np.ndarray]:
    """(seq, float32 samples); raises AudioMessageError saying what is wrong."""
    n = len(msg)
    if n < MIC_HEADER.size:
        raise AudioMessageError(f"mic message of {n} bytes is shorter than its 8-byte header")
    kind, ver, _flags, seq = MIC_HEADER.unpack_from(msg)
    if kind != KIND_MIC:
        raise AudioMessageError(f"mic message has kind {kind}, expected {KIND_MIC}")
    if ver != VERSION:
        raise AudioMessageError(f"mic message has version {ver}, expected {VERSION}")
    body = n - MIC_HEADER.size
    if body % 2:
        raise AudioMessageError(f"mic message body of {body} bytes is not whole PCM16 samples")
    if body // 2 > MAX_MIC_SAMPLES:
        raise AudioMessageError(f"mic message holds {body // 2} samples, at most {MAX_MIC_SAMPLES}")
    return seq, pcm16_to_float(memoryview(msg)[MIC_HEADER.size :])
