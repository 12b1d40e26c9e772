"""The remote backend's protocol handling against real WebSocket peers that are not Moshi
(a Rust-style handshake, a wrong greeting, a server that goes silent, nobody listening), and
the jitter buffer's alignment rule. No torch needed."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time

import numpy as np
import pytest

from track2_voice.backends.base import BackendError
from track2_voice.backends.moshi_protocol import (
    ConnectError,
    HandshakeError,
    open_session,
    session_url,
)
from track2_voice.config import SamplingConfig, VoiceConfig
from track2_voice.devtools.moshi_server_cpu import free_port
from track2_voice.frames import FRAME_SAMPLES, FRAME_SECONDS
from track2_voice.jitter import JitterBuffer


def frame(v: float) -> np.ndarray:
    return np.full(FRAME_SAMPLES, v, dtype=np.float32)


# -- jitter buffer -----------------------------------------------------------------------------


def test_text_goes_with_the_audio_frame_received_just_before_it():
    jb = JitterBuffer(prime_frames=1, max_frames=8)
    jb.push_audio(frame(0.1), 0.0)
    jb.push_text(" Hel")
    jb.push_audio(frame(0.2), 0.1)
    jb.push_text("lo")
    f1, t1 = jb.pop()
    f2, t2 = jb.pop()
    assert (f1.pcm[0], t1) == (np.float32(0.1), " Hel")
    assert (f2.pcm[0], t2) == (np.float32(0.2), "lo")


def test_text_for_an_already_played_frame_goes_out_with_the_next_step():
    jb = JitterBuffer(1, 8)
    jb.push_audio(frame(0.1), 0.0)
    assert jb.pop()[1] is None
    jb.push_text(" late")
    f, text = jb.pop()  # nothing buffered: silence, but the text is not held back
    assert f is None and text == " late"
    assert jb.stats.late_text == 1


def test_priming_underrun_and_bounded_delay():
    jb = JitterBuffer(prime_frames=2, max_frames=3)
    jb.push_audio(frame(0.1), 0.0)
    assert jb.pop()[0] is None  # not primed yet
    jb.push_audio(frame(0.2), 0.0)
    assert jb.pop()[0].pcm[0] == np.float32(0.1)
    assert jb.pop()[0].pcm[0] == np.float32(0.2)
    assert jb.pop()[0] is None and jb.stats.underruns == 1
    for i in range(5):
        jb.push_audio(frame(0.3 + i / 100), 0.0)
        jb.push_text(str(i))
    assert len(jb) == 3 and jb.stats.dropped == 2
    f, text = jb.pop()
    assert text == "012"  # text of dropped frames is kept, in order


# -- handshakes against real WebSocket servers ---------------------------------------------


class PeerServer:
    """A real websockets server on loopback with a scripted greeting (not a Moshi model)."""

    def __init__(self, greeting: list[bytes | str], tls=None) -> None:
        self.greeting = greeting
        self.tls = tls
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.received = 0
        self.paths: list[str] = []  # each connection's request path, query included

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        async def handler(ws):
            self.paths.append(ws.request.path)
            for m in self.greeting:
                await ws.send(m)
            async for _ in ws:  # swallow the client's audio, answer nothing
                self.received += 1

        async def main():
            self.stop = asyncio.Event()
            async with serve(handler, "127.0.0.1", self.port, ssl=self.tls):
                self.ready.set()
                await self.stop.wait()

        self.loop.run_until_complete(main())

    def __enter__(self) -> PeerServer:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(5)

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/api/chat"


def test_rust_style_metadata_and_nine_byte_handshake_are_accepted():
    meta = {"text_temperature": 0.7, "instance_name": "rust"}
    hs = b"\x00" + struct.pack("<II", 3, 7)
    with PeerServer([b"\x04" + json.dumps(meta).encode(), hs]) as srv:

        async def go():
            ws, info = await open_session(srv.url, handshake_timeout=3)
            await ws.close()
            return info

        info = asyncio.run(go())
    assert info == {"metadata": meta, "protocol_version": 3, "model_version": 7}


@pytest.mark.parametrize(
    "greeting, expected",
    [
        ([b"\x02hello"], "expected the handshake (kind 0) first, got a message of kind 2"),
        (["hello"], "not a Moshi-protocol server"),
        ([b"\x00abc"], "handshake of 4 bytes"),
        ([b"\x05model overloaded"], "refused the session: model overloaded"),
        ([], "no handshake within 0.5 s"),
    ],
)
def test_bad_handshakes_say_what_was_wrong(greeting, expected):
    with PeerServer(greeting) as srv:
        with pytest.raises(HandshakeError) as ei:
            asyncio.run(open_session(srv.url, handshake_timeout=0.5))
    assert expected in str(ei.value)


def test_connection_refused_is_named_and_start_fails_fast():
    port = free_port()
    with pytest.raises(ConnectError, match=f"connection refused by 127.0.0.1:{port}"):
        asyncio.run(open_session(f"ws://127.0.0.1:{port}/api/chat"))
    from track2_voice.backends.remote import RemoteBackend

    cfg = VoiceConfig(backend="remote")
    cfg.remote.url = f"ws://127.0.0.1:{port}/api/chat"
    cfg.remote.start_wait_s = 0.5
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="connection refused"):
        RemoteBackend(cfg).start()
    assert time.monotonic() - t0 < 5


def test_sampling_params_go_in_the_query_and_url_params_win():
    url = session_url("ws://h:1/api/chat?text_topk=5", SamplingConfig(temp=0.6), {"pad_mult": "0"})
    assert "audio_temperature=0.6" in url and "text_topk=5" in url and "pad_mult=0" in url
    with pytest.raises(BackendError, match="ws:// or wss://"):
        session_url("http://h:1/api/chat")


def _came_back(kinds: list[str]) -> bool:
    """A disconnect was announced, and a connect after it."""
    return "disconnected" in kinds and "connected" in kinds[kinds.index("disconnected") :]


def test_silent_server_means_disconnected_then_retry_and_step_never_blocks():
    from track2_voice.backends.remote import RemoteBackend

    with PeerServer([b"\x00"]) as srv:
        cfg = VoiceConfig(backend="remote")
        cfg.remote.url = srv.url
        cfg.remote.silence_timeout_s = 0.6
        cfg.remote.backoff_base_s = 0.1
        b = RemoteBackend(cfg)
        b.start()
        kinds: list[str] = []
        step_s: list[float] = []
        deadline = time.monotonic() + 30.0  # a generous bound for a loaded machine
        try:
            # step at the fast loop's pace until the silence was noticed and the session is back
            while not _came_back(kinds):
                assert time.monotonic() < deadline, f"no disconnect and reconnect: {kinds}"
                t = time.perf_counter()
                r = b.step(frame(0.01))
                step_s.append(time.perf_counter() - t)
                assert not r.pcm.any()  # nothing came back: silence
                kinds += [e.kind for e in r.events]
                time.sleep(FRAME_SECONDS)
        finally:
            b.close()
    assert kinds[0] == "connected" and _came_back(kinds)
    assert srv.received > 0  # our audio pages reached the peer
    # never waited on the network: a step takes no time of its own, and none lasted anywhere near
    # the silence timeout or a reconnection (a loaded machine may delay any one a little)
    assert float(np.median(step_s)) < 0.01
    assert max(step_s) < cfg.remote.silence_timeout_s / 2


def test_wss_with_a_self_signed_certificate_needs_insecure(tmp_path):
    import ssl
    import subprocess

    from tests.conftest import require_tool

    openssl = require_tool("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with PeerServer([b"\x00"], tls=tls) as srv:
        assert srv.url.startswith("wss://")
        with pytest.raises(ConnectError, match="use --insecure"):
            asyncio.run(open_session(srv.url, handshake_timeout=2))

        async def go():
            ws, info = await open_session(srv.url, insecure=True, handshake_timeout=2)
            await ws.close()
            return info

        assert asyncio.run(go()) == {}


SECRET = "s3cr3t-0f-the-model-server"


def test_the_record_and_the_log_keep_no_token_but_every_reconnection_sends_it(
    tmp_path, caplog, monkeypatch
):
    from orchestrator.bus import Bus
    from orchestrator.runtime.record import JsonlRecorder
    from track2_voice.backends.remote import RemoteBackend

    record = tmp_path / "session.jsonl"
    # the library's own loggers as a fresh process has them (an earlier test's logging
    # config may have disabled them, or raised their level)
    for name in ("websockets", "websockets.client"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    with (
        PeerServer([b"\x00"]) as srv,
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="websockets"),
    ):
        cfg = VoiceConfig(backend="remote")
        cfg.remote.url = f"{srv.url}?token={SECRET}"
        cfg.remote.silence_timeout_s = 0.6  # the peer says nothing: it drops, then reconnects
        cfg.remote.backoff_base_s = 0.1
        bus = Bus()
        rec = JsonlRecorder(record, bus)
        b = RemoteBackend(cfg)
        b.start()
        kinds: list[str] = []
        deadline = time.monotonic() + 30.0
        try:
            while not _came_back(kinds):
                assert time.monotonic() < deadline, f"no disconnect and reconnect: {kinds}"
                for ev in b.step(frame(0.01)).events:
                    bus.publish(ev)
                    kinds.append(ev.kind)
                time.sleep(FRAME_SECONDS)  # the fast loop's pace
        finally:
            b.close()
            rec.close()
    assert len(srv.paths) >= 2 and all(f"token={SECRET}" in p for p in srv.paths), srv.paths
    text = record.read_text()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]
    urls = {d["url"] for d in lines if d["kind"] in ("connected", "disconnected")}
    assert urls == {f"{srv.url}?token=***"}
    assert [d["kind"] for d in lines].count("connected") >= 2
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("track2_voice")]
    assert ours and not [m for m in ours if SECRET in m]
    # the WebSocket library's debug lines (-v) have it: the creature's log handler hides it
    assert any(SECRET in r.getMessage() for r in caplog.records if r.name.startswith("websockets"))


def test_the_creature_log_hides_a_token_whoever_logs_it(capsys):
    from orchestrator.cli import logs

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        logs.configure("DEBUG")
        logging.getLogger("websockets.client").debug(
            "> GET /api/chat?text_topk=25&token=%s HTTP/1.1", SECRET
        )
        logging.getLogger("track2_voice.x").info("plain %s", "line")
    finally:
        for h in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(h)
        root.setLevel(level)
    err = capsys.readouterr().err
    assert SECRET not in err and "GET /api/chat?text_topk=25&token=*** HTTP/1.1" in err
    assert "track2_voice.x: plain line" in err


def test_errors_name_the_url_without_its_token():
    from track2_voice.backends.moshi_protocol import upgrade_refused

    url = f"ws://h:1/api/chat?token={SECRET}&text_topk=5"
    said = upgrade_refused(url, 403)
    assert SECRET not in said and "ws://h:1/api/chat?token=***&text_topk=5" in said
    with pytest.raises(BackendError) as e:
        session_url(f"http://h:1/api/chat?token={SECRET}")
    assert SECRET not in str(e.value)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("ws://h:1/api/chat?token=abc&text_topk=5", "ws://h:1/api/chat?token=***&text_topk=5"),
        (
            "wss://h/x?api_key=1&Signature=2&secret=3",
            "wss://h/x?api_key=***&Signature=***&secret=***",
        ),
        ("https://user:pw@hook.example/in", "https://user:***@hook.example/in"),
        ("ws://h:1/api/chat?text_topk=5&pad_mult=0", "ws://h:1/api/chat?text_topk=5&pad_mult=0"),
        ("ws://[::1/api/chat?token=abc", "<a URL that does not parse>"),
    ],
)
def test_redact_url_hides_credentials_and_keeps_the_rest(url, shown):
    from track2_voice.redact import redact_url

    assert redact_url(url) == shown


def test_redact_text_finds_credentials_inside_a_line():
    from track2_voice.redact import redact_text

    line = 'POST "https://h/x?access_token=abc&n=1" then ws://h/?Sig=zz done'
    assert redact_text(line) == 'POST "https://h/x?access_token=***&n=1" then ws://h/?Sig=*** done'
    assert redact_text("no=secret here") == "no=secret here"  # not a query
