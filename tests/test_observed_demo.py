"""One demo, watched the ways a person would watch it, then read back and replayed.

The demo (`creature demo --once --robot`, a spoken user turn from espeak-ng as its mic) runs
once for this module while three observers look on: a Prometheus-style scraper (httpx on
`/metrics`), a real Chromium showing the face (every face message captured at the WebSocket),
and the session record. Then: the report is drawn from that record and its figures are
checked against the raw lines; `creature replay` drives a second Chromium from the record and
must show the same face; a remote-backend record with a disconnect is drawn too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, creature, require_module
from tests.face_support import ARTIFACTS, launch
from track2_voice.audio.devices import write_wav
from track2_voice.devtools.moshi_server_cpu import free_port
from track2_voice.frames import SAMPLE_RATE

TOKEN = "observer-token-1234"
LEAD_S, TAIL_S = 5.0, 14.0  # the user speaks after the greeting; the scene ends before the file
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 120.0
POLL_S = 0.25  # how often the observers look while they wait for the process to end
# rAF probe: what the page has been told (message count, emotion) and what it drew
PROBE = """() => {
  window.__drawn = [];
  const tick = () => {
    const f = window.face;
    if (f && f.input.messages > 0) {
      const drawn = document.documentElement.dataset.emotion;
      const last = window.__drawn[window.__drawn.length - 1];
      if (!last || last[1] !== drawn) window.__drawn.push([f.input.messages, drawn]);
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


@dataclass
class Watch:
    """What one observed run of the creature left: its output and what each observer saw."""

    proc: subprocess.CompletedProcess | None = None
    face: list[dict] = field(default_factory=list)  # every face message, in order
    drawn: list[list] = field(default_factory=list)  # [message count, drawn emotion]
    scrapes: list[dict] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)


def _chromium_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path("/usr/bin/chromium").exists()


def _samples(text: str) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _start_creature(args: list[str], port: int, state: Path) -> subprocess.Popen:
    """``creature ARGS`` with its face on ``port``, no TLS, a known token, its own state."""
    env = {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", *args,
         "--face-host", "127.0.0.1", "--face-port", str(port),
         "--set", "phone.tls=false", "--set", "phone.qr=false", "--set", f"phone.token={TOKEN}",
         "--set", f"state_dir={state}"],
        cwd=ROOT, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _await_face_server(proc: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # until the face server answers
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the face server never answered"
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            proc_wait(proc, POLL_S)


def _open_face(browser, base: str, w: Watch):
    """The face page, every face message it receives kept in ``w.face``."""
    page = browser.new_page(viewport={"width": 360, "height": 480})
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: w.face.append(json.loads(payload))))  # fmt: skip
    page.goto(f"{base}/?gaze=0")
    page.evaluate(PROBE)
    return page


def _try_unauthorized_scrapes(base: str) -> dict[str, int]:
    return {
        "none": httpx.get(f"{base}/metrics").status_code,
        "wrong": httpx.get(f"{base}/metrics", headers=_bearer("wrong-token")).status_code,
        "query": httpx.get(f"{base}/metrics?token={TOKEN}").status_code,
    }


def _look_until_exit(proc: subprocess.Popen, base: str, page, scrape: bool, w: Watch) -> None:
    """Scrape the metrics (when asked) and let the page take its frames until it exits."""
    end = time.monotonic() + RUN_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < end:
        if scrape:
            try:
                r = httpx.get(f"{base}/metrics", headers=_bearer(TOKEN), timeout=2.0)
                if r.status_code == 200:
                    w.scrapes.append(_samples(r.text))
            except httpx.HTTPError:
                pass  # the process is ending
        if page is not None:
            page.wait_for_timeout(POLL_S * 1000)  # lets playwright deliver the frames
        else:
            proc_wait(proc, POLL_S)


def watch(args: list[str], port: int, browser, scrape: bool, state: Path) -> Watch:
    """Run ``creature ARGS`` with its face on ``port`` (and its state in ``state``); look at
    it until it exits."""
    w = Watch()
    proc = _start_creature(args, port, state)
    base = f"http://127.0.0.1:{port}"
    page = None
    try:
        _await_face_server(proc, base)
        if browser is not None:
            page = _open_face(browser, base, w)
        if scrape:
            w.refused = _try_unauthorized_scrapes(base)
        _look_until_exit(proc, base, page, scrape, w)
        if page is not None:
            w.drawn = page.evaluate("window.__drawn")
        out, err = proc.communicate(timeout=30)
        w.proc = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if page is not None:
            page.close()
    return w


def proc_wait(proc: subprocess.Popen, seconds: float) -> None:
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        pass


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def browser():
    if not _chromium_available():
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, speech_pcm, browser) -> tuple[Watch, Path]:
    d = tmp_path_factory.mktemp("observed")
    mic = d / "user.wav"
    silence = np.zeros
    write_wav(mic, np.concatenate([silence(int(LEAD_S * SAMPLE_RATE), np.float32), speech_pcm,
                                   silence(int(TAIL_S * SAMPLE_RATE), np.float32)]))  # fmt: skip
    record = d / "demo.jsonl"
    w = watch(
        ["demo", "--once", "--robot", "--robot-delay", "0.5", "--input", str(mic),
         "--record", str(record), "--set", "slow_loop.robot.port=0",
         "--set", f"slow_loop.outbox.path={d / 'outbox.sqlite3'}"],
        free_port(), browser, scrape=True, state=d / "state",
    )  # fmt: skip
    assert w.proc.returncode == 0, w.proc.stderr[-3000:]
    return w, record


