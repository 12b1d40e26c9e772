"""Run the official ``moshi.server`` on a machine without a GPU.

``moshi.server`` calls ``torch.cuda.synchronize()`` unconditionally after its warm-up, which
fails on CPU-only torch builds. This launcher replaces it with a no-op when CUDA is absent
and then runs the server module unchanged, with the same flags::

    python -m track2_voice.devtools.moshi_server_cpu --config-path DIR/config.json \\
        --moshi-weight DIR/model.safetensors --mimi-weight DIR/mimi.safetensors \\
        --tokenizer DIR/tokenizer.model --static none --device cpu --host 127.0.0.1 --port 8998

Extra flag (removed before the server sees its arguments):
  ``--float32``  run the model in float32 instead of bfloat16 (faster on most CPUs).
"""

from __future__ import annotations

import os
import runpy
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY_POLL_S = 0.2  # how often wait_ready() tries the port


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


def launcher_args(argv: list[str] | None) -> tuple[list[str], bool]:
    """The server's own arguments, without this launcher's ``--float32``, and whether it
    was given (every CPU launcher takes that one flag)."""
    args = list(sys.argv[1:] if argv is None else argv)
    float32 = "--float32" in args
    if float32:
        args.remove("--float32")
    return args, float32


def main(argv: list[str] | None = None) -> None:
    args, float32 = launcher_args(argv)
    patch_torch(float32)
    sys.argv = ["moshi.server", *args]
    # moshi.server runs its main() at import time, inside torch.no_grad().
    runpy.run_module("moshi.server", run_name="__main__", alter_sys=True)


class LocalMoshiServer:
    """The official server on loopback with a local checkpoint, as a child process: for
    tests, benchmarks and labs without a GPU. ``kill()`` and ``start()`` again simulate a
    crash and a restart on the same port."""

    # what differs between the servers a subclass launches (the rest of the command, the
    # process's life and the readiness wait are the same)
    name = "moshi.server"  # in error messages
    module = "track2_voice.devtools.moshi_server_cpu"  # the launcher the child runs
    subcommand: tuple[str, ...] = ()  # before the flags
    weight_flag = "--moshi-weight"  # the flag naming the model's weights
    extra_flags: tuple[str, ...] = ("--static", "none")  # after the checkpoint's files

    def __init__(
        self,
        checkpoint: str | Path,
        port: int | None = None,
        float32: bool = True,
        threads: int | None = None,
    ):
        self.checkpoint = Path(checkpoint)
        self.threads = threads  # torch intra-op threads in the child (None: torch's choice)
        self.port = port or free_port()
        self.float32 = float32
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/chat"

    def config_path(self, files: dict) -> Path:
        """The config.json the child reads (the checkpoint's own here)."""
        return Path(files["config_path"])

    def command(self) -> list[str]:
        from track2_voice.backends.torch_backend import local_checkpoint_args

        files = local_checkpoint_args(self.checkpoint)
        cmd = [
            sys.executable,
            "-m",
            self.module,
            *self.subcommand,
            "--config-path",
            str(self.config_path(files)),
            self.weight_flag,
            str(files["moshi_weights"]),
            "--mimi-weight",
            str(files["mimi_weights"]),
            "--tokenizer",
            str(files["tokenizer"]),
            *self.extra_flags,
            "--device",
            "cpu",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        return cmd + (["--float32"] if self.float32 else [])

    def start(self, timeout: float = 60.0) -> LocalMoshiServer:
        root = Path(__file__).resolve().parents[2]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        }
        if self.threads:
            # on a shared CPU, spinning threads cost more than they give (an order of
            # magnitude per frame for a tiny model on 2 loaded cores)
            env["OMP_NUM_THREADS"] = str(self.threads)
        fd, name = tempfile.mkstemp(prefix="moshi-server-", suffix=".log")
        self.log_path = Path(name)
        self.proc = subprocess.Popen(
            self.command(), stdout=fd, stderr=subprocess.STDOUT, env=env, cwd=root
        )
        os.close(fd)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until the port accepts connections (the server listens only after its warm-up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(READY_POLL_S)
        raise RuntimeError(f"{self.name} not listening after {timeout:g} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: the connection drops at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> LocalMoshiServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
