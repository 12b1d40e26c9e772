"""``creature checkpoint tiny``: a small random checkpoint in the published repo layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODELS = ("moshi", "hibiki")  # config.json model_type: conversation, or translation
MODEL_HELP = "moshi: conversation; hibiki: Hibiki-Zero's translation layout (torch only)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("checkpoint", help="make model checkpoints for offline labs and CI")
    csub = p.add_subparsers(dest="checkpoint_cmd", required=True, metavar="ACTION")
    t = csub.add_parser(
        "tiny",
        help="write a tiny random Moshi checkpoint that the loaders accept as a local repo",
        description=(
            "Writes config.json, model weights (model.safetensors / model.q4.safetensors / "
            "model.q8.safetensors), a SentencePiece tokenizer trained on a few sentences and a "
            "small Mimi codec into DIR. It speaks noise, but it runs the real model code."
        ),
    )
    t.add_argument("dir", help="output directory (created)")
    t.add_argument("--backend", choices=["mlx", "torch"], default="mlx")
    t.add_argument("--model", choices=MODELS, default="moshi", help=MODEL_HELP)
    t.add_argument(
        "--dim",
        type=int,
        help="transformer width (default 128, hibiki 64; q4: multiple of 128; q8: 256)",
    )
    t.add_argument("--layers", type=int, help="transformer layers (default 2, hibiki 1)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quantize", type=int, choices=[4, 8], help="also write quantized weights")
    t.set_defaults(func=main)
    r = csub.add_parser(
        "random",
        help="write a random-weight PyTorch Moshi + Mimi in the published layout (tiny or full)",
        description=(
            "--size full: Moshi 7B + Mimi with the published shapes (about 15 GB of bfloat16; "
            "--model hibiki: Hibiki-Zero 3B, about 6.5 GB), to measure the real compute cost "
            "on a GPU without downloading; written tensor by tensor. --size tiny: the same "
            "layout at a CPU size, with a Mimi whose codes follow the input (for tests of many "
            "sessions). --dry-run prints the size only."
        ),
    )
    r.add_argument("dir", help="output directory (created)")
    r.add_argument("--model", choices=MODELS, default="moshi", help=MODEL_HELP)
    r.add_argument("--size", choices=["tiny", "full"], default="tiny")
    r.add_argument("--dim", type=int, default=64, help="tiny only: transformer width")
    r.add_argument("--layers", type=int, default=1, help="tiny only: transformer layers")
    r.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], help="LM weights")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--dry-run", action="store_true", help="print what would be written")
    r.set_defaults(func=main_random)


def output_dir_error(path: str) -> int | None:
    """Exit 2 with one line when DIR exists and is not a directory (mkdir would raise)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        print(f"creature: error: {p}: exists and is not a directory; expected DIR", file=sys.stderr)
        return 2
    return None


def main(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    if (bad := output_dir_error(args.dir)) is not None:
        return bad
    if args.model == "hibiki":
        if args.backend == "mlx":
            from track2_voice.backends.model_kind import mlx_unsupported
            from track2_voice.devtools.checkpoint_hibiki import hibiki_config

            why = ", ".join(mlx_unsupported(hibiki_config("tiny")))
            print(
                f"creature: error: --model hibiki: moshi_mlx cannot run Hibiki-Zero's layout "
                f"({why}); use --backend torch",
                file=sys.stderr,
            )
            return 2
        args.size = "tiny"
        args.dim = args.dim or 64
        args.layers = args.layers or 1
        args.dtype = None
        args.dry_run = False
        return main_random(args)
    args.dim = args.dim or 128
    args.layers = args.layers or 2
    if args.backend == "mlx":
        from track2_voice.devtools.checkpoint_mlx import write_tiny_mlx_checkpoint

        files = write_tiny_mlx_checkpoint(
            out, dim=args.dim, layers=args.layers, seed=args.seed, quantize=args.quantize
        )
    else:
        from track2_voice.devtools.checkpoint_torch import write_tiny_torch_checkpoint

        files = write_tiny_torch_checkpoint(out, dim=args.dim, layers=args.layers, seed=args.seed)
    for f in files:
        print(f"wrote {f}")
    return 0


def main_random(args: argparse.Namespace) -> int:
    from track2_voice.devtools.checkpoint_random import (
        describe_checkpoint,
        write_random_checkpoint,
    )

    if not args.dry_run and (bad := output_dir_error(args.dir)) is not None:
        return bad
    if args.model == "hibiki":
        from track2_voice.devtools.checkpoint_hibiki import (
            describe_hibiki_checkpoint as describe_checkpoint,
        )
        from track2_voice.devtools.checkpoint_hibiki import (
            write_hibiki_checkpoint as write_random_checkpoint,
        )

    if args.dry_run:  # a CheckpointError is a UserError: one line, exit 2
        print(describe_checkpoint(args.size, args.dim, args.layers, args.dtype))
        return 0
    files = write_random_checkpoint(
        args.dir, args.size, seed=args.seed, dim=args.dim, layers=args.layers, dtype=args.dtype
    )
    for f in files:
        print(f"wrote {f}")
    return 0
