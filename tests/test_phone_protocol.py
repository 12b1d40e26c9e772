"""The phone's audio endpoint over real WebSockets: token, frames both ways, bad input, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
import time

import httpx
import numpy as np
import pytest
import websockets

from face.config import FaceConfig
from face.phone.access import load_or_make_token
from face.phone.audio_protocol import (
    AudioMessageError,
    decode_bot_frame,
    decode_mic,
    encode_bot_frame,
    encode_mic,
)
from face.phone.phone_config import PhoneConfig
from face.phone.qr import qr_text
from face.phone.tls import ensure_self_signed
from orchestrator.runtime.phone_link import build_server, prepare_web
from tests.conftest import creature, require
from track2_voice.audio.devices import ClockSource
from track2_voice.common.web import CloseCode
from track2_voice.frames import FRAME_SAMPLES


def test_frames_round_trip_with_their_mouth_index_and_time():
    pcm = np.sin(np.linspace(0, 40, FRAME_SAMPLES)).astype(np.float32) * 0.5
    f = decode_bot_frame(encode_bot_frame(7, 123.456, 0.75, pcm))
    assert (f.index, round(f.t, 3), round(f.mouth, 3)) == (7, 123.456, 0.75)
    assert np.max(np.abs(f.pcm - pcm)) < 1e-4
    seq, mic = decode_mic(encode_mic(3, pcm[:480]))
    assert seq == 3 and mic.size == 480


@pytest.mark.parametrize(
    "msg, words",
    [
        (b"\x02\x01", "shorter than its 8-byte header"),
        (struct.pack("<BBHI", 9, 1, 0, 0), "kind 9"),
        (struct.pack("<BBHI", 2, 7, 0, 0), "version 7"),
        (struct.pack("<BBHI", 2, 1, 0, 0) + b"\x00", "not whole PCM16 samples"),
    ],
)
def test_bad_mic_messages_say_what_is_wrong(msg, words):
    with pytest.raises(AudioMessageError, match=words):
        decode_mic(msg)


def test_certificate_is_made_once_and_remade_for_a_new_address(tmp_path):
    cert, key = ensure_self_signed(tmp_path, ["localhost", "127.0.0.1"])
    first = cert.read_bytes()
    assert key.stat().st_mode & 0o077 == 0  # the private key is private
    ensure_self_signed(tmp_path, ["localhost"])
    assert cert.read_bytes() == first  # kept for later runs
    ensure_self_signed(tmp_path, ["localhost", "10.1.2.3"])
    assert cert.read_bytes() != first  # the LAN address changed: a new one names it


def test_token_is_kept_between_runs(tmp_path):
    t = load_or_make_token(tmp_path)
    assert len(t) >= 16 and load_or_make_token(tmp_path) == t


def test_qr_code_is_printable_text():
    text = qr_text("https://192.168.1.2:8765/?token=abc")
    assert "█" in text and len(text.splitlines()) > 10


@pytest.fixture
def served(tmp_path):
    """The real face server with the phone routes, over HTTPS with a self-signed certificate."""
    source = ClockSource()
    face = FaceConfig(host="127.0.0.1", port=0, gaze=False)
    phone_cfg = PhoneConfig(state_dir=str(tmp_path), face_needs_token=False)
    setup = prepare_web(face, phone_cfg)
    server, phone = build_server(setup, phone_cfg, source)
    server.start_in_thread()
    yield server, phone, source, setup
    server.stop()


def _ssl() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _until(pred, what: str, timeout: float = 10.0) -> None:
    """Wait on the test's event loop until ``pred()`` holds (the server runs on its own thread)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _close_code(url: str) -> int | None:
    async with websockets.connect(url, ssl=_ssl()) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 3)
        except websockets.ConnectionClosed as e:
            return e.rcvd.code if e.rcvd else None
    return None


def test_wrong_or_missing_token_is_refused(served):
    server, phone, source, _ = served
    base = f"wss://127.0.0.1:{server.port}/ws/audio"
    assert asyncio.run(_close_code(base)) == CloseCode.UNAUTHORIZED
    assert asyncio.run(_close_code(base + "?token=wrong-token")) == CloseCode.UNAUTHORIZED
    assert phone.refused == 2


def test_mic_reaches_the_clock_and_frames_reach_the_page(served):
    server, phone, source, setup = served
    url = f"wss://127.0.0.1:{server.port}/ws/audio?token={setup.token}"
    pcm = (np.random.default_rng(0).standard_normal(FRAME_SAMPLES) * 0.1).astype(np.float32)

    async def go():
        async with websockets.connect(url, ssl=_ssl()) as ws:
            for i in range(4):  # 4 x 480 samples = one frame
                await ws.send(encode_mic(i, pcm[i * 480 : (i + 1) * 480]))
            await ws.send(b"\x02")  # a bad message: answered with an error, the socket lives
            err = json.loads(await asyncio.wait_for(ws.recv(), 3))
            await _until(lambda: phone.connected, "the page to be the phone's audio")
            phone.send_frame(5, 1.25, 0.5, pcm)  # as the fast loop's side does
            got = decode_bot_frame(await asyncio.wait_for(ws.recv(), 3))
            return err, got

    err, got = asyncio.run(go())
    assert "header" in err["error"]
    assert (got.index, got.mouth) == (5, 0.5)
    frame = source.read()
    assert np.max(np.abs(frame.pcm - pcm)) < 1e-3  # the user's audio is the loop's next frame
    assert phone.stats()["bad_messages"] == 1


def test_a_newer_page_takes_over_the_audio(served):
    server, phone, _, setup = served
    url = f"wss://127.0.0.1:{server.port}/ws/audio?token={setup.token}"

    async def go():
        async with websockets.connect(url, ssl=_ssl()) as first:
            await _until(lambda: phone.connected, "the first page to be the phone's audio")
            async with websockets.connect(url, ssl=_ssl()):
                try:
                    await asyncio.wait_for(first.recv(), 3)
                except websockets.ConnectionClosed as e:
                    return e.rcvd.code

    assert asyncio.run(go()) == CloseCode.REPLACED


def test_face_view_can_require_the_token(tmp_path):
    face = FaceConfig(host="127.0.0.1", port=0, gaze=False)
    phone_cfg = PhoneConfig(state_dir=str(tmp_path), face_needs_token=True, tls=False)
    setup = prepare_web(face, phone_cfg)
    server, _ = build_server(setup, phone_cfg, None)
    server.start_in_thread()
    try:
        base = f"http://127.0.0.1:{server.port}/"
        assert httpx.get(base).status_code == 403
        assert httpx.get(base + f"?token={setup.token}").status_code == 200
        assert httpx.get(base + "static/phone_audio.js").status_code == 200
    finally:
        server.stop()


def _has_sound_input() -> bool:
    import sounddevice as sd

    try:
        sd.query_devices(kind="input")
    except Exception:
        return False
    return True


def test_local_audio_without_a_sound_card_gives_the_clear_error(tmp_path):
    # the CI machine has no sound card (a fact of its environment, not a fake); elsewhere the
    # error cannot happen, and the sound card case is covered by tests/test_audio_io.py
    require("a machine without a sound input device", not _has_sound_input())
    r = creature(
        "serve", "--audio", "local", "--face-port", "0", "--set", f"phone.state_dir={tmp_path}"
    )
    assert r.returncode == 2
    assert "no sound input device" in r.stderr
