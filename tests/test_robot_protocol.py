"""The robot protocol module: every frame a robot may send parses to a typed message or to a
ProtocolError whose code goes into the one error reply; what the creature sends parses back
on the robot's side; the error reply is written in one place."""

from __future__ import annotations

import json

import pytest

from orchestrator.bodies import protocol as robot
from orchestrator.brain import robot_protocol as p
from tests.conftest import ROOT


def test_robot_messages_parse_to_typed_messages():
    assert p.parse_from_robot({"type": "ping"}) == p.PingMsg()
    st = p.parse_from_robot(
        {"type": "status", "id": "c1", "status": "running", "progress": 0.5, "text": "lifting"}
    )
    assert st == p.StatusMsg("c1", "running", None, 0.5, "lifting")
    hello = p.parse_from_robot(
        {
            "type": "hello",
            "body": "reachy-mini",
            "capabilities": [
                {"action": "gesture", "slots": {"gesture": ["nod"]}},
                {"action": "stop"},
            ],
        }
    )
    assert hello.body == "reachy-mini"
    gesture, stop = hello.capabilities
    assert gesture.accepts("gesture", "nod") and not gesture.accepts("gesture", "dance")
    assert stop.accepts("object", "anything")
    assert p.parse_from_robot({"type": "hello"}) == p.HelloMsg(None, None)


@pytest.mark.parametrize(
    "frame, code",
    [
        ([1, 2], "bad_json"),
        ({"type": "dance"}, "bad_message"),
        ({"type": "status", "id": 3, "status": "running"}, "bad_message"),
        ({"type": "status", "id": "x" * 200, "status": "running"}, "bad_id"),
        ({"type": "status", "id": "c", "status": "running", "progress": 1.5}, "bad_message"),
        ({"type": "status", "id": "c", "status": "running", "progress": True}, "bad_message"),
        (
            {"type": "status", "id": "c", "status": "running", "progress": float("nan")},
            "bad_message",
        ),
        ({"type": "hello", "capabilities": "all"}, "bad_hello"),
        ({"type": "hello", "capabilities": [{"slots": {}}]}, "bad_hello"),
        ({"type": "hello", "capabilities": [{"action": "a", "slots": {"s": [1]}}]}, "bad_hello"),
        ({"type": "hello", "body": 7}, "bad_hello"),
    ],
)
def test_bad_frames_raise_a_protocol_error_with_its_code(frame, code):
    with pytest.raises(p.ProtocolError) as e:
        p.parse_from_robot(frame)
    assert e.value.code.value == code
    reply = p.error(e.value.code, str(e.value), e.value.id)
    assert reply["type"] == "error" and reply["code"] == code and len(json.dumps(reply)) < 400


def test_what_the_creature_sends_parses_back_on_the_robot_side():
    def back(msg):
        return robot.parse_from_creature(json.dumps(msg))

    assert back(p.welcome()) == robot.WelcomeMsg(1, ("do_physical_task",))
    assert back(p.tool_call("c1", {"action": "open"}, 2)) == robot.ToolCallMsg(
        "c1", {"action": "open"}, 2
    )
    assert back(p.cancel("c1", "stop")) == robot.CancelMsg("c1", "stop")
    assert back(p.ready("arm", "reachy-mini", ["gesture"])) == robot.ReadyMsg(
        "arm", "reachy-mini", ("gesture",)
    )
    assert back(p.error("bad_id", "too long", "y" * 500)).id == "y" * 64 + "... (500 chars)"
    assert back(p.pong()) == robot.PongMsg()


def test_the_error_reply_is_written_in_one_place():
    for path in ("orchestrator/runtime/robot_channel.py", "orchestrator/brain/dispatcher.py",
                 "examples/robot_client.py"):  # fmt: skip
        text = (ROOT / path).read_text()
        assert '"type": "error"' not in text and "'type': 'error'" not in text, path


def test_what_a_robot_sends_parses_on_the_creatures_side():
    hello = robot.hello(
        "head", [robot.Capability("gesture", {"gesture": ["nod"]}), robot.Capability("stop", {})]
    )
    assert hello["capabilities"][1] == {"action": "stop", "slots": {}}  # as the body declared
    assert p.parse_from_robot(hello) == p.HelloMsg(
        "head", (p.Capability("gesture", (("gesture", ("nod",)),)), p.Capability("stop"))
    )
    assert "capabilities" not in robot.hello("arm")  # declares nothing: can do everything
    st = robot.status("c1", robot.Status.RUNNING, "", 0.25, "lifting")
    assert "reason" not in st  # an empty reason is not said
    assert p.parse_from_robot(st) == p.StatusMsg("c1", "running", None, 0.25, "lifting")


def test_the_robot_side_is_written_once():
    """The example robot, the bodies' link and the ROS 2 bridge build and read messages with
    orchestrator.bodies.protocol, never by hand."""
    for path in ("examples/robot_client.py", "orchestrator/bodies/link.py",
                 "orchestrator/bodies/ros2/bridge.py",
                 "orchestrator/bodies/ros2/messages.py"):  # fmt: skip
        text = (ROOT / path).read_text()
        for kind in ("hello", "status", "tool_call", "cancel", "welcome"):
            assert f'"type": "{kind}"' not in text and f'"type") == "{kind}"' not in text, path