def lines(record: Path) -> list[dict]:
    return [json.loads(x) for x in record.read_text().splitlines()]


# -- /metrics --------------------------------------------------------------------------------


def test_metrics_move_as_the_demo_runs_and_need_the_token(demo) -> None:
    w, record = demo
    assert w.refused == {"none": 401, "wrong": 401, "query": 200}
    assert len(w.scrapes) >= 5

    def at(i: int, name: str, **labels) -> float:
        return w.scrapes[i].get((name, tuple(sorted(labels.items()))), 0.0)

    frames = [at(i, "creature_frames_total") for i in range(len(w.scrapes))]
    assert frames == sorted(frames) and frames[-1] > frames[0]  # they moved, never backwards
    last = -1
    rec = lines(record)
    assert at(last, "creature_intents_total", action="bring") == 1
    assert at(last, "creature_tool_calls_total", action="bring") == 1
    assert at(last, "creature_tool_calls_finished_total", action="bring", status="succeeded") == 1
    assert at(last, "creature_tool_status_seconds_count", status="running") == 1
    assert at(last, "creature_user_turns_total") == 1
    assert at(last, "creature_response_latency_seconds_count") == 1
    assert at(last, "creature_intent_to_call_seconds_count") == 1
    assert at(last, "creature_robot_connects_total") == 1
    assert max(at(i, "creature_robots_connected") for i in range(len(w.scrapes))) == 1
    # the last scrape may come after the session ended: the gauge was 1 while it ran
    assert max(at(i, "creature_voice_sessions") for i in range(len(w.scrapes))) == 1
    assert at(last, "creature_consumer_dropped_events_total", consumer="metrics") == 0
    # the last scrape's frame count is at most what the record holds
    assert at(last, "creature_frames_total") <= sum(x["kind"] == "frame" for x in rec)
    states = {
        s for i in range(len(w.scrapes)) for s in ("listening", "speaking", "acting")
        if at(i, "creature_state", creature_state=s) == 1
    }  # fmt: skip
    assert states == {"listening", "speaking", "acting"}
    if w.face:  # a browser watched: it was counted
        assert max(at(i, "creature_faces_connected") for i in range(len(w.scrapes))) == 1


