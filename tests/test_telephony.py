"""The telephone bridge over real WebSockets and HTTP: codec, protocol, who may call, bad input,
and a whole call through a voice session with the test peer of the Media Streams protocol."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soxr
import websockets
from twilio.request_validator import RequestValidator

from face.phone.telephone_audio import (
    CREATURE_RATE,
    PHONE_RATE,
    TelephoneAudio,
    float_to_mulaw,
    mulaw_to_float,
)
from face.phone.telephony import (
    MAX_FORM_BYTES,
    STREAM_PATH,
    TWIML_PATH,
    TelephonyBridge,
    bridge_server,
)
from face.phone.telephony_config import TelephonyConfig
from face.phone.twilio_protocol import StartMsg, StreamMessageError, parse
from orchestrator.config import load_config
from orchestrator.runtime.io_loop import IoLoop
from orchestrator.runtime.telephony_link import telephony_running
from orchestrator.runtime.voice_session import VoiceSession
from tests.conftest import espeak_wav
from tests.twilio_peer import TwilioPeer
from track2_voice.audio.devices import load_audio
from track2_voice.common.web import CloseCode, bind_socket

TOKEN = "creature-test-token"
AUTH = "twilio-account-auth-token-for-tests"
PUBLIC = "https://creature.example.org"


def test_mulaw_round_trip_keeps_speech_band_audio():
    t = np.arange(CREATURE_RATE) / CREATURE_RATE
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    tel = TelephoneAudio()
    enc = b"".join(tel.encode(x[i : i + 1920]) for i in range(0, x.size, 1920))
    assert len(enc) == PHONE_RATE  # one byte per three samples, over chunks of any size
    y = np.concatenate([tel.decode(enc[i : i + 160]) for i in range(0, len(enc), 160)])
    assert y.size == x.size
    lag = int(np.argmax(np.correlate(y[:4000], x[:2000], "valid")))
    assert lag < 200  # the two filters' fixed delay: 2 x 95 samples
    err = y[lag + 2000 : 20000] - x[2000 : 20000 - lag]
    snr = 10 * np.log10(np.sum(x[2000 : 20000 - lag] ** 2) / np.sum(err**2))
    assert snr > 30  # G.711 gives ~38 dB on a loud tone


def test_mulaw_codec_matches_g711_at_its_ends():
    assert float_to_mulaw(np.zeros(4, np.float32)) == b"\xff" * 4  # silence is 0xFF
    assert np.allclose(mulaw_to_float(b"\x00\x80"), [-1.0, 1.0], atol=0.02)


@pytest.mark.parametrize(
    "text, words",
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"event": "hello"}', "unknown event 'hello'"),
        ('{"event": "media"}', "'media' must be an object"),
        ('{"event": "media", "media": {"payload": "@@@"}}', "not base64"),
        ('{"event": "media", "media": {"payload": "", "chunk": "x"}}', "'chunk' must be"),
        ('{"event": "start", "start": {"customParameters": [1]}}', "customParameters"),
        ('{"event": "mark", "mark": {}}', "'name' must be a string"),
    ],
)
def test_bad_stream_messages_say_what_is_wrong(text, words):
    with pytest.raises(StreamMessageError, match=words):
        parse(text)


def test_start_message_is_typed():
    msg = parse(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": {
                    "streamSid": "MZ1",
                    "callSid": "CA1",
                    "accountSid": "AC1",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {"token": "x", "caller": "me"},
                },
                "streamSid": "MZ1",
            }
        )
    )
    assert isinstance(msg, StartMsg)
    assert (msg.stream_sid, msg.call_sid, msg.sample_rate) == ("MZ1", "CA1", 8000)
    assert msg.custom_parameters == {"token": "x", "caller": "me"}


# -- the bridge alone, on an I/O loop ---------------------------------------------------------


class Reports:
    """What the bridge reported, as lists (a CallObserver)."""

    def __init__(self) -> None:
        self.started_calls: list[tuple[str, str]] = []
        self.ended_calls: list[tuple[str, dict]] = []
        self.digits: list[str] = []
        self.clears: list[float] = []
        self.refusals: list[tuple[str, str]] = []

    def call_started(self, start, via):
        self.started_calls.append((start.call_sid, via))

    def call_ended(self, start, reason, stats):
        self.ended_calls.append((reason, stats))

    def dtmf(self, start, digit):
        self.digits.append(digit)

    def cleared(self, start, dropped_ms, marks_pending):
        self.clears.append(dropped_ms)

    def refused(self, where, peer, reason):
        self.refusals.append((where, reason))


@pytest.fixture
def make_bridge(monkeypatch):
    """A bridge served as ``serve`` serves it (``bridge_server``), with config overrides."""
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH)
    running = []

    def make(**overrides) -> TelephonyBridge:
        heard: list[np.ndarray] = []
        reports = Reports()
        cfg = TelephonyConfig(
            **{"port": 0, "public_url": PUBLIC, "start_timeout_s": 2.0, **overrides}
        )
        b = TelephonyBridge(cfg, TOKEN, heard.append, reports)
        io = IoLoop("telephony-test").start()
        server = bridge_server(b, bind_socket("127.0.0.1", 0, "port"))
        io.run(server.start())
        running.append((io, server))
        b.heard, b.reports, b.io, b.port = heard, reports, io, server.port
        b.base = f"http://127.0.0.1:{server.port}"
        b.ws_url = f"ws://127.0.0.1:{server.port}{STREAM_PATH}"
        return b

    yield make
    for io, server in running:
        io.run(server.stop())
        io.stop()


@pytest.fixture
def bridge(make_bridge):
    return make_bridge()


WSS = PUBLIC.replace("https", "wss") + STREAM_PATH


def _signed_headers(url: str = WSS, params: dict | None = None) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(AUTH).compute_signature(url, params or {})}


def _ticket(bridge, call_sid: str = "CA" + "0" * 32) -> str:
    """What the carrier does first: a signed webhook POST; the TwiML's stream ticket."""
    form = {"CallSid": call_sid, "From": "+15550001111"}
    r = httpx.post(
        bridge.base + TWIML_PATH, data=form, headers=_signed_headers(PUBLIC + TWIML_PATH, form)
    )
    assert r.status_code == 200, r.text
    return re.search(r'<Parameter name="token" value="([^"]+)"', r.text).group(1)


