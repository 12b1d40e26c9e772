"""Optional stacks as data: which extra installs a missing module, said in one line.

Why: ``creature checkpoint tiny --backend torch`` on a machine without torch used to end in a
raw ``ModuleNotFoundError`` traceback; a user needs the name of what is missing and the
command that installs it. Keyed by the top-level module name that Python reports missing.
"""

from __future__ import annotations

TORCH_CPU = (
    "on a CPU-only machine keep the CPU build: pip install torch "
    "--index-url https://download.pytorch.org/whl/cpu && pip install --no-deps moshi==0.2.13 "
    "&& pip install 'creature[torch-cpu]'; on a GPU host: pip install 'creature[torch]'"
)

STACKS: dict[str, tuple[str, str]] = {
    # module: (what it is, how to install it)
    "torch": ("PyTorch (the torch backend and checkpoints)", TORCH_CPU),
    "moshi": ("Kyutai's PyTorch moshi", TORCH_CPU),
    "einops": ("moshi's dependencies", TORCH_CPU),
    "mlx": ("MLX (the mlx backend and checkpoints)", "pip install 'creature[mlx]'"),
    "moshi_mlx": ("Kyutai's moshi_mlx", "pip install 'creature[mlx]'"),
    "rustymimi": ("moshi_mlx's Mimi", "pip install 'creature[mlx]'"),
    "matplotlib": ("matplotlib (creature report's plots)", "pip install 'creature[report]'"),
    "ray": ("Ray Serve", "creature model-server --ray-setup"),
    "fastapi": ("FastAPI (Ray Serve's ingress)", "creature model-server --ray-setup"),
    "pipecat": ("Pipecat (the cascade baseline)", "creature cascade --setup-only"),
    "hibiki_zero": ("Kyutai's hibiki-zero", "pip install --no-deps hibiki-zero==0.0.4"),
    "typer": ("typer (hibiki-zero)", "pip install 'creature[hibiki]'"),
    "IPython": ("IPython (hibiki-zero)", "pip install 'creature[hibiki]'"),
}


def missing_stack(exc: BaseException) -> str | None:
    """One line for a missing optional module in ``exc`` or what caused it, else None."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ModuleNotFoundError) and e.name:
            top = e.name.split(".")[0]
            if top in STACKS:
                what, how = STACKS[top]
                return f"{what} is not installed (no module {top!r}): {how}"
        e = e.__cause__ or e.__context__
    return None
