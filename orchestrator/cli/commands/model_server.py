"""``creature model-server``: one Moshi serving many creatures (batched steps, /api/chat).

Flags are the server's whole configuration (docs/model_server.md); a bad value is one line
naming the flag and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from orchestrator.cli.commands import model_server_ray
from track2_voice.model_server.options import DEFAULT_PORT, ServerOptions

DEFAULT_CHECKPOINT = "kyutai/moshiko-pytorch-bf16"
TOKEN_FILE = "model-server-token"  # in the state directory, made once (0600)
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    d = ServerOptions(checkpoint=DEFAULT_CHECKPOINT)
    p = sub.add_parser(
        "model-server",
        help="serve one Moshi to many creatures at once (batched, Moshi protocol at /api/chat)",
        description=(
            "Loads a PyTorch Moshi checkpoint with --slots conversation slots and runs one "
            "batched step every 80 ms for all connected sessions. Clients speak Kyutai's wire "
            "protocol at ws://HOST:PORT/api/chat (creature serve/run/demo --backend remote "
            "--url ..., Kyutai's web and Python clients). The URL needs ?token=... (printed at "
            "start) unless --open. A full server refuses the next session with a protocol "
            "error (kind 5) and close code 1013."
        ),
    )
    p.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        metavar="REPO_OR_DIR",
        help=f"Hugging Face repo id or local directory (default {DEFAULT_CHECKPOINT})",
    )
    p.add_argument("--slots", type=int, default=d.slots, help=f"sessions at once ({d.slots})")
    p.add_argument("--host", default=d.host, help=f"address to listen on ({d.host})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"0: any free ({DEFAULT_PORT})")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--dtype", default=d.dtype, choices=["auto", "bfloat16", "float16", "float32"])
    p.add_argument("--token", help="access token (default: made once, kept in --state-dir)")
    p.add_argument(
        "--open",
        action="store_true",
        help="no token (Kyutai's clients cannot send one): only on a trusted network",
    )
    p.add_argument(
        "--state-dir",
        help="where the token is kept (default: the creature's state directory, "
        "$XDG_STATE_HOME/creature)",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser origin allowed besides the server's own, e.g. https://lab:8443",
    )
    p.add_argument("--static", metavar="DIR", help="serve a web client from DIR at /")
    p.add_argument("--ssl-certfile", help="serve wss:// with this certificate (PEM)")
    p.add_argument("--ssl-keyfile", help="and this key (PEM)")
    s = d.sampling
    # unset: the checkpoint's lm_gen_config (Hibiki's carry one), else these defaults
    p.add_argument("--temp", type=float, help=f"default audio temperature ({s.temp_audio})")
    p.add_argument("--temp-text", type=float, help=f"default text temperature ({s.temp_text})")
    p.add_argument("--top-k", type=int, help=f"default audio top-k ({s.top_k_audio})")
    p.add_argument("--top-k-text", type=int, help=f"default text top-k ({s.top_k_text})")
    p.add_argument(
        "--context",
        type=int,
        metavar="STEPS",
        help="LM attention window (default: the model's, 3000 = 4 min): each slot's KV cache "
        "is proportional to it",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=d.rollover.max_steps,
        help="steps per slot before its own rollover, at a quiet moment",
    )
    p.add_argument(
        "--input-queue-frames",
        type=int,
        default=d.input_queue_frames,
        help="frames buffered per session before the oldest is dropped",
    )
    p.add_argument(
        "--output-queue-frames",
        type=int,
        default=d.output_queue_frames,
        help="frames queued per session for sending before the oldest is dropped",
    )
    p.add_argument(
        "--stall-timeout",
        type=float,
        default=d.stall_timeout_s,
        metavar="S",
        help="close a client that reads nothing for this long",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=d.idle_timeout_s,
        metavar="S",
        help="close a client that sends nothing for this long (its slot is freed)",
    )
    p.add_argument(
        "--send-buffer-bytes",
        type=int,
        metavar="N",
        help="per-client send buffer (kernel and event loop); default: the OS's",
    )
    model_server_ray.add_arguments(p)
    p.set_defaults(func=main)


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    from dataclasses import replace

    from track2_voice.config import RolloverConfig

    base = ServerOptions(checkpoint=args.checkpoint)
    try:
        rollover = RolloverConfig(max_steps=args.max_steps)
    except ValueError:
        raise ValueError(f"--max-steps must be at least 16, got {args.max_steps}") from None
    given = {}  # SlotSampling field -> value, for the sampling flags on the command line
    for flag, field, v in (
        ("--temp", "temp_audio", args.temp),
        ("--temp-text", "temp_text", args.temp_text),
        ("--top-k", "top_k_audio", args.top_k),
        ("--top-k-text", "top_k_text", args.top_k_text),
    ):
        if v is not None and v < 0:
            raise ValueError(f"{flag} must be >= 0, got {v}")
        if v is not None:
            given[field] = v
    return replace(
        base,
        slots=args.slots,
        host=args.host,
        port=args.port,
        device=args.device,
        dtype=args.dtype,
        token=args.token,
        open_access=args.open,
        allowed_origins=tuple(args.allow_origin),
        static_dir=args.static,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        sampling=replace(base.sampling, **given),
        sampling_given=frozenset(given),
        rollover=rollover,
        context=args.context,
        input_queue_frames=args.input_queue_frames,
        output_queue_frames=args.output_queue_frames,
        stall_timeout_s=args.stall_timeout,
        idle_timeout_s=args.idle_timeout,
        send_buffer_bytes=args.send_buffer_bytes,
    )


def guarded_http(opts: ServerOptions) -> dict:
    """The limits every endpoint of the creature has (face.limits): open connections, header
    deadline and size, keep-alive, message size, connections per address. The burst fits every
    slot at once: the creatures of one host (or behind one NAT) all reconnect together after a
    restart of this server."""
    from face.limits import RefusalLog, ServerLimits, uvicorn_options

    defaults = ServerLimits()
    limits = ServerLimits(
        max_connections=opts.max_connections,
        ws_max_message_bytes=opts.max_message_bytes,
        per_ip_burst=max(defaults.per_ip_burst, opts.max_connections),
    )
    return uvicorn_options(limits, "model server", RefusalLog())


def main(args: argparse.Namespace) -> int:
    import sys

    if args.ray_setup:
        return model_server_ray.setup(args)
    try:
        opts = options_from_args(args)
        if not opts.open_access and not opts.token:
            from face.state_files import load_or_make_secret
            from orchestrator.state_dir import state_dir

            opts.token = load_or_make_secret(state_dir(args.state_dir, "--state-dir"), TOKEN_FILE)
        opts.check()
    except ValueError as e:
        print(f"creature: error: {e}", file=sys.stderr)
        return 2
    if args.ray:
        return model_server_ray.run(args, opts)
    from track2_voice.model_server.server import ModelServer, resolve_device

    try:
        if resolve_device(opts.device) == "cpu":
            # moshi's lazy torch.compile costs seconds per batch shape on a CPU and buys
            # nothing there; the variable is read when moshi is imported, i.e. below
            os.environ.setdefault("NO_TORCH_COMPILE", "1")
        server = ModelServer(opts, uvicorn_options=guarded_http(opts))
    except ValueError as e:
        print(f"creature: error: {e}", file=sys.stderr)
        return 2
    log.info(
        "model server: %d slots of %s on %s", opts.slots, opts.checkpoint, server.engine.device
    )

    def announce(url: str) -> None:
        print(f"model server listening: {url}", flush=True)

    try:
        asyncio.run(server.serve(announce))
    except OSError as e:
        print(f"creature: error: {e}", file=sys.stderr)
        return 2
    return 0