def test_webhook_needs_a_valid_twilio_signature_or_the_token(bridge):
    form = {"CallSid": "CA9", "From": "+15550001111", "To": "+15550002222"}
    url = PUBLIC + TWIML_PATH
    good = RequestValidator(AUTH).compute_signature(url, form)
    hook = bridge.base + TWIML_PATH
    assert httpx.post(hook, data=form).status_code == 403
    assert httpx.post(hook, data=form, headers={"X-Twilio-Signature": "bogus="}).status_code == 403
    tampered = {**form, "From": "+15559999999"}  # the signature covers the form
    r = httpx.post(hook, data=tampered, headers={"X-Twilio-Signature": good})
    assert r.status_code == 403
    r = httpx.post(hook, data=form, headers={"X-Twilio-Signature": good})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert '<Stream url="wss://creature.example.org/telephony/stream">' in r.text
    assert '<Parameter name="token" value="' in r.text and TOKEN not in r.text  # a ticket
    assert httpx.post(hook + f"?token={TOKEN}", data=form).status_code == 200  # other carriers
    assert [w for w, _ in bridge.reports.refusals] == ["webhook"] * 3
    assert "bad or missing X-Twilio-Signature" in bridge.reports.refusals[1][1]


async def _close_code(peer: TwilioPeer) -> int | None:
    async with peer:
        await asyncio.wait_for(peer.closed.wait(), 5)
    return peer.close_code


