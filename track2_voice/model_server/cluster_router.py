"""Ray Serve's request router, asked to compare every replica instead of two.

Serve's default router samples two replicas and takes the one with fewer ongoing requests
(power of two choices). With refusal lanes (``cluster_options``) that is not enough: with
three or more replicas it can sample two full ones while a third has a free slot, and the
session would be refused although the cluster has room. Returning all candidates as one
rank makes Serve's own selection (its queue-length cache and probes, its replica-side
rejection and retry) pick the replica with the fewest sessions. Everything else stays
Serve's: which replicas exist, their health, and the queue.

Runs inside Serve's proxy (and any deployment handle), so it must import with Ray alone.
"""

from __future__ import annotations

from ray.serve.request_router import FIFOMixin, PendingRequest, RequestRouter, RunningReplica


class FewestSessionsRouter(FIFOMixin, RequestRouter):
    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        return [candidate_replicas]
