"""``creature checkpoint tiny``: a small random checkpoint in the published repo layout."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    t.add_argument(
        "--dim", type=int, default=128, help="transformer width (q4: multiple of 128; q8: 256)"
    )
    t.add_argument("--layers", type=int, default=2, help="transformer layers")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quantize", type=int, choices=[4, 8], help="also write quantized weights")
    t.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    out = Path(args.dir)
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