def test_a_stream_without_a_credential_is_refused(bridge):
    assert asyncio.run(_close_code(TwilioPeer(bridge.ws_url))) == CloseCode.UNAUTHORIZED
    bad = TwilioPeer(bridge.ws_url, {"token": "wrong-token"})
    assert asyncio.run(_close_code(bad)) == CloseCode.UNAUTHORIZED
    # a wrong signature is refused before the socket opens
    with pytest.raises(websockets.InvalidStatus, match="403"):
        asyncio.run(
            _close_code(TwilioPeer(bridge.ws_url, {"token": TOKEN}, {"X-Twilio-Signature": "x="}))
        )
    assert [w for w, _ in bridge.reports.refusals] == ["stream"] * 3
    assert bridge.call is None and not bridge.reports.started_calls


def test_a_signed_stream_is_a_call_and_bad_messages_are_answered(bridge):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(1600) / PHONE_RATE)).astype(np.float32)
    ticket = _ticket(bridge)

    async def go():
        async with TwilioPeer(bridge.ws_url, {"token": ticket}, _signed_headers()) as call:
            await call.send("{not json")
            await call.send({"event": "wave"})
            await call.send(
                {"event": "media", "streamSid": call.stream_sid, "media": {"payload": "!!"}}
            )
            await call.ws.send(b"\x00\x01")  # binary is not part of the protocol
            await call.wait_for(lambda: len(call.got.errors) >= 4, 5)
            await call.say(tone, realtime=False)  # the socket still serves the call
            await call.dtmf("7")
            await call.wait_for(lambda: sum(p.size for p in bridge.heard) >= 4000, 5)
            await call.stop()
            await asyncio.wait_for(call.closed.wait(), 5)
            return call.got.errors

    errors = asyncio.run(go())
    assert any("not JSON" in e for e in errors) and any("'wave'" in e for e in errors)
    assert any("not base64" in e for e in errors) and any("binary" in e for e in errors)
    assert bridge.reports.started_calls == [("CA" + "0" * 32, "twilio-signature")]
    heard = np.concatenate(bridge.heard)
    assert heard.size == 3 * tone.size  # 24 kHz: three samples per 8 kHz sample
    assert np.sqrt(np.mean(heard[2000:] ** 2)) > 0.15  # the tone, not silence
    assert bridge.reports.digits == ["7"]
    reason, stats = bridge.reports.ended_calls[0]
    assert reason == "stop" and stats["chunks_in"] == 10 and stats["bad_messages"] == 3


def test_one_call_at_a_time_and_only_mu_law(bridge):
    async def go():
        async with TwilioPeer(bridge.ws_url, {"token": TOKEN}) as first:
            await first.wait_for(lambda: bridge.call is not None, 5)
            hook = httpx.post(bridge.base + TWIML_PATH + f"?token={TOKEN}")
            second = await _close_code(TwilioPeer(bridge.ws_url, {"token": TOKEN}))
            await first.stop()
            return hook.text, second

    twiml, second = asyncio.run(go())
    assert '<Reject reason="busy"' in twiml
    assert second == CloseCode.BUSY
    pcm16 = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
    other = TwilioPeer(bridge.ws_url, {"token": TOKEN}, media_format=pcm16)
    assert asyncio.run(_close_code(other)) == CloseCode.BAD_STREAM


# -- a whole call through a voice session -------------------------------------------------------


def _session(tmp_path: Path) -> VoiceSession:
    cfg = load_config(
        overrides={
            "voice.backend": "replay",
            "voice.replay.scene": "greeting",
            "voice.loop.realtime": True,
            "face.enabled": False,
            "slow_loop.robot.port": 0,
            "slow_loop.outbox.path": str(tmp_path / "outbox.sqlite"),
            "phone.state_dir": str(tmp_path),
            "telephony.port": 0,
            "telephony.token": TOKEN,
        }
    )
    return VoiceSession(cfg, tmp_path / "call.jsonl").start()


def _voiced_s(peer: TwilioPeer) -> float:
    a = peer.got.audio()
    return float(np.sum(np.abs(a) > 0.02)) / PHONE_RATE