@pytest.mark.parametrize("enabled", [True, False])
def test_metrics_can_be_switched_off(tmp_path, enabled) -> None:
    """A real session's face server, in this process: /metrics is there, or with
    ``metrics.enabled: false`` not at all (404) and no consumer on the bus."""
    from orchestrator.config import load_config
    from orchestrator.runtime.face_runtime import face_running
    from orchestrator.runtime.voice_session import VoiceSession

    cfg = load_config(overrides={
        "metrics.enabled": enabled, "face.host": "127.0.0.1", "face.port": 0,
        "phone.qr": False, "phone.token": TOKEN, "state_dir": str(tmp_path / "state"),
        "slow_loop.robot.port": 0, "slow_loop.outbox.path": str(tmp_path / "o.db"),
    })  # fmt: skip
    session = VoiceSession(cfg).start()
    try:
        with face_running(session, https=False) as rt:
            r = httpx.get(f"{rt.base_url}/metrics", headers=_bearer(TOKEN))
            consumers = set(session.bus.drops())
    finally:
        session.close()
    assert r.status_code == (200 if enabled else 404)
    assert ("metrics" in consumers) is enabled


# -- the record read back --------------------------------------------------------------------


def test_every_line_of_the_record_reads_back_as_the_event_that_wrote_it(demo) -> None:
    from orchestrator.analysis.record_file import read_record

    _, record = demo
    raw = lines(record)
    rec = read_record(record)
    assert len(rec.events) == len(raw) and not rec.unknown
    for line, ev in zip(raw, rec.events):
        assert json.loads(json.dumps(ev.to_dict(), default=str)) == line


def test_the_report_shows_the_demo_and_its_latency_matches_the_record(demo, tmp_path) -> None:
    require_module("matplotlib")
    _, record = demo
    out, figures = tmp_path / "report.html", tmp_path / "report.json"
    r = creature("report", str(record), "-o", str(out), "--json", str(figures))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    # self-contained: nothing to fetch (only the SVGs' references to their own parts)
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!#)""", html, re.I)
    assert html.count("<svg") == 3 and "<script" in html  # timeline, histograms, turns
    data = json.loads(
        re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
        .group(1)
        .replace("<\\/", "</")
    )
    assert data == json.loads(figures.read_text())
    # the latency, computed here from the raw lines by the documented rule
    raw = lines(record)
    ends = [x for x in raw if x["kind"] == "user_speech_ended"]
    assert len(ends) == 1 and len(data["turns"]) == 1
    end = ends[0]
    speech_end = end["t"] - end["silence_ms"] / 1000.0
    reply = next(
        x for x in raw if x["kind"] == "frame" and x["index"] > end["index"] and x["rms_db"] > -45
    )
    expected = (reply["t"] + (reply["model_ms"] + reply["overhead_ms"]) / 1000 - speech_end) * 1000
    turn = data["turns"][0]
    assert turn["latency_ms"] == pytest.approx(expected, abs=0.1)
    assert turn["reply_index"] == reply["index"]
    assert 0 < turn["latency_ms"] < 3000
    f = data["figures"]
    assert f["frames"] == sum(x["kind"] == "frame" for x in raw)
    assert f["deadline_misses"] == sum(x["kind"] == "frame" and x["missed"] for x in raw)
    assert f["intents"] == 1 and f["tool_calls_by_final_status"] == {"succeeded": 1}
    assert f["latency_ms_p50"] == turn["latency_ms"]
    assert [c["final"] for c in data["tool_calls"]] == ["succeeded"]
    assert "Sure," in html and "bring" in html  # the creature's words and the call


