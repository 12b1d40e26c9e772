"""The batched model server as Ray Serve replicas: one replica per GPU, the Moshi protocol at
``/api/chat`` through Serve's proxy, sessions placed on the replica with the most free slots.

Ray Serve does what a hand-made balancer would: it knows the replicas on every node, places
each new WebSocket by ongoing requests (``cluster_router``), health-checks replicas
(``check_health`` fails when the batch loop has died or stalled), replaces dead ones and
drains replicas that are scaled down (``graceful_shutdown_timeout_s``). Each replica is the
ordinary ``ModelServer`` (its scheduler, engine and session code), fed by Serve's FastAPI
ingress instead of its own uvicorn.

A replica that dies (its GPU lost, its process killed) drops its sockets at once; the
creature's remote backend reconnects through the same URL with backoff and Serve places
the new session on a replica with a free slot. The model's conversation restarts there in a
fresh slot; the creature itself (face, state machine, outbox) never stopped.

Two ways in: ``serve_cluster`` (``creature model-server --ray``) and ``build_app`` (the
``import_path`` of a Serve config file for ``serve deploy`` and KubeRay, docs/ray_serve.md).
"""

# no ``from __future__ import annotations``: FastAPI reads the ``ws: WebSocket`` annotation
# at run time to tell a WebSocket route from a query parameter
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from ray import serve

from track2_voice.model_server.cluster_options import (
    APP_NAME,
    DEPLOYMENT_NAME,
    HAPROXY_ENV,
    TOKEN_ENV,
    ClusterOptions,
    deployment_options,
)
from track2_voice.model_server.options import ServerOptions
from track2_voice.model_server.server import CHAT_PATH, ModelServer

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # so workers import this checkout
# config-file ``args`` that are not ServerOptions fields, and the ones a file must not set
CONFIG_EXTRA_KEYS = ("max_steps", "refusal_lanes", "token_env")
CONFIG_REFUSED_KEYS = ("token", "host", "port", "instance", "static_dir", "sampling", "rollover")