async def _hold_call(url: str, caller8k: np.ndarray, session: VoiceSession, tel) -> TwilioPeer:
    """The caller's side: quiet until greeted, then talks over the greeting, and stays on
    until the creature has answered, meant to act and had its marks echoed."""
    async with TwilioPeer(url, {"token": TOKEN, "caller": "test-peer"}) as peer:
        # the line is silent until the creature greets; the caller is quiet too
        talker = asyncio.create_task(peer.silence(30.0))
        assert await peer.wait_for(lambda: _voiced_s(peer) > 0.6, 20), "no greeting"
        talker.cancel()
        await peer.say(caller8k)  # over the creature's greeting: a barge-in
        talker = asyncio.create_task(peer.silence(30.0))
        assert await peer.wait_for(lambda: peer.got.clears, 10), "no clear"
        # the creature answers (the scene's next line) and means to act on it
        assert await peer.wait_for(lambda: session.slow.intents >= 1, 15), "no intent"
        assert await peer.wait_for(lambda: len(peer.got.marks_echoed) >= 6, 15)
        await asyncio.sleep(0)  # let the bridge read the last echoes
        assert await peer.wait_for(lambda: tel.bridge.call.marks_heard >= 6, 5)
        talker.cancel()
        await peer.stop()
        await asyncio.wait_for(peer.closed.wait(), 5)
        return peer


def _call_the_creature(session: VoiceSession, caller8k: np.ndarray) -> TwilioPeer:
    """The session runs its loop in a thread behind the telephony bridge for one call; the
    loop is stopped and the session closed whatever happens."""
    session.start_slow()
    loop_thread = None
    try:
        with telephony_running(session, session.source) as tel:
            session.start_backend()
            loop_thread = threading.Thread(
                target=session.run, kwargs={"stop_when_finished": True}, daemon=True
            )
            loop_thread.start()
            url = f"ws://127.0.0.1:{tel.port}{STREAM_PATH}"
            peer = asyncio.run(_hold_call(url, caller8k, session, tel))
            session.loop.stop()
            loop_thread.join(10)
    finally:
        if loop_thread is not None and loop_thread.is_alive():
            session.loop.stop()
            loop_thread.join(10)
        session.close()
    return peer


def _assert_paced(got, lead_s: float) -> None:
    assert all(len(m) == 160 for _, m in got.media)  # 20 ms chunks
    # paced: the carrier's buffer never ran far ahead of the caller's ear. The peer sees
    # arrival times, so a moment its own loop was not scheduled (a loaded machine) shows as a
    # few chunks arriving at once: nearly all arrivals within lead + 60 ms, none far beyond
    ahead = np.asarray(got.ahead_s)
    assert np.percentile(ahead, 95) <= lead_s + 0.06, np.percentile(ahead, 95)
    assert ahead.max() <= lead_s + 0.25, ahead.max()
    span = got.media[-1][0] - got.media[0][0]
    assert len(got.media) * 0.02 <= span + lead_s + 0.1  # no faster than real time


def _assert_greeting_heard(got) -> None:
    # the creature's voice is its greeting (the scene's first line), through the phone band
    hello = load_audio(Path("configs/scenes/greeting/01_hello.wav"))
    hello8k = soxr.resample(hello, CREATURE_RATE, PHONE_RATE)[:PHONE_RATE]
    heard = got.audio()
    c = np.correlate(heard[: 8 * PHONE_RATE], hello8k, "valid")
    norm = np.sqrt(
        np.sum(hello8k**2)
        * np.max(np.convolve(heard[: 8 * PHONE_RATE] ** 2, np.ones(hello8k.size), "valid"))
    )
    assert np.max(np.abs(c)) / norm > 0.7
    assert got.clears and got.marks and set(got.marks_echoed) <= {n for _, n in got.marks}


def _assert_call_recorded(record: str) -> None:
    lines = [json.loads(x) for x in record.splitlines()]
    kinds = [x["kind"] for x in lines]
    started = next(x for x in lines if x["kind"] == "call_started")
    assert started["via"] == "stream-parameter" and started["parameters"] == {"caller": "test-peer"}
    assert TOKEN not in record
    for kind in ("user_speech_started", "call_cleared", "intent", "tool_call"):
        assert kind in kinds, kind
    ended = next(x for x in lines if x["kind"] == "call_ended")
    assert ended["reason"] == "stop" and ended["marks_heard"] >= 6 and ended["clears"] >= 1


