"""Run the official ``moshi.server`` on a machine without a GPU.

``moshi.server`` calls ``torch.cuda.synchronize()`` unconditionally after its warm-up, which
fails on CPU-only torch builds. This launcher replaces it with a no-op when CUDA is absent
and then runs the server module unchanged, with the same flags::

    python -m track2_voice.moshi_server_cpu --config-path DIR/config.json \\
        --moshi-weight DIR/model.safetensors --mimi-weight DIR/mimi.safetensors \\
        --tokenizer DIR/tokenizer.model --static none --device cpu --host 127.0.0.1 --port 8998

Extra flag (removed before the server sees its arguments):
  ``--float32``  run the model in float32 instead of bfloat16 (faster on most CPUs).
"""

from __future__ import annotations

import runpy
import sys


def patch_torch(float32: bool) -> None:
    import torch

    if not torch.cuda.is_available():
        torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
    if float32:
        from moshi.models import loaders

        original = loaders.CheckpointInfo.get_moshi

        def get_moshi_f32(self, device="cpu", dtype=None, **kwargs):
            return original(self, device=device, dtype=torch.float32, **kwargs)

        loaders.CheckpointInfo.get_moshi = get_moshi_f32  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    float32 = "--float32" in args
    if float32:
        args.remove("--float32")
    patch_torch(float32)
    sys.argv = ["moshi.server", *args]
    # moshi.server runs its main() at import time, inside torch.no_grad().
    runpy.run_module("moshi.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
