"""The planner against a real OpenAI-compatible server: llama.cpp's (``llama-cpp-python``'s
server, in the environment ``creature planner setup`` builds under the state directory; .ci/install
builds it) on a tiny random-weight GGUF the project writes itself. Its chat template, tool
calling and schema-constrained decoding are real; the weights are random, so the test narrows
the tool until the schema leaves one sensible answer (one allowed action, one named object) and
asserts what must hold whatever the weights choose."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.brain.events import PlannerConsulted, PlannerDecision, ToolCallSent
from orchestrator.cli.commands.planner import PLANNER_ENV, server_command, write_tiny
from tests.conftest import require, user_state_dir
from tests.test_planner import close, of, planner_brain, say, until, user_says

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    def __init__(self, python: Path, model: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log.open("w")
        cmd = server_command(python, model, "127.0.0.1", self.port, 8192)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "llama.cpp server exited at start"
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("llama.cpp server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    env = PLANNER_ENV.path(user_state_dir())
    require(
        "the planner's llama.cpp environment", PLANNER_ENV.is_ready(env), "creature planner setup"
    )
    tmp = tmp_path_factory.mktemp("llama")
    model = tmp / "tiny.gguf"
    write_tiny(PLANNER_ENV.python(env), model)
    server = LlamaServer(PLANNER_ENV.python(env), model, tmp / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


REAL = {"tool_choice": "required", "timeout_s": 90.0}


async def test_a_real_server_proposes_within_the_schema_and_the_call_is_added(tmp_path, llama):
    b = planner_brain(tmp_path, llama.url, "augment", allowed=("bring", "stop"), **REAL)
    await user_says(b, "could you bring me the red cup")
    await say(b, "Okay, right away.")
    await until(
        lambda: [e for e in of(b, PlannerConsulted) if e.verdict != "superseded"],
        timeout_s=120,
        what="the server's answer",
    )
    (asked,) = [e for e in of(b, PlannerConsulted) if e.verdict != "superseded"]
    # constrained to the narrowed tool, random weights can only say bring(red cup)
    assert asked.verdict == "calls", asked
    assert asked.prompt_tokens and asked.completion_tokens
    (proposal,) = asked.proposals
    assert proposal["action"] == "bring" and proposal["object"] == "red cup"
    await until(lambda: of(b, ToolCallSent), what="the call")
    (call,) = of(b, ToolCallSent)
    assert call.arguments["object"] == "red cup" and b.robot.messages[0]["id"] == call.id
    assert [d.decision for d in of(b, PlannerDecision)] == ["added"]
    await close(b)


async def test_the_server_going_away_mid_session_is_an_error_and_the_rules_go_on(
    tmp_path, tmp_path_factory
):
    env = PLANNER_ENV.path(user_state_dir())
    require(
        "the planner's llama.cpp environment", PLANNER_ENV.is_ready(env), "creature planner setup"
    )
    model = tmp_path / "tiny.gguf"
    write_tiny(PLANNER_ENV.python(env), model)
    server = LlamaServer(PLANNER_ENV.python(env), model, tmp_path / "server.log")
    try:
        server.wait_ready()
        b = planner_brain(
            tmp_path, server.url, "augment", allowed=("bring", "pick_up", "stop"), **REAL
        )
        await user_says(b, "could you bring me the red cup")
        i = await say(b, "Okay, right away.")
        await until(
            lambda: [e for e in of(b, PlannerConsulted) if e.verdict != "superseded"],
            timeout_s=120,
            what="the first answer",
        )
        server.stop()  # the endpoint goes away mid-session
        await say(b, "Sure, I'll pick up the towel.", start=i)
        await until(lambda: of(b, PlannerConsulted)[-1].verdict == "error", what="the error")
        # the rules' call went out regardless, without waiting for the planner
        assert any(c.arguments["object"] == "towel" for c in of(b, ToolCallSent))
        await asyncio.sleep(0)
        await close(b)
    finally:
        server.stop()