def test_a_caller_talks_with_the_creature(tmp_path):
    """The peer holds a call: the creature's greeting comes back paced with marks; the caller
    talks over it (clear, pending marks echoed), the creature answers and an intent fires; the
    call's events are in the record, without the token."""
    caller = load_audio(espeak_wav(tmp_path / "caller.wav", "Could you pick up the red cup?"))
    caller8k = soxr.resample(caller, CREATURE_RATE, PHONE_RATE).astype(np.float32)
    session = _session(tmp_path)
    lead_s = session.cfg.telephony.lead_ms / 1000
    got = _call_the_creature(session, caller8k).got
    _assert_paced(got, lead_s)
    _assert_greeting_heard(got)
    _assert_call_recorded((tmp_path / "call.jsonl").read_text())


# -- attacks (each failed on the bridge before it was hardened) ---------------------------------


def _raw_post(port: int, head: str, body_chunks, timeout: float = 5.0) -> tuple[bytes, int]:
    """Send ``head`` then body chunks until the server answers or closes; (answer, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    sock.sendall(head.encode())
    sent = 0
    sock.settimeout(0.0)
    answer = b""
    end = time.monotonic() + timeout
    try:
        for chunk in body_chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer or time.monotonic() > end:
                break
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.005)
            except OSError:  # the server closed
                break
        sock.settimeout(timeout)
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    except OSError:
        pass
    finally:
        sock.close()
    return answer, sent


def test_the_webhook_bounds_its_body_while_reading_it(bridge):
    """No credential is needed to POST: a declared Content-Length over the cap is refused at
    once (it used to wait for, and buffer, the whole body), and a chunked body with no length
    is refused once the cap is passed, not after the sender is done (it used to read it all)."""
    hook = f"POST {TWIML_PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n"
    # no body follows: the bridge that waited for one never answered
    answer, _ = _raw_post(bridge.port, hook + "content-length: 400000000\r\n\r\n", [], 10.0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]

    def chunked(total=64 << 20, size=1 << 16):
        piece = f"{size:x}\r\n".encode() + b"a" * size + b"\r\n"
        for _ in range(total // size):
            yield piece

    answer, sent = _raw_post(bridge.port, hook + "transfer-encoding: chunked\r\n\r\n", chunked())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert sent < 16 << 20, f"{sent} bytes taken before the refusal"
    # a body under the cap is still a form
    form = "CallSid=CA1"
    answer, _ = _raw_post(
        bridge.port, hook + f"content-length: {len(form)}\r\n\r\n{form}", [b""], 3.0
    )
    assert answer.startswith(b"HTTP/1.1 403")  # read whole, then refused: no credential
    assert len(form) < MAX_FORM_BYTES


def test_strangers_cannot_fill_the_seats_a_signed_stream_needs(make_bridge):
    """8 streams with no credential held open (the most a stranger could hold before) do not
    keep a signed carrier stream out; one address holds at most its share, the newest shedding
    its oldest."""
    bridge = make_bridge(start_timeout_s=10.0)

    async def go():
        strangers = [await websockets.connect(bridge.ws_url) for _ in range(8)]
        await asyncio.sleep(0.2)
        async with TwilioPeer(bridge.ws_url, {"token": _ticket(bridge)}, _signed_headers()) as call:
            assert await call.wait_for(lambda: bridge.call is not None, 5), "the call never started"
            await call.stop()
            await asyncio.wait_for(call.closed.wait(), 5)
        waiting = len(bridge.seats)  # the strangers still waiting for 'start'
        shed = [s.close_code for s in strangers if s.close_code is not None]
        for s in strangers:
            await s.close()
        return waiting, shed

    waiting, shed = asyncio.run(go())
    assert bridge.reports.started_calls == [("CA" + "0" * 32, "twilio-signature")]
    assert waiting == bridge.cfg.max_unauthenticated_per_address == 2
    assert len(shed) == 6 and set(shed) == {CloseCode.BUSY}


def test_strangers_from_many_addresses_shed_the_address_holding_most():
    from face.phone.stream_seats import StreamSeats

    async def go():
        seats = StreamSeats(max_credentialed=1, max_unauthenticated=3, per_address=2)
        a1, a2, b1 = seats.take("a", False), seats.take("a", False), seats.take("b", False)
        c1 = seats.take("c", False)  # full: "a" holds most, its oldest goes
        assert a1.shed.is_set() and not (a2.shed.is_set() or b1.shed.is_set())
        signed = seats.take("a", True)
        assert not c1.shed.is_set() and seats.waiting(True) == 1
        seats.take("a", True)  # credentialed seats shed only their own oldest
        assert signed.shed.is_set() and seats.waiting(False) == 3

    asyncio.run(go())


HUGE_INT = '{"event": "media", "media": {"chunk": ' + "7" * 5000 + "}}"
DEEP = "[" * 30000 + "]" * 30000


@pytest.mark.parametrize("bad", [HUGE_INT, DEEP], ids=["5000-digit-int", "30000-deep"])
def test_json_the_parser_cannot_take_is_a_malformed_message(bridge, bad):
    """Before ``start`` the stream is closed with 4400 after an error reply (it used to crash
    the handler: a traceback and no close frame); during a call the message is answered and
    counted and the call goes on (it used to end the call)."""

    async def before_start():
        async with websockets.connect(bridge.ws_url) as ws:
            await ws.send(bad)
            error = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            return error, closed.value.rcvd.code if closed.value.rcvd else None

    error, code = asyncio.run(before_start())
    assert error["event"] == "error" and "not JSON" in error["error"]
    assert len(error["error"]) < 200
    assert code == CloseCode.BAD_STREAM

    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(800) / PHONE_RATE)).astype(np.float32)

    async def during_call():
        async with TwilioPeer(bridge.ws_url, {"token": TOKEN}) as call:
            await call.wait_for(lambda: bridge.call is not None, 5)
            await call.send(bad)
            await call.send(bad)
            await call.wait_for(lambda: len(call.got.errors) >= 2, 5)
            await call.say(tone, realtime=False)  # the call goes on
            await call.wait_for(lambda: sum(p.size for p in bridge.heard) >= 3 * tone.size, 5)
            await call.stop()
            await asyncio.wait_for(call.closed.wait(), 5)
            return call.close_code

    assert asyncio.run(during_call()) == 1000
    reason, stats = bridge.reports.ended_calls[0]
    assert reason == "stop" and stats["bad_messages"] == 2 and stats["chunks_in"] == 5


def test_a_captured_signature_opens_no_stream_without_its_single_use_ticket(bridge):
    """The upgrade's signature covers only the URL, the same for every call: alone it opens
    nothing; the ticket from the served TwiML works once, for its own call."""
    assert asyncio.run(_close_code(TwilioPeer(bridge.ws_url, headers=_signed_headers()))) == (
        CloseCode.UNAUTHORIZED
    )
    ticket = _ticket(bridge, "CA" + "1" * 32)
    wrong_call = TwilioPeer(bridge.ws_url, {"token": ticket}, _signed_headers())  # CA000...
    assert asyncio.run(_close_code(wrong_call)) == CloseCode.UNAUTHORIZED

    async def call_once(ticket: str) -> int | None:
        peer = TwilioPeer(bridge.ws_url, {"token": ticket}, _signed_headers())
        async with peer:
            if await peer.wait_for(lambda: bridge.call is not None, 2):
                await peer.stop()
            await asyncio.wait_for(peer.closed.wait(), 5)
        return peer.close_code

    ticket = _ticket(bridge)
    assert asyncio.run(call_once(ticket)) == 1000  # a call
    assert asyncio.run(call_once(ticket)) == CloseCode.UNAUTHORIZED  # spent
    assert len(bridge.reports.started_calls) == 1


def test_forwarded_headers_count_only_when_configured(make_bridge):
    """With ``public_url`` unset, a signature made for another host of the same account used to
    pass when the request claimed that host (``Host`` + ``X-Forwarded-Proto``)."""
    form = {"CallSid": "CA9"}
    evil = {
        "X-Twilio-Signature": RequestValidator(AUTH).compute_signature(
            "https://evil.example" + TWIML_PATH, form
        ),
        "Host": "evil.example",
        "X-Forwarded-Proto": "https",
    }
    plain = make_bridge(public_url=None)
    assert httpx.post(plain.base + TWIML_PATH, data=form, headers=evil).status_code == 403
    behind_tunnel = make_bridge(public_url=None, trust_forwarded_headers=True)
    r = httpx.post(behind_tunnel.base + TWIML_PATH, data=form, headers=evil)
    assert r.status_code == 200 and 'url="wss://evil.example/telephony/stream"' in r.text


def test_the_bridge_limits_are_configurable_and_its_port_is_its_own(make_bridge):
    cfg = load_config()
    ports = {cfg.telephony.port, cfg.slow_loop.robot.port, cfg.face.port}
    assert len(ports) == 3, ports
    bridge = make_bridge(limits={"max_connections": 2, "per_ip_rate": 0})

    async def go():
        held = [await websockets.connect(bridge.ws_url) for _ in range(2)]
        try:
            with pytest.raises(websockets.InvalidStatus, match="503"):
                await websockets.connect(bridge.ws_url)
        finally:
            for ws in held:
                await ws.close()

    asyncio.run(go())


def test_ids_in_error_replies_are_clipped(bridge):
    async def go():
        async with TwilioPeer(bridge.ws_url, {"token": TOKEN}) as call:
            await call.wait_for(lambda: bridge.call is not None, 5)
            await call.send({"event": "x" * 1000})
            await call.send({"event": "media", "media": {"payload": "", "chunk": "9" * 999 + "x"}})
            await call.wait_for(lambda: len(call.got.errors) >= 2, 5)
            await call.stop()
            return call.got.errors

    errors = asyncio.run(go())
    assert len(errors) == 2
    for e in errors:
        assert "x" * 65 not in e and "9" * 65 not in e and "(100" in e, e


def test_an_unsigned_stream_with_its_ticket_gets_past_strangers_of_its_own_address(make_bridge):
    """A carrier that does not sign has only the ticket in ``start``: it waits among strangers,
    but a newcomer sheds the oldest, so held-open sockets cannot keep it out."""
    bridge = make_bridge(start_timeout_s=10.0)

    async def go():
        strangers = [await websockets.connect(bridge.ws_url) for _ in range(8)]
        await asyncio.sleep(0.2)
        async with TwilioPeer(bridge.ws_url, {"token": _ticket(bridge)}) as call:
            assert await call.wait_for(lambda: bridge.call is not None, 5), "the call never started"
            await call.stop()
            await asyncio.wait_for(call.closed.wait(), 5)
        for s in strangers:
            await s.close()
        return call.close_code

    assert asyncio.run(go()) == 1000
    assert bridge.reports.started_calls == [("CA" + "0" * 32, "ticket")]


def test_stream_tickets_expire_are_spent_once_and_are_bounded():
    from face.phone.stream_tickets import StreamTickets

    now = [0.0]
    tickets = StreamTickets(ttl_s=30.0, max_outstanding=3, clock=lambda: now[0])
    late = tickets.issue("CA1")
    now[0] = 31.0
    assert not tickets.redeem(late, "CA1")  # expired
    any_call = tickets.issue("")
    assert tickets.redeem(any_call, "CA7") and not tickets.redeem(any_call, "CA7")
    first = tickets.issue("CA1")
    for n in range(3):
        tickets.issue(f"CA{n + 2}")
    assert len(tickets) == 3 and not tickets.redeem(first, "CA1")  # the oldest was forgotten
    assert not tickets.redeem("\ud800", "CA1") and not tickets.redeem(None, "CA1")
