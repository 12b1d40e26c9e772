"""The CLI loads no heavy library it does not use: every ``creature`` command (and every
test that runs one) pays for what ``orchestrator.cli`` imports before it parses a flag.
torch and scipy.signal cost 2.5 s of a 3.5 s start here; they load when a command needs them."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "scipy.signal", "moshi", "moshi_mlx", "mlx", "matplotlib", "playwright")


def test_the_cli_parses_its_flags_without_the_heavy_libraries():
    code = (
        "import sys\n"
        "from orchestrator.cli.main import build_parser\n"
        "build_parser()\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"imported at start: {r.stdout.strip()}"