def test_the_report_draws_a_remote_record_with_a_disconnect(tmp_path, speech_pcm) -> None:
    require_module("matplotlib")
    from tests.test_remote_protocol import PeerServer

    mic = tmp_path / "mic.wav"
    write_wav(mic, np.concatenate([speech_pcm, np.zeros(int(1.5 * SAMPLE_RATE), np.float32)]))
    record = tmp_path / "remote.jsonl"
    with PeerServer([b"\x00"]) as srv:  # a peer that greets, then never answers: not a model
        r = creature(
            "run", "--backend", "remote", "--url", srv.url, "--input", str(mic),
            "--record", str(record), "--set", "voice.remote.silence_timeout_s=0.6",
            "--set", "voice.remote.backoff_base_s=0.1", "--set", f"state_dir={tmp_path}",
            timeout=120,
        )  # fmt: skip
    assert record.exists(), r.stderr[-2000:]
    raw = lines(record)
    lost = [x for x in raw if x["kind"] == "disconnected"]
    assert lost, "the peer was expected to go silent"
    out = tmp_path / "remote.html"
    r = creature("report", str(record), "-o", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["disconnects"] >= 1 and summary["disconnected_s"] > 0
    assert summary["turns"] == sum(x["kind"] == "user_speech_ended" for x in raw) >= 1
    assert summary["turns_answered"] == 0  # the peer never sent audio back
    html = out.read_text()
    assert lost[0]["reason"][:30] in html and "backend remote" in html


# -- replay ----------------------------------------------------------------------------------


def _runs(seq: list[str]) -> list[tuple[str, int]]:
    out: list[list] = []
    for x in seq:
        if out and out[-1][0] == x:
            out[-1][1] += 1
        else:
            out.append([x, 1])
    return [(a, n) for a, n in out]


def _is_subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def test_replay_shows_the_same_face_in_chromium(demo, browser, tmp_path) -> None:
    from tests.face_support import require_chromium

    require_chromium()
    original, record = demo
    assert original.face, "the browser saw no face message during the demo"
    w = watch(["replay", str(record), "--speed", "2"], free_port(), browser, scrape=False,
              state=tmp_path / "state")  # fmt: skip
    assert w.proc.returncode == 0, w.proc.stderr[-3000:]
    summary = json.loads(w.proc.stdout.strip().splitlines()[-1])
    assert summary["same"]["intents"] and summary["same"]["statuses"], summary

    frames = {round(x["t"], 6): x for x in lines(record) if x["kind"] == "frame"}
    was = {m["t"]: m for m in original.face if "t" in m}
    now = {m["t"]: m for m in w.face if "t" in m}
    # every face state of the replay is of a recorded frame, with its mouth
    assert now and all(t in frames for t in now)
    assert max(abs(m["mouth"] - frames[t]["mouth"]) for t, m in now.items()) <= 1e-3
    common = sorted(set(was) & set(now))
    assert len(common) >= 0.5 * len(was), (len(common), len(was))
    assert max(abs(was[t]["mouth"] - now[t]["mouth"]) for t in common) <= 1e-3
    seq_was = [was[t]["emotion"] for t in common]
    seq_now = [now[t]["emotion"] for t in common]
    assert [e for e, _ in _runs(seq_was)] == [e for e, _ in _runs(seq_now)]
    agree = sum(a == b for a, b in zip(seq_was, seq_now)) / len(common)
    assert agree >= 0.9, agree
    assert "happy" in seq_now and len(set(seq_now)) >= 3  # greeting, focus, success...
    # the page drew what it was told: each emotion it showed for 3+ messages, in order
    told = [m["emotion"] for m in w.face]
    drawn = [e for _, e in w.drawn]
    lasting = [e for e, n in _runs(told) if n >= 3]
    assert _is_subsequence([e for e, _ in _runs(lasting)], drawn), (lasting, drawn)
    # and nothing it was not told (but its own neutral look before the first frame is drawn)
    assert _is_subsequence(drawn, ["neutral"] + [e for e, _ in _runs(told)]), (drawn, told)


def test_the_report_renders_in_chromium(demo, browser, tmp_path) -> None:
    from tests.face_support import require_chromium

    require_chromium()
    require_module("matplotlib")
    from orchestrator.analysis.report import write_report

    _, record = demo
    out = tmp_path / "report.html"
    write_report(record, out)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(out.as_uri())
        sizes = page.evaluate(
            "[...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().width)"
        )
        ARTIFACTS.parent.joinpath("report").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS.parent / "report" / "demo-report.png"), full_page=True)
    finally:
        page.close()
    assert len(sizes) == 3 and min(sizes) > 200
    assert requests == [out.as_uri()] and errors == []
