"""A Reachy Mini (Pollen Robotics / Hugging Face) as the creature's body, real or simulated.
Runs in its own environment (``creature body reachy-mini --setup``); docs/bodies.md."""
