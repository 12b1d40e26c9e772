"""``creature model-server``: one Moshi serving many creatures (batched steps, /api/chat).

Flags are the server's whole configuration (docs/model_server.md); a bad value is one line
naming the flag and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import get_args

from pydantic import ValidationError

from orchestrator.cli.commands import model_server_ray
from orchestrator.cli.flag_table import Flag, add_flags, flag_error, values
from track2_voice.config import TorchDevice, TorchDtype
from track2_voice.model_server.options import ServerOptions, SlotSampling

DEFAULT_CHECKPOINT = "kyutai/moshiko-pytorch-bf16"
TOKEN_FILE = "model-server-token"  # in the state directory, made once (0600)
log = logging.getLogger(__name__)

# unset (preset=False): the checkpoint's lm_gen_config (Hibiki's carry one), else these defaults
SAMPLING_FLAGS = (
    Flag(
        "--temp",
        "default audio temperature ({default})",
        "sampling.temp",
        float,
        preset=False,
    ),
    Flag(
        "--temp-text",
        "default text temperature ({default})",
        "sampling.temp_text",
        float,
        preset=False,
    ),
    Flag("--top-k", "default audio top-k ({default})", "sampling.top_k", int, preset=False),
    Flag(
        "--top-k-text", "default text top-k ({default})", "sampling.top_k_text", int, preset=False
    ),
)
SERVER_FLAGS = (
    Flag(
        "--checkpoint",
        "Hugging Face repo id or local directory (default {default})",
        "checkpoint",
        metavar="REPO_OR_DIR",
    ),
    Flag("--slots", "sessions at once ({default})", "slots", int),
    Flag("--host", "address to listen on ({default})", "host"),
    Flag("--port", "0: any free ({default})", "port", int),
    Flag("--device", field="device", choices=get_args(TorchDevice)),
    Flag("--dtype", field="dtype", choices=get_args(TorchDtype)),
    Flag("--token", "access token (default: made once, kept in --state-dir)", "token"),
    Flag(
        "--open",
        "no token (Kyutai's clients cannot send one): only on a trusted network",
        "open_access",
        switch=True,
    ),
    Flag(
        "--state-dir",
        "where the token is kept (default: the creature's state directory, "
        "$XDG_STATE_HOME/creature)",
    ),
    Flag(
        "--allow-origin",
        "a browser origin allowed besides the server's own, e.g. https://lab:8443",
        metavar="ORIGIN",
        repeat=True,
    ),
    Flag("--static", "serve a web client from DIR at /", "static_dir", metavar="DIR"),
    Flag("--ssl-certfile", "serve wss:// with this certificate (PEM)", "ssl_certfile"),
    Flag("--ssl-keyfile", "and this key (PEM)", "ssl_keyfile"),
    *SAMPLING_FLAGS,
    Flag(
        "--context",
        "LM attention window (default: the model's, 3000 = 4 min): each slot's KV cache "
        "is proportional to it",
        "context",
        int,
        metavar="STEPS",
    ),
    Flag(
        "--max-steps",
        "steps per slot before its own rollover, at a quiet moment",
        "rollover.max_steps",
        int,
    ),
    Flag(
        "--input-queue-frames",
        "frames buffered per session before the oldest is dropped",
        "input_queue_frames",
        int,
    ),
    Flag(
        "--output-queue-frames",
        "frames queued per session for sending before the oldest is dropped",
        "output_queue_frames",
        int,
    ),
    Flag(
        "--stall-timeout",
        "close a client that reads nothing for this long",
        "stall_timeout_s",
        float,
        metavar="S",
    ),
    Flag(
        "--idle-timeout",
        "close a client that sends nothing for this long (its slot is freed)",
        "idle_timeout_s",
        float,
        metavar="S",
    ),
    Flag(
        "--send-buffer-bytes",
        "per-client send buffer (kernel and event loop); default: the OS's",
        "send_buffer_bytes",
        int,
        metavar="N",
    ),
)


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
    add_flags(p, SERVER_FLAGS, d)
    model_server_ray.add_arguments(p)
    p.set_defaults(func=main)


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    from track2_voice.config import RolloverConfig

    given = values(args, SERVER_FLAGS)
    max_steps = given.pop("rollover.max_steps")
    try:
        rollover = RolloverConfig(max_steps=max_steps)
    except ValueError:
        raise ValueError(f"--max-steps must be at least 16, got {max_steps}") from None
    sampling = {}  # SlotSampling field -> value, for the sampling flags on the command line
    for f in SAMPLING_FLAGS:
        v = given.pop(f.field)
        if v is not None and v < 0:
            raise ValueError(f"{f.name} must be >= 0, got {v}")
        if v is not None:
            sampling[f.field.removeprefix("sampling.")] = v
    try:  # the sampling fields given are the ones the checkpoint's lm_gen_config cannot set
        return ServerOptions(
            **given,
            allowed_origins=tuple(args.allow_origin),
            sampling=SlotSampling(**sampling),
            rollover=rollover,
        )
    except ValidationError as e:
        raise ValueError(flag_error(e, SERVER_FLAGS)) from None


def guarded_http(opts: ServerOptions) -> dict:
    """The limits every endpoint of the creature has (track2_voice.common.limits): open connections, header
    deadline and size, keep-alive, message size, connections per address. The burst fits every
    slot at once: the creatures of one host (or behind one NAT) all reconnect together after a
    restart of this server."""
    from track2_voice.common.limits import RefusalLog, ServerLimits
    from track2_voice.common.web.guarded import uvicorn_options

    defaults = ServerLimits()
    limits = ServerLimits(
        max_connections=opts.max_connections,
        ws_max_message_bytes=opts.max_message_bytes,
        per_ip_burst=max(defaults.per_ip_burst, opts.max_connections),
    )
    return uvicorn_options(
        limits, "model server", RefusalLog(), opts.ssl_certfile, opts.ssl_keyfile
    )


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
    from track2_voice.backends.torch_backend import resolve_device
    from track2_voice.model_server.server import ModelServer

    try:
        if resolve_device(opts.device, "--device") == "cpu":
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
