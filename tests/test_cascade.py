"""The cascade baseline and the shared harness (``creature cascade``, ``track2_voice.devtools.turn_clock``).

The end-to-end test runs the real command: its Pipecat pipeline in the cascade's own
environment (built by ``.ci/install`` with ``creature cascade --setup-only``; in CI a missing
one fails), then the creature's fast loop on a tiny random MLX checkpoint, both through the
same harness on three short shipped utterances.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from tests.conftest import (
    ROOT,
    USER_XDG_STATE_HOME,
    creature,
    espeak_wav,
    require,
    require_module,
)
from tests.slow_support import wait_until
from track2_voice.devtools.turn_clock import (
    CHUNK_S,
    ClockSettings,
    TurnDetail,
    level_db,
    load_utterance,
    side_by_side,
    summarize,
    time_turns,
)

UTTERANCES = ROOT / "benchmarks" / "utterances"
SHORT = ["09_where_is.wav", "11_what_time.wav", "08_can_you_wave.wav"]
CASCADE_STAGES = [
    "turn end wait",
    "LLM first token",
    "LLM first sentence",
    "TTS first audio",
    "to the speaker",
]
PIPECAT_METRICS = ["STT TTFB", "smart turn inference", "LLM TTFB", "TTS TTFB"]


def test_end_of_speech_matches_the_known_end_within_one_chunk(tmp_path):
    """Speech cut abruptly at a known sample, between known silences: the harness's end of
    speech (and so its last voiced chunk) must land within one 20 ms chunk of it."""
    import soundfile as sf

    speech = load_utterance(espeak_wav(tmp_path / "s.wav", "Please pick up the red cup"), 16000)
    win = 160  # 10 ms: cut at the end of a clearly voiced window ~80 % in, an abrupt end
    k = int(speech.speech_end_s * 0.8 * 16000) // win
    while level_db(speech.pcm[k * win : (k + 1) * win]) < -25.0:
        k -= 1
    cut = (k + 1) * win
    lead = np.zeros(int(0.3 * 16000), np.float32)
    tail = np.zeros(16000, np.float32)
    sf.write(tmp_path / "cut.wav", np.concatenate([lead, speech.pcm[:cut], tail]), 16000)
    known_end = (lead.size + cut) / 16000
    for rate in (16000, 24000):
        u = load_utterance(tmp_path / "cut.wav", rate)
        assert abs(u.speech_end_s - known_end) <= CHUNK_S, (u.speech_end_s, known_end)
        assert abs((u.last_voiced_chunk + 0.5) * CHUNK_S - known_end) <= CHUNK_S


class DelayedBeep:
    """A harness self-check peer: answers every utterance with a loud 20 ms beep exactly
    ``delay`` s after the harness says the speech ended, so the measured latency is known."""

    name = "beep"
    rate = 16000

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.heard = None
        self.beep = (0.5 * np.sin(np.arange(480) / 3.0)).astype(np.float32)

    def listen(self, heard) -> None:
        self.heard = heard

    async def feed(self, chunk) -> None:
        pass

    def begin_turn(self, utt, t_end: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_at(
            loop.time() + (t_end + self.delay - time.monotonic()),
            lambda: self.heard(self.beep, 24000, t_end + self.delay),
        )

    async def hush(self) -> None:
        pass

    def quiet(self) -> bool:
        return True

    def end_turn(self, first_audio_t):
        return TurnDetail(stages_ms={"beep": self.delay * 1000.0})


def test_harness_measures_a_known_reply_delay():
    utts = [load_utterance(UTTERANCES / n, 16000) for n in SHORT[:2]]
    s = ClockSettings(lead_in_s=0.1, max_wait_s=1.0, listen_s=0.0, settle_s=0.0, warm_up=False)
    turns = asyncio.run(time_turns(DelayedBeep(0.25), utts, s))
    assert [t.name for t in turns] == SHORT[:2]
    for t in turns:
        # the beep is stamped at its due time; the harness adds nothing of its own
        assert t.latency_ms == pytest.approx(250.0, abs=0.5)
    summary = summarize(turns)
    assert summary["answered"] == 2 and summary["stages_ms"]["beep"]["p50"] == 250.0
    table = side_by_side({"beep": summary}, (1.0, 2.0, 3.0))
    assert "beep" in table and "end to end" in table and "load average 1.00" in table


def test_a_system_that_never_answers_is_reported_as_such():
    utts = [load_utterance(UTTERANCES / SHORT[0], 16000)]
    silent = DelayedBeep(10.0)  # far beyond max_wait
    s = ClockSettings(lead_in_s=0.1, max_wait_s=0.3, listen_s=0.0, settle_s=0.0, warm_up=False)
    (turn,) = asyncio.run(time_turns(silent, utts, s))
    assert turn.latency_ms is None
    assert summarize([turn])["answered"] == 0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--input", "/no/such/utterance.wav"], "/no/such/utterance.wav: no such utterance file"),
        (["--llm-url", "ftp://example"], "--llm-url ftp://example: expected http[s]://"),
        (["--llm-url", "http://127.0.0.1:9/v1"], "--llm-url http://127.0.0.1:9/v1: cannot reach"),
        (["--max-tokens", "0"], "--max-tokens 0: expected a positive number"),
        (["--html", "/no/such/dir/x.html"], "--html /no/such/dir/x.html: directory /no/such/dir"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(args, expected, tmp_path):
    r = creature("cascade", *args, "--venv", str(tmp_path / "never-built"), timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "never-built").exists()  # checked before building anything


@pytest.fixture
def cascade_venv(monkeypatch):
    """The environment ``.ci/install`` built in the user's state directory (the tests' own
    state directory is a fresh temporary one)."""
    from orchestrator.cli.cascade_env import default_venv, is_ready
    from orchestrator.state_dir import default_state_dir

    if USER_XDG_STATE_HOME is None:
        monkeypatch.delenv("XDG_STATE_HOME")
    else:
        monkeypatch.setenv("XDG_STATE_HOME", USER_XDG_STATE_HOME)
    env = default_venv(default_state_dir())
    monkeypatch.undo()
    require(f"the cascade environment at {env}", is_ready(env), "creature cascade --setup-only")
    return env


def test_cascade_and_creature_end_to_end_on_one_harness(tmp_path, cascade_venv):
    """The real command: three utterances through the Pipecat cascade (every stage and
    Pipecat's own metrics present, stages adding up to the end-to-end figure, transcripts
    recorded), then through the creature's fast loop, timed by the same harness settings."""
    require_module("moshi_mlx")
    env = cascade_venv
    out = tmp_path / "cascade.json"
    page = tmp_path / "cascade.html"
    r = creature(
        "cascade", "--venv", str(env), "--against", "creature", "--json", str(out),
        "--html", str(page),
        "--input", *[str(UTTERANCES / n) for n in SHORT],
        "--max-tokens", "12", "--lead-in", "0.3", "--listen", "0.2", "--max-wait", "15",
        "--no-warm-up",
        timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(out.read_text())
    cascade, me = report["cascade"], report["creature"]
    assert [t["name"] for t in cascade["turns"]] == SHORT
    assert "RANDOM weights" in cascade["describe"]["llm"]
    for t in cascade["turns"]:
        d = t["detail"]
        assert t["latency_ms"] is not None, d["notes"]
        assert list(d["stages_ms"]) == CASCADE_STAGES, d
        assert sum(d["stages_ms"].values()) == pytest.approx(t["latency_ms"], abs=1.0)
        assert all(d["metrics_ms"].get(m, 0) > 0 for m in PIPECAT_METRICS), d["metrics_ms"]
        assert d["transcript"].strip(), "what the STT heard is recorded beside the timing"
    # the creature: same utterances, same harness settings (but "any output frame counts",
    # since a tiny random checkpoint decodes to silence), every turn answered within frames
    assert [t["name"] for t in me["turns"]] == SHORT
    assert "tiny RANDOM checkpoint" in me["describe"]["voice"]
    same = {k: v for k, v in me["settings"].items() if k != "audible_db"}
    assert same == {k: v for k, v in report["settings"].items() if k != "audible_db"}
    for t in me["turns"]:
        assert t["latency_ms"] is not None and 0 <= t["latency_ms"] < 1000
    assert len(report["machine"]["load"]["before"]) == 3
    for label in ["turn end wait", "LLM TTFB", "model step", "end to end", "load average"]:
        assert label in r.stdout
    drawn = page.read_text()
    assert "<svg" in drawn and all(n.rsplit(".", 1)[0] in drawn for n in SHORT)
    assert all(stage in drawn for stage in CASCADE_STAGES) and "creature: first audio" in drawn


class OpenAIPeer:
    """A test peer written from OpenAI's public Chat Completions streaming format: GET
    /v1/models, and POST /v1/chat/completions answering with server-sent ``chat.completion.chunk``
    events. It records each request, so a test sees what the cascade sent."""

    REPLY = ["Sure", ", I can", " do that.", " Here", " it is."]

    def __init__(self) -> None:
        import threading

        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        self.requests: list[dict] = []

        async def models(_request: Request) -> JSONResponse:
            return JSONResponse({"object": "list", "data": [{"id": "peer", "object": "model"}]})

        async def chat(request: Request) -> StreamingResponse:
            self.requests.append(await request.json())

            async def events():
                for i, piece in enumerate(self.REPLY):
                    delta = (
                        {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                    )
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0,
                             "model": "peer", "choices": [{"index": 0, "delta": delta,
                                                           "finish_reason": None}]}  # fmt: skip
                    yield f"data: {json.dumps(chunk)}\n\n"
                    await asyncio.sleep(0.02)
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        app = Starlette(
            routes=[
                Route("/v1/models", models),
                Route("/v1/chat/completions", chat, methods=["POST"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="OpenAI-compatible peer")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def test_cascade_with_an_openai_compatible_server(tmp_path, cascade_venv):
    """--llm-url goes through Pipecat's own OpenAILLMService: the transcript reaches the
    server as the user's message, the streamed reply is spoken, the stages are all there."""
    env = cascade_venv
    peer = OpenAIPeer()
    try:
        out = tmp_path / "cascade.json"
        r = creature(
            "cascade", "--venv", str(env), "--json", str(out), "--no-warm-up",
            "--input", str(UTTERANCES / SHORT[0]), "--lead-in", "0.3", "--listen", "0.2",
            "--max-wait", "15", "--llm-url", peer.url, "--llm-model", "peer",
            timeout=180,
        )  # fmt: skip
    finally:
        peer.stop()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (turn,) = json.loads(out.read_text())["cascade"]["turns"]
    assert turn["latency_ms"] is not None, turn["detail"]["notes"]
    assert list(turn["detail"]["stages_ms"]) == CASCADE_STAGES
    assert turn["detail"]["reply"].startswith("Sure, I can do that.")
    (req,) = peer.requests
    assert req["model"] == "peer" and req["stream"] is True
    said = [m["content"] for m in req["messages"] if m["role"] == "user"]
    heard = [seg.strip() for seg in turn["detail"]["transcript"].split(" | ") if seg.strip()]
    assert said and heard and all(seg in said[-1] for seg in heard), (said, heard)
