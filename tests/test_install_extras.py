"""The README's CPU-only torch path keeps the CPU build: its last step installs the
``torch-cpu`` extra, which must name nothing that pins torch (``moshi==0.2.13`` pins
torch<2.10, and pip would replace a CPU torch by a CUDA build with ~15 nvidia-* wheels)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PULLS_TORCH = re.compile(r"^(torch|torchaudio|torchvision|moshi|nvidia-|triton|creature\[torch\])")


def test_the_cpu_extra_names_nothing_that_pulls_a_cuda_torch() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["torch-cpu"], "the light dependencies of moshi"
    assert [r for r in extras["torch-cpu"] if PULLS_TORCH.match(r)] == []
    # the GPU extra is the CPU one plus torch and moshi: one list of moshi's light deps
    assert "creature[torch-cpu]" in extras["torch"]


def test_the_readme_cpu_steps_end_with_the_cpu_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    steps = re.search(r"```\n *(pip install torch --index-url [^\n]+/cpu\n.*?)```", readme, re.S)
    assert steps, "the README's CPU-only torch steps"
    lines = [line.strip() for line in steps.group(1).strip().splitlines()]
    assert lines[1] == "pip install --no-deps moshi==0.2.13"
    assert lines[-1] == 'pip install -e ".[torch-cpu]"'