ingress = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@serve.deployment(name=DEPLOYMENT_NAME)
@serve.ingress(ingress)
class ModelServerReplica:
    """One model server (one GPU's worth of slots) inside a Serve replica."""

    def __init__(self, opts: ServerOptions, token_env: str = TOKEN_ENV) -> None:
        token = opts.token
        if token is None and not opts.open_access:
            token = os.environ.get(token_env)
            if not token:
                raise ValueError(
                    f"no access token: set {token_env} in the environment of every node "
                    "(export it before `ray start`), or use open access"
                )
        ctx = serve.get_replica_context()
        instance = {
            "replica": ctx.replica_id.unique_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        from track2_voice.backends.torch_backend import resolve_device

        if resolve_device(opts.device, "--device") == "cpu":
            os.environ.setdefault("NO_TORCH_COMPILE", "1")  # as `creature model-server`
        self.server = ModelServer(opts.model_copy(update={"token": token, "instance": instance}))
        self.server.scheduler.start()
        log.info("replica %s: %d slots ready", instance["replica"], opts.slots)

    @ingress.websocket(CHAT_PATH)
    async def chat(self, ws: WebSocket) -> None:
        await self.server.chat(ws)

    @ingress.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """This replica's counters (whichever replica Serve picks for the request)."""
        stats = self.server.stats()
        stats["instance"] = self.server.opts.instance
        return JSONResponse(stats, status_code=200 if stats["healthy"] else 503)

    def check_health(self) -> None:
        """Serve calls this every ``health_check_period_s``; raising marks the replica
        unhealthy, and Serve replaces it (its sessions reconnect elsewhere)."""
        sched = self.server.scheduler
        if not sched.healthy():
            raise RuntimeError(f"the batch loop has failed or stalled: {sched.error or 'stalled'}")

    def __del__(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.scheduler.stop()


def bind(server: ServerOptions, cluster: ClusterOptions, gpus_per_replica: float, **kw):
    """The Serve application: ``ModelServerReplica`` with its capacity options."""
    opts = deployment_options(cluster, server.slots, gpus_per_replica)
    return ModelServerReplica.options(**opts).bind(server, **kw)


def server_options(args: Mapping[str, Any]) -> tuple[ServerOptions, ClusterOptions, str]:
    """A Serve config file's ``args`` as options; a key that is not one names itself."""
    from track2_voice.config import RolloverConfig

    known = set(ServerOptions.model_fields) - set(CONFIG_REFUSED_KEYS)
    for key in args:
        if key in CONFIG_REFUSED_KEYS:
            raise ValueError(
                f"args.{key}: not settable in a Serve config file"
                + (f" (replicas read the token from ${TOKEN_ENV})" if key == "token" else "")
            )
        if key not in known and key not in CONFIG_EXTRA_KEYS:
            raise ValueError(f"args.{key}: unknown key (expected one of {sorted(known)})")
    plain = {k: v for k, v in args.items() if k in known}
    if "allowed_origins" in plain:
        plain["allowed_origins"] = tuple(plain["allowed_origins"])
    if "checkpoint" not in plain:
        raise ValueError("args.checkpoint: required (a Hugging Face repo id or a directory)")
    try:
        opts = ServerOptions(**plain)
    except ValidationError as e:  # a wrong type, NaN: one line naming the key
        err = e.errors()[0]
        raise ValueError(f"args.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if "max_steps" in args:
        opts.rollover = RolloverConfig(max_steps=int(args["max_steps"]))
    lanes = args.get("refusal_lanes", ClusterOptions.model_fields["refusal_lanes"].default)
    cluster = ClusterOptions(refusal_lanes=int(lanes))
    opts.model_copy(
        update={"open_access": True}
    ).check()  # all but the token, which replicas read from env
    cluster.check()
    return opts, cluster, str(args.get("token_env", TOKEN_ENV))


def build_app(args: dict[str, Any]):
    """Serve application builder (``import_path: track2_voice.model_server.cluster:build_app``).

    The config file's ``deployments`` entry for ``ModelServerReplica`` overrides the options
    set here (replica count, GPUs, timeouts); ``max_ongoing_requests`` follows ``slots`` and
    ``refusal_lanes`` and is best left out of the file."""
    opts, cluster, token_env = server_options(args)
    return bind(opts, cluster, 1.0 if opts.device != "cpu" else 0.0, token_env=token_env)


def gpus_for(cluster: ClusterOptions, device: str) -> float:
    """GPUs per replica: as asked, else one when the device may be CUDA and Ray sees GPUs."""
    if cluster.gpus_per_replica is not None:
        return cluster.gpus_per_replica
    if device == "cpu":
        return 0.0
    import ray

    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def chat_url(server: ServerOptions, token: str | None, ssl: bool) -> str:
    host = server.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    q = f"?token={token}" if token else ""
    return f"{'wss' if ssl else 'ws'}://{host}:{server.port}{CHAT_PATH}{q}"


def _start_ray(cluster: ClusterOptions) -> None:
    """Start a local Ray instance (no dashboard) or join ``cluster.address``; every worker
    imports this checkout."""
    import ray

    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(
        address=cluster.address,
        include_dashboard=False if cluster.address is None else None,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        log_to_driver=False,
    )


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (on the main thread only). Called after ``ray.init``,
    whose own SIGTERM handler aborts the process without cleaning up."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())


def serve_cluster(
    server: ServerOptions,
    cluster: ClusterOptions,
    announce: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Start (or join) Ray, run the application, announce the URL and serve until ``stop``
    is set (or, on the main thread, SIGTERM or SIGINT arrives); then remove the application
    and, for a local instance, stop Serve and Ray."""
    import ray

    server.check()
    cluster.check()
    if cluster.haproxy:
        if server.ssl_certfile:
            raise ValueError(
                "--haproxy serves plain HTTP only: put TLS in front of it (docs/ray_serve.md)"
            )
        os.environ[HAPROXY_ENV] = "1"  # read by Serve's controller and proxies at start
    token = None if server.open_access else server.token  # made by the command (state dir)
    _start_ray(cluster)
    stop = stop or threading.Event()
    _stop_on_signals(stop)
    try:
        http: dict[str, Any] = {"host": server.host, "port": server.port}
        if server.ssl_certfile:
            http.update(ssl_certfile=server.ssl_certfile, ssl_keyfile=server.ssl_keyfile)
        serve.start(http_options=http)
        gpus = gpus_for(cluster, server.device)
        log.info(
            "Ray Serve: %d replicas x %d slots (+%d refusal lane), %g GPU each",
            cluster.replicas,
            server.slots,
            cluster.refusal_lanes,
            gpus,
        )
        app = bind(server, cluster, gpus)
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        if announce is not None:
            announce(chat_url(server, token, bool(server.ssl_certfile)))
        stop.wait()
    finally:
        try:
            serve.delete(APP_NAME)
            if cluster.address is None:  # a local instance: ours to stop
                serve.shutdown()
        finally:
            ray.shutdown()
