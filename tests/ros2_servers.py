"""ROS 2 action servers for the ROS 2 body's tests: real rclpy, real DDS (loopback only).

A test peer written from the ROS 2 action API (``rclpy.action.ActionServer``), run in the ROS 2
environment (``creature body ros2 --setup``) as a process of its own:

    python tests/ros2_servers.py            # prints READY once the servers are up

All on ``test_msgs/action/Fibonacci`` (the action interface the PyPI wheels ship):

* ``/arm/pick``: one feedback every STEP_S for ``order`` steps (the sequence so far), then
  SUCCEEDED;
* ``/arm/slow``: the same for 600 steps, honouring cancel (CANCELED);
* ``/arm/broken``: one feedback, then ABORTED.

Each goal, cancel and outcome is printed as a line (``GOAL /arm/pick 5``), flushed, for the test
to read.
"""

from __future__ import annotations

import sys
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from test_msgs.action import Fibonacci

STEP_S = 0.1


def say(*parts: object) -> None:
    print(*parts, flush=True)


def make(node, name: str, steps: int | None, abort: bool = False) -> ActionServer:
    def execute(goal_handle):
        order = steps if steps is not None else goal_handle.request.order
        say("GOAL", name, goal_handle.request.order)
        seq = [0, 1]
        fb = Fibonacci.Feedback()
        for _ in range(order):
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                say("CANCELED", name)
                return Fibonacci.Result(sequence=seq)
            seq.append(seq[-1] + seq[-2] if len(seq) > 1 else 1)
            fb.sequence = seq[2:]
            goal_handle.publish_feedback(fb)
            if abort:
                goal_handle.abort()
                say("ABORTED", name)
                return Fibonacci.Result()
            time.sleep(STEP_S)
        goal_handle.succeed()
        say("SUCCEEDED", name)
        return Fibonacci.Result(sequence=seq[2:])

    def cancel(_goal_handle):
        say("CANCEL", name)
        return CancelResponse.ACCEPT

    return ActionServer(
        node,
        Fibonacci,
        name,
        execute,
        cancel_callback=cancel,
        callback_group=ReentrantCallbackGroup(),
    )


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("creature_test_servers")
    servers = [
        make(node, "/arm/pick", None),
        make(node, "/arm/slow", 600),
        make(node, "/arm/broken", 1, abort=True),
    ]
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    say("READY", len(servers))
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        rclpy.try_shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
