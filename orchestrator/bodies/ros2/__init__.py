"""The ROS 2 body: the creature's calls as ROS 2 action goals (``creature body ros2``).

Runs in its own environment (``orchestrator.cli.ros2_env``); imports only the standard library,
PyYAML, websockets and rclpy, never the rest of the creature."""
