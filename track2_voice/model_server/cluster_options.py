"""How the batched model server maps onto Ray Serve replicas: the ``--ray`` settings, and the
Serve deployment options they become (docs/ray_serve.md explains each).

Kept free of Ray imports, so that flags are checked (and a missing Ray reported in one
line) before anything heavy is loaded.

Capacity is the one fact that matters here. A WebSocket is one ongoing request for its whole
life, so a replica's ``max_ongoing_requests`` caps its sessions. It is ``slots +
refusal_lanes``: the router (``cluster_router``) sends each new session to the replica with
the fewest, so a session only lands on a lane when every replica's slots are taken, and that
replica then refuses it at once with the protocol's "no free slot" (kind 5, close 1013).
With ``max_ongoing_requests = slots`` alone, Ray would instead hold the extra session in its
queue, where it waits without an answer until a slot frees (Ray's queue cannot be made
shorter than one). Past the lanes and ``max_queued`` (a burst of dozens of sessions at
once), Serve's proxy answers the WebSocket upgrade with a bare HTTP 500, which the
creature's client reports as a failing or full server and retries.
"""

from __future__ import annotations

from typing import Any

from track2_voice.common.settings import Strict

APP_NAME = "creature"
DEPLOYMENT_NAME = "ModelServerReplica"
ROUTER_CLASS = "track2_voice.model_server.cluster_router:FewestSessionsRouter"
TOKEN_ENV = "CREATURE_MODEL_SERVER_TOKEN"  # read by replicas started from a Serve config file
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"


class ClusterOptions(Strict):
    """The ``--ray`` flags (a strict settings model: NaN and unknown keys refused)."""

    replicas: int = 2
    address: str | None = None  # None: start a local Ray instance; "auto": join `ray start`
    gpus_per_replica: float | None = None  # None: 1 when the Ray cluster has GPUs, else 0
    cpus_per_replica: float = 1.0
    refusal_lanes: int = 2  # sessions beyond the slots that a replica takes only to refuse
    max_queued: int = 64  # sessions Ray holds while every lane is busy; beyond: HTTP 500
    graceful_shutdown_timeout_s: float = 300.0  # a draining replica's sessions get this long
    graceful_shutdown_wait_loop_s: float = 2.0
    health_check_period_s: float = 5.0
    health_check_timeout_s: float = 10.0
    haproxy: bool = False  # RAY_SERVE_ENABLE_HA_PROXY=1 for the local instance (HTTP only)

    def check(self) -> None:
        """Raise ValueError naming the flag when a value cannot work."""
        if self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, got {self.replicas}")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise ValueError(f"--gpus-per-replica must be >= 0, got {self.gpus_per_replica}")
        if self.cpus_per_replica < 0:
            raise ValueError(f"--cpus-per-replica must be >= 0, got {self.cpus_per_replica}")
        if self.refusal_lanes < 1:
            raise ValueError(
                f"--refusal-lanes must be at least 1, got {self.refusal_lanes}: without a "
                "lane a full cluster leaves the next session waiting instead of refusing it"
            )
        if self.max_queued < 1:
            raise ValueError(
                f"--max-queued must be at least 1 (Ray's minimum), got {self.max_queued}"
            )
        for flag, v in (
            ("--graceful-shutdown-timeout", self.graceful_shutdown_timeout_s),
            ("--health-check-period", self.health_check_period_s),
            ("--health-check-timeout", self.health_check_timeout_s),
        ):
            if v <= 0:
                raise ValueError(f"{flag} must be > 0, got {v}")


def deployment_options(
    cluster: ClusterOptions, slots: int, gpus_per_replica: float
) -> dict[str, Any]:
    """The Serve deployment options (the keys of a Serve config file's ``deployments``
    entry) for replicas of ``slots`` sessions each."""
    return {
        "num_replicas": cluster.replicas,
        "max_ongoing_requests": slots + cluster.refusal_lanes,
        "max_queued_requests": cluster.max_queued,
        "graceful_shutdown_timeout_s": cluster.graceful_shutdown_timeout_s,
        "graceful_shutdown_wait_loop_s": cluster.graceful_shutdown_wait_loop_s,
        "health_check_period_s": cluster.health_check_period_s,
        "health_check_timeout_s": cluster.health_check_timeout_s,
        "ray_actor_options": {"num_gpus": gpus_per_replica, "num_cpus": cluster.cpus_per_replica},
        "request_router_config": {"request_router_class": ROUTER_CLASS},
    }
