"""``creature planner``: a local OpenAI-compatible server for the planner (llama.cpp's), in an
environment of its own, and a tiny random-weight model to try it with no download.

The creature talks to any chat-completions endpoint (``slow_loop.planner.url``: llama.cpp,
vLLM, Ollama, a hosted API; docs/planner.md). This command is for the case where none is at
hand: ``setup`` builds ``llama-cpp-python[server]`` (it compiles llama.cpp: minutes on a small
machine, once), ``tiny-model`` writes a random GGUF, ``serve`` runs the server on a GGUF (the
tiny one unless ``--model`` names another) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator.cli.helper_env import HelperEnv

TINY_SCRIPT = Path(__file__).resolve().parents[1] / "planner_tiny_model.py"
TINY_MODEL = "planner-tiny-random.gguf"  # in the state directory
PLANNER_ENV = HelperEnv(
    dir_name="planner-venv",
    what="the planner's local llama.cpp server",
    requirements=("llama-cpp-python[server]==0.3.36", "gguf==0.19.0"),
    setup_command="creature planner setup",
    build_env={"CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)},
)
# llama.cpp's tool calling for ChatML models: tools in the prompt, calls parsed from the answer,
# and the arguments constrained to the tool's JSON schema by a grammar
CHAT_FORMAT = "chatml-function-calling"
DESCRIPTION = (
    "The creature's planner talks to any OpenAI-compatible chat-completions endpoint "
    "(slow_loop.planner.url: llama.cpp, vLLM, Ollama, a hosted API; docs/planner.md). For when "
    "none is at hand: 'setup' builds llama-cpp-python's server in an environment of its own "
    "(it compiles llama.cpp: minutes, once), 'tiny-model' writes a random-weight GGUF, "
    "'serve' runs the server on a GGUF (a tiny random one unless --model names another)."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "planner",
        help="a local llama.cpp server for the planner (setup, tiny-model, serve)",
        description=DESCRIPTION,
    )
    p.add_argument("--state-dir", help="where its environment lives (default: the state dir)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    s = verbs.add_parser("setup", help="build the llama.cpp server's environment (once)")
    s.set_defaults(func=setup)
    t = verbs.add_parser("tiny-model", help="write a tiny random-weight GGUF model")
    t.add_argument("out", help="the .gguf file to write (refused if it exists)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.set_defaults(func=tiny_model)
    v = verbs.add_parser("serve", help="run llama.cpp's OpenAI-compatible server until Ctrl-C")
    v.add_argument("--model", help="a GGUF file (default: a tiny random one, written once)")
    v.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    v.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    v.add_argument("--ctx", type=int, default=8192, help="context length in tokens")
    v.set_defaults(func=serve)


def _env(args: argparse.Namespace) -> Path:
    from orchestrator.state_dir import state_dir

    return PLANNER_ENV.path(state_dir(args.state_dir, "--state-dir"))


def _fail(msg: str) -> int:
    print(f"creature: error: {msg}", file=sys.stderr)
    return 2


def setup(args: argparse.Namespace) -> int:
    env = _env(args)
    if PLANNER_ENV.is_ready(env):
        print(f"planner setup: environment up to date: {env}")
        return 0
    # a HelperEnvError is a UserError: the command line prints it as one line, exit 2
    PLANNER_ENV.build(env, lambda line: print(f"planner setup: {line}", flush=True))
    return 0


def write_tiny(python: Path, out: Path, seed: int = 0) -> None:
    subprocess.run([str(python), str(TINY_SCRIPT), str(out), "--seed", str(seed)], check=True)


def tiny_model(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        return _fail(f"{out}: exists; choose another path")
    if not out.parent.is_dir():
        return _fail(f"{out.parent}: no such directory")
    write_tiny(PLANNER_ENV.python(_env(args)), out, args.seed)  # HelperEnvError: a UserError
    print(f"wrote {out} (random weights: its proposals are random, within the tool's schema)")
    return 0


def server_command(python: Path, model: Path, host: str, port: int, ctx: int) -> list[str]:
    return [
        str(python), "-m", "llama_cpp.server",
        "--model", str(model),
        "--chat_format", CHAT_FORMAT,
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(ctx),
    ]  # fmt: skip


def serve(args: argparse.Namespace) -> int:
    env = _env(args)
    python = PLANNER_ENV.python(env)  # HelperEnvError: a UserError
    model = Path(args.model) if args.model else env.parent / TINY_MODEL
    if args.model and not model.is_file():
        return _fail(f"--model {model}: no such file")
    if not model.exists():
        write_tiny(python, model)
        print(f"wrote a tiny random-weight model: {model}")
    print(
        f"planner endpoint: http://{args.host}:{args.port}/v1  (use: creature serve --set "
        f"slow_loop.planner.url=http://{args.host}:{args.port}/v1); Ctrl-C stops",
        flush=True,
    )
    proc = subprocess.Popen(server_command(python, model, args.host, args.port, args.ctx))
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        return 130
