"""``creature body ros2``: the creature's calls as ROS 2 action goals.

Real parts: the creature's slow loop and robot channel (real WebSocket, SQLite outbox), the
bridge as a separate process in the ROS 2 environment (``creature body ros2 --setup``), and
real rclpy action servers (tests/ros2_servers.py, a test peer) talking over real DDS, kept on
this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a domain id of the test's own).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from orchestrator.bodies.ros2.action_map import MapError, load_map, parse_map
from orchestrator.bus import Bus
from orchestrator.runtime.brain_host import BrainHost
from tests.conftest import ROOT, USER_XDG_STATE_HOME, creature, require
from tests.slow_support import slow_cfg, speak, statuses, wait_until

MAP = """
body: test-arm
actions:
  pick_up:
    server: /arm/pick
    interface: test_msgs/action/Fibonacci
    goal: {order: 5}
    progress: {count: sequence, of: 5}
  put_down:
    server: /arm/slow
    interface: test_msgs/action/Fibonacci
    goal: {order: 1}
    progress: {count: sequence, of: 600}
  open:
    server: /arm/broken
    interface: test_msgs/action/Fibonacci
  close:
    server: /arm/absent
    interface: test_msgs/action/Fibonacci
"""


# -- the map (pure, no ROS) -----------------------------------------------------------------
def test_the_shipped_map_routes_every_action_to_the_generic_interface_with_its_slots():
    amap = load_map(ROOT / "configs" / "bodies" / "ros2.yaml")
    r = amap.route("pick_up")
    assert r.server == "/creature/do_physical_task"
    assert r.interface == "creature_interfaces/action/DoPhysicalTask"
    assert set(r.slots) == {"object", "destination", "recipient", "gesture"}
    goal = r.goal_values({"action": "pick_up", "object": "red cup", "destination": None})
    assert goal["action"] == "pick_up" and goal["object"] == "red cup"
    assert goal["destination"] == ""  # a null slot in a string field


@pytest.mark.parametrize(
    "text, key",
    [
        ("actions: {a: {server: /x, interface: nope}}", "actions.a.interface"),
        ("actions: {a: {server: '1bad', interface: p/action/T}}", "actions.a.server"),
        ("actions: {a: {server: /x, interface: p/action/T, goal: {f: [1]}}}", "actions.a.goal.f"),
        ("actions: {a: {server: /x, interface: p/action/T, progress: {count: s}}}", "progress"),
        ("actions: {a: {server: /x, interface: p/action/T, speed: 3}}", "actions.a.speed"),
        ("body: test\n", "nothing to map"),
    ],
)
def test_a_bad_map_is_one_line_naming_the_key(tmp_path, text, key):
    import yaml

    with pytest.raises(MapError, match=key.replace(".", r"\.")):
        parse_map(yaml.safe_load(text), "m.yaml")
    f = tmp_path / "m.yaml"
    f.write_text(text)
    r = creature("body", "ros2", "--map", str(f), "--set", f"state_dir={tmp_path}", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "m.yaml" in r.stderr


def test_the_hello_names_the_body_and_each_action_with_its_slots_and_progress_is_clipped():
    import json

    from orchestrator.bodies import protocol
    from orchestrator.bodies.ros2.bridge import MAX_TEXT, hello_text, status_text
    from orchestrator.brain.robot_protocol import HelloMsg, parse_from_robot

    hello = json.loads(hello_text("arm", [protocol.Capability("pick_up")]))
    # read by the creature's own parser, so the bridge's hello cannot drift from the protocol
    parsed = parse_from_robot(hello)
    assert isinstance(parsed, HelloMsg) and parsed.body == "arm"
    assert [c.action for c in parsed.capabilities] == ["pick_up"]
    st = json.loads(status_text("c1", protocol.Status.RUNNING, progress=1.7, text="x" * 500))
    assert st["progress"] == 1.0 and len(st["text"]) == MAX_TEXT
    with pytest.raises(protocol.ProtocolError):  # not an object: nothing to do
        protocol.parse_from_creature("[1]")
    call = protocol.parse_from_creature(
        json.dumps({"type": "tool_call", "id": "c1", "arguments": {"action": "a"}})
    )
    assert isinstance(call, protocol.ToolCallMsg) and call.action == "a"


# -- real ROS 2 -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ros2_python() -> Path:
    """The environment ``.ci/install`` built in the user's state directory (the tests' own
    state directory is a fresh temporary one)."""
    from orchestrator.cli.ros2_env import default_venv, is_ready, venv_python

    base = Path(USER_XDG_STATE_HOME or "~/.local/state").expanduser()
    env = default_venv(base / "creature")
    require(f"the ROS 2 environment at {env}", is_ready(env), "creature body ros2 --setup")
    return venv_python(env)


class Proc:
    """A process whose output lines are collected by a thread, to wait on."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.p = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.append(line.rstrip())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def ros_world(tmp_path, ros2_python):
    """The creature's slow loop, ROS 2 action servers and the bridge between them (and a way
    to start another bridge on the same task log)."""
    ros_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ROS_DOMAIN_ID": str(100 + os.getpid() % 100),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONUNBUFFERED": "1",
    }
    hub = Bus()
    slow = BrainHost(slow_cfg(tmp_path), hub, state=tmp_path).start()
    servers = Proc([str(ros2_python), str(ROOT / "tests" / "ros2_servers.py")], ros_env)
    (tmp_path / "map.yaml").write_text(MAP)

    def start_bridge() -> Proc:
        return Proc(
            [str(ros2_python), "-m", "orchestrator.bodies.ros2.bridge", "--map",
             str(tmp_path / "map.yaml"), "--url", slow.robot_url, "--db", str(tmp_path / "b.db")],
            {**ros_env, "CREATURE_ROBOT_TOKEN": slow.token},
        )  # fmt: skip

    bridge = start_bridge()
    try:
        wait_until(lambda: servers.has("READY"), 60, "the action servers")
        # the servers are found over DDS and declared: the absent one is not
        wait_until(
            lambda: bridge.has("capabilities: ['pick_up', 'put_down', 'open']"),
            60,
            f"the bridge declaring the servers present: {bridge.lines}",
        )
        yield slow, hub, servers, bridge, start_bridge
    finally:
        bridge.stop()
        servers.stop()
        slow.stop()


