"""Run Kyutai's ``hibiki-zero serve`` on a machine without a GPU: a test peer.

``hibiki-zero`` 0.0.4 assumes CUDA in three places only, all in its own code: the CLI's
``torch.cuda.is_available()`` guard (it returns without serving), ``seed_all`` (CUDA seeds)
and the warm-up's ``torch.cuda.synchronize()``. This launcher neutralises those three, in
this process only, and then runs the package's own command unchanged, with its own flags::

    python -m track2_voice.devtools.hibiki_server_cpu serve --config-path CONFIG \\
        --model-weight DIR/model.safetensors --mimi-weight DIR/mimi.safetensors \\
        --tokenizer DIR/tokenizer.model --device cpu --host 127.0.0.1 --port 8998

Extra flag (removed before the server sees its arguments):
  ``--float32``  the model in float32 instead of float16 (much faster on most CPUs).

The guard is neutralised by giving the command's module a ``torch`` whose
``cuda.is_available()`` says yes; torch itself is untouched, so moshi's own CUDA checks
(convolutions, sampling) still see the truth. Offline, a ``mimi_config_name`` inside
config.json must be a ``file://`` path (the server would look it up on the hub otherwise):
``LocalHibikiServer`` writes such a copy of config.json for its child.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import types
from pathlib import Path

from track2_voice.devtools.moshi_server_cpu import LocalMoshiServer, launcher_args, patch_torch

MODULE = "track2_voice.devtools.hibiki_server_cpu"


class _CudaSaysYes(types.SimpleNamespace):
    """``torch.cuda`` for the CLI's guard: available; everything else is torch's own."""

    def __init__(self, cuda) -> None:
        super().__init__()
        self._cuda = cuda

    def is_available(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self._cuda, name)


class _TorchForTheGuard(types.SimpleNamespace):
    def __init__(self, torch) -> None:
        super().__init__()
        self._torch = torch
        self.cuda = _CudaSaysYes(torch.cuda)

    def __getattr__(self, name: str):
        return getattr(self._torch, name)


def seed_cpu(seed: int) -> None:
    """``hibiki_zero.inference.seed_all`` without the CUDA seeds."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def patch_hibiki(float32: bool) -> None:
    import hibiki_zero.run as run
    import torch

    patch_torch(float32)  # synchronize() a no-op without CUDA; float32 weights if asked
    if not torch.cuda.is_available():
        run.torch = _TorchForTheGuard(torch)  # type: ignore[assignment]
        run.seed_all = seed_cpu  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> None:
    args, float32 = launcher_args(argv)
    patch_hibiki(float32)
    import hibiki_zero.run as run

    sys.argv = ["hibiki-zero", *args]
    run.main()


def offline_config(checkpoint: Path, out_dir: Path) -> Path:
    """A copy of the checkpoint's config.json whose ``mimi_config_name`` is a ``file://``
    path, so that the server reads it from disk instead of the hub."""
    from track2_voice.backends.torch_backend import local_checkpoint_args

    files = local_checkpoint_args(checkpoint)
    cfg = json.loads(Path(files["config_path"]).read_text())
    if "mimi_config_path" in files:
        cfg["mimi_config_name"] = f"file://{Path(files['mimi_config_path']).resolve()}"
    out = out_dir / "config.json"
    out.write_text(json.dumps(cfg))
    return out


class LocalHibikiServer(LocalMoshiServer):
    """Kyutai's ``hibiki-zero serve`` on loopback with a local checkpoint, as a child
    process (tests, benchmarks, labs without a GPU). Its log has one line per frame with
    the time the frame took (``frame N handled in X ms``)."""

    name = "hibiki-zero serve"
    module = MODULE
    subcommand = ("serve",)
    weight_flag = "--model-weight"
    extra_flags = ()

    def config_path(self, files: dict) -> Path:
        """An offline copy of config.json, in a directory that lives as long as this object."""
        self._tmp = tempfile.TemporaryDirectory(prefix="hibiki-serve-")
        return offline_config(self.checkpoint, Path(self._tmp.name))


if __name__ == "__main__":
    main()