def test_a_call_becomes_a_goal_reports_progress_and_succeeds(ros_world):
    slow, hub, servers, bridge, _ = ros_world
    speak(hub, "Sure, I'll pick up the red cup.")
    wait_until(
        lambda: set(statuses(slow).values()) == {"succeeded"},
        30,
        f"succeeded: {statuses(slow)} {bridge.lines[-8:]}",
    )
    assert servers.has("GOAL /arm/pick 5") and servers.has("SUCCEEDED /arm/pick")
    progress = [ln for ln in bridge.lines if "-> running progress" in ln]
    assert len(progress) >= 3, bridge.lines  # feedback as progress, rising
    values = [float(ln.rsplit(" ", 1)[1]) for ln in progress]
    assert values == sorted(values) and values[-1] == pytest.approx(1.0)


def test_the_creatures_cancel_cancels_the_goal(ros_world):
    slow, hub, servers, bridge, _ = ros_world
    i = speak(hub, "Sure, I'll put down the red cup.")
    wait_until(lambda: servers.has("GOAL /arm/slow"), 30, "the goal on /arm/slow")
    wait_until(lambda: "running" in statuses(slow).values(), 10, "running")
    speak(hub, "Okay, I'll stop.", i)
    wait_until(lambda: set(statuses(slow).values()) == {"cancelled"}, 20, "cancelled")
    assert servers.has("CANCEL /arm/slow") and servers.has("CANCELED /arm/slow")


def test_a_server_that_aborts_fails_the_call(ros_world):
    slow, hub, servers, bridge, _ = ros_world
    speak(hub, "Sure, I'll open the door.")
    wait_until(lambda: set(statuses(slow).values()) == {"failed"}, 30, "failed")
    assert servers.has("ABORTED /arm/broken")
    calls = slow.run_sync(lambda: slow.outbox.all_calls())
    assert "aborted" in (calls[0].reason or "") or bridge.has("goal aborted")


def test_a_bridge_killed_mid_goal_never_sends_the_call_twice(ros_world):
    """kill -9 of the bridge while its goal runs; restarted on the same task log, it gets the
    call again (at-least-once) and reports it failed, not repeated, without a second goal."""
    slow, hub, servers, bridge, start_bridge = ros_world
    speak(hub, "Sure, I'll put down the red cup.")
    wait_until(lambda: servers.has("GOAL /arm/slow"), 30, "the goal on /arm/slow")
    wait_until(lambda: "running" in statuses(slow).values(), 10, "running")
    bridge.p.send_signal(signal.SIGKILL)
    bridge.p.wait(10)
    again = start_bridge()
    try:
        wait_until(lambda: set(statuses(slow).values()) == {"failed"}, 30, f"failed: {again.lines}")
        (call_id,) = statuses(slow)
        call = slow.run_sync(lambda: slow.outbox.get(call_id))
        assert "not repeated" in (call.reason or "")
        assert sum("GOAL /arm/slow" in ln for ln in servers.lines) == 1  # one goal, ever
    finally:
        again.stop()
